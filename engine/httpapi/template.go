package httpapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"slices"
	"strings"

	"gannet/engine/mimebuild"
)

// ErrTemplate is a template the inject API cannot expand: a Jinja syntax
// error, or what the sandbox of jinja.go does not offer (include, macros,
// an unknown filter, …).
var ErrTemplate = errors.New("bad template")

// template is the compiled form of one templated text. The fast path
// handles the common case, "{{ name }}" / "{{ user.first }}" placeholders
// in literal text, without a template engine; anything else (statements,
// comments, filters, expressions) is compiled by gonja (jinja.go).
type template struct {
	segs   []segment
	static bool // no placeholders: render returns the source
	src    string
	jinja  *jinjaTemplate // set when the fast path does not apply
}

type segment struct {
	lit      string   // literal text before the placeholder (or the tail)
	path     []string // variable path; nil for the tail
	inHeader bool     // the placeholder sits in the header section of a raw message
}

// compileTemplate compiles src. When headerEnd >= 0, placeholders before
// that byte offset are marked as header placeholders (their values may not
// contain CR or LF).
func compileTemplate(src string, headerEnd int) (*template, error) {
	if t, err := compileFast(src, headerEnd); err == nil {
		return t, nil
	}
	jt, err := compileJinja(src, headerEnd)
	if err != nil {
		return nil, err
	}
	return &template{src: src, jinja: jt}, nil
}

// compileFast compiles a template of literal text and "{{ path }}"
// placeholders; anything else is ErrTemplate (for gonja to compile).
func compileFast(src string, headerEnd int) (*template, error) {
	t := &template{src: src}
	rest, off := src, 0
	for {
		i := findOpen(rest)
		if i < 0 {
			t.segs = append(t.segs, segment{lit: rest})
			break
		}
		switch rest[i+1] {
		case '%':
			return nil, fmt.Errorf("%w: statements ({%% … %%}) are not supported", ErrTemplate)
		case '#':
			return nil, fmt.Errorf("%w: comments ({# … #}) are not supported", ErrTemplate)
		}
		end := strings.Index(rest[i+2:], "}}")
		if end < 0 {
			return nil, fmt.Errorf("%w: unclosed {{ at byte %d", ErrTemplate, off+i)
		}
		expr := strings.TrimSpace(rest[i+2 : i+2+end])
		path, err := parsePath(expr)
		if err != nil {
			return nil, err
		}
		t.segs = append(t.segs, segment{lit: rest[:i], path: path, inHeader: headerEnd >= 0 && off+i < headerEnd})
		n := i + 2 + end + 2
		rest, off = rest[n:], off+n
	}
	t.static = len(t.segs) == 1
	return t, nil
}

// findOpen returns the index of the first "{{", "{%" or "{#" in s, or -1.
func findOpen(s string) int {
	for off := 0; ; {
		i := strings.IndexByte(s[off:], '{')
		if i < 0 || off+i+1 >= len(s) {
			return -1
		}
		switch s[off+i+1] {
		case '{', '%', '#':
			return off + i
		}
		off += i + 1
	}
}

// staticTemplate returns a template that expands to src as is (the KumoMTA
// "Static" template dialect).
func staticTemplate(src string) *template {
	return &template{src: src, static: true, segs: []segment{{lit: src}}}
}

// parsePath accepts identifier ("." identifier)*.
func parsePath(expr string) ([]string, error) {
	if expr == "" {
		return nil, fmt.Errorf("%w: empty {{ }}", ErrTemplate)
	}
	parts := strings.Split(expr, ".")
	for _, p := range parts {
		if !isIdent(p) {
			return nil, fmt.Errorf("%w: {{ %s }}: only variable names are supported", ErrTemplate, expr)
		}
	}
	return parts, nil
}

func isIdent(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '_' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || i > 0 && '0' <= c && c <= '9' {
			continue
		}
		return false
	}
	return true
}

// vars are the template variables of one recipient, looked up in the order
// KumoMTA overlays them: the recipient's substitutions, then its "email" and
// "name", then the request's global substitutions.
type vars struct {
	recipient map[string]any
	email     string
	name      *string
	global    map[string]any
	shared    *jinjaShared // shared by the recipients of a request; may be nil
}

func (v *vars) lookup(name string) (any, bool) {
	if x, ok := v.recipient[name]; ok {
		return x, true
	}
	switch name {
	case "email":
		return v.email, true
	case "name":
		if v.name != nil {
			return *v.name, true
		}
	}
	x, ok := v.global[name]
	return x, ok
}

// errHeaderValue is returned by render when a value placed in a header
// contains CR or LF (header injection through a substitution).
var errHeaderValue = errors.New("substitution value with CR or LF in a header")

// render appends t expanded for v to dst. An unknown variable (or path)
// expands to "" as in Jinja's default "undefined". With escape, values are
// HTML-escaped (the html_body, like Jinja's auto-escaping of .html
// templates).
//
// dst may grow to limit bytes at most. The expansion's length is counted
// first (size), without building it: past the limit nothing is rendered and
// the answer is mimebuild.ErrTooLarge, so a value placed many times (a
// 1 MiB substitution used a hundred times) costs no memory, however large
// the expansion would be; within it, dst grows once, to the exact length.
func (t *template) render(dst []byte, v *vars, escape bool, limit int) ([]byte, error) {
	if t.jinja != nil {
		return t.jinja.render(dst, v.jinjaData(), escape, v.jinjaShared(), limit)
	}
	n, err := t.size(v, escape, limit-len(dst))
	if err != nil {
		return dst, err
	}
	dst = slices.Grow(dst, n)
	if t.static {
		return append(dst, t.src...), nil
	}
	for _, s := range t.segs {
		dst = append(dst, s.lit...)
		if s.path == nil {
			continue
		}
		val := valueString(v, s.path)
		if s.inHeader && strings.ContainsAny(val, "\r\n") {
			return dst, fmt.Errorf("%w: {{ %s }}", errHeaderValue, strings.Join(s.path, "."))
		}
		if escape {
			val = html.EscapeString(val)
		}
		dst = append(dst, val...)
	}
	return dst, nil
}

// size is the length of t expanded for v (what render appends), counted
// without expanding it; as soon as it passes limit, size stops with
// mimebuild.ErrTooLarge.
func (t *template) size(v *vars, escape bool, limit int) (int, error) {
	if t.static {
		if len(t.src) > limit {
			return 0, mimebuild.ErrTooLarge
		}
		return len(t.src), nil
	}
	n := 0
	for _, s := range t.segs {
		n += len(s.lit)
		if s.path != nil {
			val := valueString(v, s.path)
			if escape {
				n += escapedLen(val)
			} else {
				n += len(val)
			}
		}
		if n > limit {
			return 0, mimebuild.ErrTooLarge
		}
	}
	return n, nil
}

// escapedLen is len(html.EscapeString(s)), counted without building it:
// html.EscapeString writes &amp; &#39; &#34; &lt; &gt; for & ' " < >.
func escapedLen(s string) int {
	n := len(s)
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '&', '\'', '"':
			n += 4
		case '<', '>':
			n += 3
		}
	}
	return n
}

// valueString renders a JSON value: strings as they are, numbers and
// booleans as JSON writes them, null and undefined as "", objects and
// arrays as JSON text.
func valueString(v *vars, path []string) string {
	x, ok := v.lookup(path[0])
	for _, p := range path[1:] {
		if !ok {
			break
		}
		m, isMap := x.(map[string]any)
		if !isMap {
			ok = false
			break
		}
		x, ok = m[p]
	}
	if !ok || x == nil {
		return ""
	}
	switch x := x.(type) {
	case string:
		return x
	case json.Number:
		return x.String()
	case bool:
		if x {
			return "true"
		}
		return "false"
	default:
		b, err := json.Marshal(x)
		if err != nil {
			return ""
		}
		return string(b)
	}
}
