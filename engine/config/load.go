package config

import (
	_ "embed"
	"errors"
	"fmt"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/BurntSushi/toml"
)

//go:embed default.toml
var defaultTOML []byte

// DefaultTOML returns the annotated built-in configuration, as printed by
// `gannet config default`.
func DefaultTOML() []byte { return append([]byte(nil), defaultTOML...) }

// Default returns the built-in configuration (default.toml), checked and
// normalized like a loaded file.
func Default() *Config {
	c, err := parseDefault()
	if err != nil {
		// default.toml is part of the program and covered by tests.
		panic("config: embedded default.toml is invalid: " + err.Error())
	}
	c.finish()
	return c
}

func parseDefault() (*Config, error) {
	c := new(Config)
	md, err := toml.Decode(string(defaultTOML), c)
	if err != nil {
		return nil, err
	}
	if u := md.Undecoded(); len(u) > 0 {
		return nil, fmt.Errorf("unknown key %s", u[0])
	}
	return c, nil
}

// Error is one problem in a configuration file, printed as FILE:LINE: Msg
// (FILE: Msg when the problem has no line of its own).
type Error struct {
	File string
	Line int
	Msg  string
}

func (e *Error) Error() string {
	if e.Line > 0 {
		return e.File + ":" + strconv.Itoa(e.Line) + ": " + e.Msg
	}
	return e.File + ": " + e.Msg
}

// Errors is every problem found in one file; Load returns it as its error.
type Errors []*Error

func (es Errors) Error() string {
	s := make([]string, len(es))
	for i, e := range es {
		s[i] = e.Error()
	}
	return strings.Join(s, "\n")
}

// Load reads the configuration file at path: it starts from Default(),
// decodes the file over it, and checks the result. Unknown keys are errors.
// A non-nil error is of type Errors, one FILE:LINE line per problem.
func Load(path string) (*Config, error) {
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, Errors{{File: path, Msg: err.Error()}}
	}
	return Parse(path, src)
}

// arrayTemplates gives, for each array of tables, the value a new element
// starts from: the built-in entry (when there is one) without its identity.
func arrayTemplates(d *Config) (SMTPListener, HTTPListener, DKIM) {
	sl := d.SMTPListeners[0]
	sl.Name, sl.Listen = "", ""
	hl := d.HTTPListeners[0]
	hl.Listen = ""
	dk := DKIM{Headers: defaultDKIMHeaders()}
	return sl, hl, dk
}

// defaultDKIMHeaders are the headers a [[dkim]] entry signs when it does not
// list its own (RFC 6376 section 5.4.1's recommended set, plus RFC 8058's).
func defaultDKIMHeaders() []string {
	return []string{"From", "To", "Subject", "Date", "Message-ID", "List-Unsubscribe", "List-Unsubscribe-Post"}
}

// Parse is Load for a file already read; path is only used in messages.
func Parse(path string, src []byte) (*Config, error) {
	text := string(src)
	ix := indexLines(text)
	fail := func(line int, msg string) (*Config, error) {
		return nil, Errors{{File: path, Line: line, Msg: msg}}
	}

	// First pass: syntax, and how many elements each array of tables has.
	var raw map[string]any
	if _, err := toml.Decode(text, &raw); err != nil {
		line, msg := decodeErrorLine(err, ix)
		return fail(line, msg)
	}

	c, t := Base()
	c.SMTPListeners = fill(raw, "smtp_listener", c.SMTPListeners, t.smtp)
	c.HTTPListeners = fill(raw, "http_listener", c.HTTPListeners, t.http)
	c.DKIM = fill(raw, "dkim", c.DKIM, t.dkim)
	c.SMTPUsers = fill(raw, "smtp_user", c.SMTPUsers, SMTPUser{})
	c.APIKeys = fill(raw, "api_key", c.APIKeys, APIKey{})
	c.Tenants = fill(raw, "tenant", c.Tenants, Tenant{})

	// Second pass: decode over the defaults.
	md, err := toml.Decode(text, c)
	if err != nil {
		line, msg := decodeErrorLine(err, ix)
		return fail(line, msg)
	}

	var es Errors
	seen := map[string]int{}
	undecoded := map[string]bool{}
	for _, k := range md.Undecoded() {
		ks := k.String()
		undecoded[ks] = true
		nth := seen[ks]
		seen[ks]++
		if len(k) > 1 && undecoded[k[:len(k)-1].String()] {
			continue // inside an unknown table, which is reported already
		}
		es = append(es, &Error{File: path, Line: ix.occurrence(k, nth), Msg: "unknown key " + displayPath(k)})
	}

	if err := Complete(c, path, ix.line); err != nil {
		es = append(es, err.(Errors)...)
	}
	if len(es) > 0 {
		// In file order, as a compiler reports; problems without a line
		// of their own first.
		sort.SliceStable(es, func(i, j int) bool { return es[i].Line < es[j].Line })
		return nil, es
	}
	return c, nil
}

// fill returns n copies of tmpl when the file has an array of n tables under
// key, and def unchanged when it has none. The TOML decoder reuses slice
// elements it finds, so keys an element leaves out keep the template's value.
func fill[T any](raw map[string]any, key string, def []T, tmpl T) []T {
	v, ok := raw[key]
	if !ok {
		return def
	}
	n := 0
	switch a := v.(type) {
	case []map[string]any:
		n = len(a)
	case []any:
		n = len(a)
	}
	out := make([]T, n)
	for i := range out {
		// Slices inside the template must not be shared between elements.
		out[i] = cloneSlices(tmpl)
	}
	return out
}

func cloneSlices[T any](v T) T {
	switch x := any(&v).(type) {
	case *SMTPListener:
		x.RelayHosts = append(CIDRList(nil), x.RelayHosts...)
		x.AuthMechanisms = append([]string(nil), x.AuthMechanisms...)
	case *HTTPListener:
		x.TrustedHosts = append(CIDRList(nil), x.TrustedHosts...)
		x.Services = append([]string(nil), x.Services...)
	case *DKIM:
		x.Headers = append([]string(nil), x.Headers...)
	}
	return v
}

var lineErrRe = regexp.MustCompile(`^toml: (?:line (\d+) )?\(last key "(.*)"\): (.*)$`)

// decodeErrorLine turns an error of the TOML decoder into a line and a
// message.
func decodeErrorLine(err error, ix *lineIndex) (int, string) {
	var pe toml.ParseError
	if errors.As(err, &pe) {
		line := pe.Position.Line
		msg := pe.Message
		// Errors of our own value types start with the offending text,
		// quoted; with it, find the right element of an array of tables
		// (the decoder knows only the last place a key name was written).
		if q, qerr := strconv.QuotedPrefix(msg); qerr == nil && pe.LastKey != "" {
			if key, _, ok := parseKey(pe.LastKey); ok {
				unq, _ := strconv.Unquote(q)
				if l := ix.lineWithValue(key, unq); l > 0 {
					line = l
				}
				msg = displayPath(key) + ": " + msg
			}
		}
		return line, msg
	}
	s := err.Error()
	if m := lineErrRe.FindStringSubmatch(s); m != nil {
		line, _ := strconv.Atoi(m[1])
		key, _, _ := parseKey(m[2])
		if line == 0 {
			line = ix.occurrence(key, 0)
		}
		return line, displayPath(key) + ": " + strings.TrimPrefix(m[3], "toml: ")
	}
	return 0, strings.TrimPrefix(s, "toml: ")
}
