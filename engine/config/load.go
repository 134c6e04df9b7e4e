package config

import (
	_ "embed"
	"os"
	"strconv"
	"strings"
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
	if es, _ := decode("default.toml", defaultTOML, c, nil); len(es) > 0 {
		return nil, es
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
// Every problem is reported, those of decoding (syntax, unknown keys, values
// of the wrong type or that their type refuses) and those of the checks of
// the decoded values together, in line order.
func Parse(path string, src []byte) (*Config, error) {
	c, t := Base()
	es, ix := decode(path, src, c, &t)
	if err := Complete(c, path, ix.line); err != nil {
		es = append(es, err.(Errors)...)
	}
	if len(es) > 0 {
		sortErrors(es)
		return nil, es
	}
	return c, nil
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
