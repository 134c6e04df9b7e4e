package httpapi

import (
	"encoding/json"
	"errors"
	"html"
	"math"
	"strings"
	"testing"

	"gannet/engine/mimebuild"
)

func TestTemplate(t *testing.T) {
	var global map[string]any
	dec := json.NewDecoder(strings.NewReader(`{"campaign":"Summer <Sale>","n":42,"f":1.50,"t":true,"nul":null,"obj":{"a":{"b":"deep"}},"arr":[1,"x"]}`))
	dec.UseNumber()
	if err := dec.Decode(&global); err != nil {
		t.Fatal(err)
	}
	name := "Jane"
	v := &vars{recipient: map[string]any{"campaign": "Override"}, email: "j@example.test", name: &name, global: global}
	cases := []struct{ src, want, wantHTML string }{
		{"plain", "plain", "plain"},
		{"Hi {{ name }} <{{email}}>", "Hi Jane <j@example.test>", "Hi Jane <j@example.test>"},
		{"{{campaign}}", "Override", "Override"},
		{"{{ n }}/{{ f }}/{{ t }}/{{ nul }}/{{ missing }}", "42/1.50/true//", "42/1.50/true//"},
		{"{{ obj.a.b }} {{ obj.a.x }} {{ n.x }}", "deep  ", "deep  "},
		{"{{ arr }}", `[1,"x"]`, "[1,&#34;x&#34;]"},
		{"{ single } and }} alone", "{ single } and }} alone", "{ single } and }} alone"},
		{"css{color:red}", "css{color:red}", "css{color:red}"},
	}
	for _, c := range cases {
		tm, err := compileTemplate(c.src, -1)
		if err != nil {
			t.Fatalf("%q: %v", c.src, err)
		}
		got, err := tm.render(nil, v, false, noLimit)
		if err != nil || string(got) != c.want {
			t.Errorf("%q → %q %v, want %q", c.src, got, err, c.want)
		}
		got, _ = tm.render(nil, v, true, noLimit)
		if string(got) != c.wantHTML {
			t.Errorf("html %q → %q, want %q", c.src, got, c.wantHTML)
		}
	}
	v.recipient = map[string]any{"campaign": "<b>&</b>"}
	tm, _ := compileTemplate("{{ campaign }}", -1)
	if got, _ := tm.render(nil, v, true, noLimit); string(got) != "&lt;b&gt;&amp;&lt;/b&gt;" {
		t.Errorf("escaped %q", got)
	}
	// Without a name, {{ name }} is undefined: "".
	v.name = nil
	tm, _ = compileTemplate("[{{ name }}]", -1)
	if got, _ := tm.render(nil, v, false, noLimit); string(got) != "[]" {
		t.Errorf("no name: %q", got)
	}
}

// TestTemplateRefusals: what neither the fast path nor the Jinja sandbox
// compiles.
func TestTemplateRefusals(t *testing.T) {
	for _, src := range []string{"{{ name", "{{ }}", "{{ a..b }}", "{% if x %}y", "{% endif %}", "{% include 'x' %}",
		"{% extends 'x' %}", "{% import 'x' as y %}", "{% from 'x' import y %}", "{% macro m() %}x{% endmacro %}",
		"{% for x in l recursive %}{{ loop(x) }}{% endfor %}", "{% set x %}y{% endset %}", "{% set x.y = 1 %}",
		"{% call m() %}x{% endcall %}", "{% do x %}", "{# open"} {
		if _, err := compileTemplate(src, -1); !errors.Is(err, ErrTemplate) {
			t.Errorf("%q: err %v", src, err)
		}
	}
}

// TestTemplateFastPath: placeholders alone stay on the fast path; the rest
// goes to gonja.
func TestTemplateFastPath(t *testing.T) {
	for src, fast := range map[string]bool{"plain": true, "Hi {{ name }} {{a.b}}": true, "{{ name | upper }}": false,
		"{% if x %}y{% endif %}": false, "{# c #}": false, "{{- name }}": false, "{{ f() }}": false} {
		tm, err := compileTemplate(src, -1)
		if err != nil {
			t.Fatalf("%q: %v", src, err)
		}
		if got := tm.jinja == nil; got != fast {
			t.Errorf("%q: fast path %v, want %v", src, got, fast)
		}
	}
}

func TestTemplateHeaderValues(t *testing.T) {
	src := "Subject: {{ subject }}\n\nBody {{ subject }}\n"
	tm, err := compileTemplate(src, strings.Index(src, "\n\n"))
	if err != nil {
		t.Fatal(err)
	}
	v := &vars{recipient: map[string]any{"subject": "x\r\nBcc: victim@example.test"}}
	if _, err := tm.render(nil, v, false, noLimit); !errors.Is(err, errHeaderValue) {
		t.Fatalf("err %v", err)
	}
	// In the body the same value is fine.
	tm, _ = compileTemplate("Subject: s\n\nBody {{ subject }}\n", len("Subject: s"))
	if _, err := tm.render(nil, v, false, noLimit); err != nil {
		t.Fatal(err)
	}
}

// noLimit is a render limit that is never reached.
const noLimit = math.MaxInt

// TestTemplateLimit: an expansion longer than the limit is refused before
// anything is rendered — a 1 MiB value used 100 times with a 4 MiB limit
// leaves dst as it was — an HTML-escaped value counts with its escaped
// length, and one that fits is rendered into dst grown once.
func TestTemplateLimit(t *testing.T) {
	big := strings.Repeat("x", 1<<20)
	tm, _ := compileTemplate(strings.Repeat("{{ big }}\n", 100), -1)
	v := &vars{global: map[string]any{"big": big, "amp": "<&>"}}
	const limit = 4 << 20
	out, err := tm.render(make([]byte, 0, 64), v, false, limit)
	if !errors.Is(err, mimebuild.ErrTooLarge) || len(out) != 0 || cap(out) != 64 {
		t.Errorf("err %v, len %d cap %d, want ErrTooLarge and dst untouched", err, len(out), cap(out))
	}
	tm, _ = compileTemplate(strings.Repeat("{{ big }}\n", 3), -1)
	if out, err := tm.render([]byte("head"), v, false, limit); err != nil || len(out) != 4+3*(1<<20+1) || cap(out) > len(out)+len(out)/8 {
		t.Errorf("3 MiB within the limit: err %v, len %d cap %d", err, len(out), cap(out))
	}

	tm, _ = compileTemplate("<p>{{ amp }}</p>", -1)
	want := "<p>&lt;&amp;&gt;</p>"
	if out, err := tm.render(nil, v, true, len(want)); err != nil || string(out) != want {
		t.Errorf("at the limit: %q %v, want %q", out, err, want)
	}
	if _, err := tm.render(nil, v, true, len(want)-1); !errors.Is(err, mimebuild.ErrTooLarge) {
		t.Errorf("one byte short: %v, want ErrTooLarge", err)
	}
	if _, err := staticTemplate(big).render([]byte("head"), v, false, 1<<20); !errors.Is(err, mimebuild.ErrTooLarge) {
		t.Errorf("static template past the limit: %v", err)
	}
	for _, s := range []string{"", "plain", `<a href="x">'&'</a>`, "\u00fcber & co"} {
		if escapedLen(s) != len(html.EscapeString(s)) {
			t.Errorf("escapedLen(%q) = %d, html.EscapeString makes %d", s, escapedLen(s), len(html.EscapeString(s)))
		}
	}
}

func BenchmarkTemplateRender(b *testing.B) {
	tm, _ := compileTemplate(strings.Repeat("Hello {{ name }}, your code is {{ code }}.\n", 20), -1)
	name := "Jane"
	v := &vars{recipient: map[string]any{"code": "X123"}, name: &name}
	var buf []byte
	b.ReportAllocs()
	for b.Loop() {
		buf, _ = tm.render(buf[:0], v, true, noLimit)
	}
}
