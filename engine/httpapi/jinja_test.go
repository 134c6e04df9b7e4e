package httpapi

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"gannet/engine/mimebuild"
)

// jinjaSubs are the global substitutions of the Jinja tests.
var jinjaSubs = map[string]any{
	"items": []map[string]any{{"name": "Tea", "price": 3.5}, {"name": "Cake", "price": 4}},
	"tags":  []string{"new", "sale"},
	"user":  map[string]any{"address": map[string]any{"city": "Lyon", "zip": "69001"}},
	"n":     42,
	"big":   strings.Repeat("b", 1000),
}

// TestJinjaInject sends whole-message templates through the inject
// handler and checks the body of the message that is spooled.
func TestJinjaInject(t *testing.T) {
	inj := &recordingInjector{}
	_, base := startServer(t, testOptions(inj))
	c := client(t, "127.0.0.1")
	cases := []struct {
		name, body string
		subs       map[string]any // the recipient's
		want       string
	}{
		{"if", "{% if vip %}VIP{% else %}regular{% endif %}", map[string]any{"vip": true}, "VIP"},
		{"else", "{% if vip %}VIP{% else %}regular{% endif %}", map[string]any{"vip": false}, "regular"},
		{"elif on numbers", "{% if n > 100 %}big{% elif n > 40 %}mid{% else %}small{% endif %}", nil, "mid"},
		{"for", "{% for it in items %}{{ loop.index }}. {{ it.name }}: {{ it.price }}\n{% endfor %}", nil, "1. Tea: 3.5\n2. Cake: 4\n"},
		{"loop attributes and items", `{% for t in tags %}{{ loop.cycle("odd", "even") }}{{ loop.first }}{% if not loop.last %},{% endif %}{% endfor %} {{ tags[0] }} {{ tags[1] }} [{{ tags[5] }}]`,
			nil, "oddtrue,evenfalse new sale []"},
		{"for else", "{% for x in none_here %}{{ x }}{% else %}empty{% endfor %}", nil, "empty"},
		{"for over a recipient's list", "{% for c in codes %}[{{ c }}]{% endfor %}", map[string]any{"codes": []string{"A", "B"}}, "[A][B]"},
		{"filters", `{{ name|upper }} {{ name|lower }} [{{ "  x  "|trim }}] {{ "hello world"|title }} {{ items|length }}`,
			nil, "JANE DOE jane doe [x] Hello World 2"},
		{"join replace", `{{ tags|join(", ") }} {{ "a-b-c"|replace("-", "+") }} {{ items|join("/", attribute="name") }}`, nil, "new, sale a+b+c Tea/Cake"},
		{"escape", `{{ "<b>&"|escape }} {{ "<i>"|e }} {{ "<u>" }}`, nil, "&lt;b&gt;&amp; &lt;i&gt; <u>"},
		{"default", `Hi {{ nickname|default("friend") }}, {{ nickname|d(name) }}.`, nil, "Hi friend, Jane Doe."},
		{"nested attribute", `{{ user.address.city }} {{ user["address"]["zip"] }} [{{ user.nope }}{{ user.nope.deeper }}{{ nothing.x }}]`, nil, "Lyon 69001 []"},
		{"set", `{% set greeting = "Hi " ~ name %}{{ greeting }}! {% set total = n * 2 + 1 %}{{ total }}`, nil, "Hi Jane Doe! 85"},
		{"set in if", `{% if true %}{% set x = "in" %}{% endif %}{{ x }}`, nil, "in"},
		{"comment", "a{# not sent #}b", nil, "ab"},
		{"expressions", `{{ n // 5 }} {{ n % 5 }} {{ "ab" * 3 }} {{ [1, 2] + [3] }} {{ n > 40 and "yes" or "no" }} {{ "sale" in tags }}`,
			nil, "8 2 ababab [1, 2, 3] yes true"},
		{"more filters", `{{ items|map(attribute="name")|join(",") }} {{ items|selectattr("price", "gt", 3.6)|map(attribute="name")|first }} {{ [3, 1, 2]|sort|join }} {{ tags|reverse|join }} {{ "<p>x</p>"|striptags }} {{ 3.14159|round(2) }} {{ "5"|int + 1 }} {{ "y" if n > 1 else "n" }}`,
			nil, "Tea,Cake Cake 123 salenew x 3.14 6 y"},
		{"a filter on a list in a loop", `{% for it in items %}{{ items|length }}{{ tags|first }}{% endfor %}`, nil, "2new2new"},
		{"nesting within the bound", strings.Repeat("{% if true %}", 64) + "{{ " + strings.Repeat("(", 64) + "n" + strings.Repeat(")", 64) + " }}" + strings.Repeat("{% endif %}", 64), nil, "42"},
		{"a chain within the bound", "{{ (n" + strings.Repeat(" ~ 1", 300) + ")|length }}", nil, "302"},
		{"whitespace control", "{% for t in tags -%}\n{{ t }}\n{%- endfor %}", nil, "newsale"},
		{"raw", "{% raw %}{{ name }}{% endraw %}", nil, "{{ name }}"},
		{"recipient overrides global", "{{ n }}", map[string]any{"n": 7}, "7"},
		{"email", "{{ email|upper }}", nil, "RCPT@EXAMPLE.TEST"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			inj.reset()
			body := mustJSON(t, map[string]any{
				"envelope_sender": "noreply@example.test",
				"content":         "Subject: s\n\n" + tc.body,
				"substitutions":   jinjaSubs,
				"recipients":      []map[string]any{{"email": "rcpt@example.test", "name": "Jane Doe", "substitutions": tc.subs}},
			})
			a := do(t, c, "POST", base+"/api/inject/v1", body, nil)
			if a.status != 200 || a.json["success_count"] != float64(1) {
				t.Fatalf("answer %s", a)
			}
			msg := string(inj.messages()[0].Body)
			_, got, _ := strings.Cut(msg, "\r\n\r\n")
			want := strings.ReplaceAll(tc.want, "\n", "\r\n")
			if !strings.HasSuffix(want, "\r\n") {
				want += "\r\n"
			}
			if got != want {
				t.Errorf("body %q, want %q", got, want)
			}
		})
	}
}

// TestJinjaHeaders: statements in the header section of a whole message,
// and the CR/LF rule for what is output there.
func TestJinjaHeaders(t *testing.T) {
	inj := &recordingInjector{}
	_, base := startServer(t, testOptions(inj))
	body := mustJSON(t, map[string]any{
		"envelope_sender": "noreply@example.test",
		"content":         "{% if vip %}X-VIP: yes\n{% endif %}{# a comment #}Subject: {{ s|title }}\n\n{{ s }}\n",
		"recipients": []map[string]any{
			{"email": "vip@example.test", "substitutions": map[string]any{"vip": true, "s": "hello"}},
			{"email": "plain@example.test", "substitutions": map[string]any{"vip": false, "s": "hi"}},
			{"email": "evil@example.test", "substitutions": map[string]any{"s": "x\r\nBcc: victim@example.test"}},
		},
	})
	a := do(t, client(t, "127.0.0.1"), "POST", base+"/api/inject/v1", body, nil)
	if a.status != 200 || a.json["success_count"] != float64(2) || a.json["fail_count"] != float64(1) {
		t.Fatalf("answer %s", a)
	}
	if errs := a.json["errors"].([]any); !strings.Contains(errs[0].(string), "CR or LF") {
		t.Errorf("errors %v", errs)
	}
	msgs := inj.messages()
	if !strings.Contains(string(msgs[0].Body), "\r\nX-VIP: yes\r\nSubject: Hello\r\n\r\nhello\r\n") {
		t.Errorf("vip message:\n%s", msgs[0].Body)
	}
	if strings.Contains(string(msgs[1].Body), "X-VIP") || !strings.Contains(string(msgs[1].Body), "\r\nSubject: Hi\r\n\r\nhi\r\n") {
		t.Errorf("plain message:\n%s", msgs[1].Body)
	}
}

// TestJinjaBuilder: the builder's parts are Jinja too; html_body escapes
// what it outputs (as the fast path does), the text does not.
func TestJinjaBuilder(t *testing.T) {
	inj := &recordingInjector{}
	_, base := startServer(t, testOptions(inj))
	body := mustJSON(t, map[string]any{
		"envelope_sender": "noreply@example.test",
		"substitutions":   map[string]any{"tag": "<vip>", "list": []string{"<a>"}},
		"content": map[string]any{
			"subject":   "{{ tag|upper }} for {{ name|default('you') }}",
			"text_body": "{% for x in list %}{{ x }}{% endfor %} {{ tag }}",
			"html_body": "<p>{{ tag }} {{ tag|e }} {{ tag|safe }} {{ list }}</p>",
			"headers":   map[string]string{"X-Tag": "{{ tag|replace('<', '(')|replace('>', ')') }}"},
		},
		"recipients": []map[string]any{{"email": "rcpt@example.test"}},
	})
	a := do(t, client(t, "127.0.0.1"), "POST", base+"/api/inject/v1", body, nil)
	if a.status != 200 {
		t.Fatalf("answer %s", a)
	}
	msg := string(inj.messages()[0].Body)
	for _, want := range []string{"Subject: <VIP> for you\r\n", "X-Tag: (vip)\r\n", "<a> <vip>",
		"<p>&lt;vip&gt; &lt;vip&gt; <vip> [&#39;&lt;a&gt;&#39;]</p>"} {
		if !strings.Contains(msg, want) {
			t.Errorf("no %q in\n%s", want, msg)
		}
	}
}

// TestJinjaRefusals: bad templates and what the sandbox stops, each
// answered with JSON and its status, quickly, and nothing spooled.
func TestJinjaRefusals(t *testing.T) {
	inj := &recordingInjector{}
	opts := testOptions(inj)
	opts.MaxMessageBytes = 1 << 20
	_, base := startServer(t, opts)
	c := client(t, "127.0.0.1")
	doubling := `{% set a = "0123456789" %}` + strings.Repeat(`{% set a = a ~ a %}`, 40) + `{{ a|length }}`
	nested := `{% set l = [big] %}` + strings.Repeat(`{% set l = [l, l] %}`, 40) + `{{ l|length }}`
	cases := []struct {
		name, body string
		status     int
		errHas     string
	}{
		{"syntax error with its position", "Hello\nthere {% if %}", 422, "content.text_body: bad template: line 2 column"},
		{"bad expression with its position", "Hi {{ name }}\n  {{ name | }}", 422, "content.text_body: bad template: line 2 column 13: filter name must be an identifier"},
		{"unclosed output", "Hi\n{{ (((", 422, "bad template: line 2 column 1: expected either a number"},
		{"unclosed block", "{% for x in tags %}\n{{ x }}", 422, "endfor"},
		{"unknown statement", "{% frobnicate %}", 422, "frobnicate"},
		{"include", "{% include '/etc/passwd' %}", 422, "content.text_body: bad template"},
		{"extends", "{% extends 'base.html' %}", 422, "bad template"},
		{"import", "{% import 'macros.html' as m %}", 422, "bad template"},
		{"macro", "{% macro f(x) %}{{ f(x) }}{% endmacro %}{{ f(1) }}", 422, "bad template"},
		{"recursive loop", "{% for x in tags recursive %}{{ loop(tags) }}{% endfor %}", 422, "recursive"},
		{"unknown filter", "{{ name|nope }}", 422, "bad template: line 1: filter 'nope' not found"},
		{"filter misuse", "a\n{{ n|join }}", 422, "bad template: line 2: join: not a list: 42"},
		{"left-out filter", "{{ name|center(1000000000) }}", 422, "center"},
		{"no methods", "{{ name.upper() }}", 422, "upper"},
		{"no lipsum", "{{ lipsum(1000000) }}", 422, "lipsum"},
		{"giant range", "{% for i in range(1000000000) %}x{% endfor %}", 422, "range of 1000000000 numbers"},
		{"giant range of 10**9", "{% for i in range(10**9) %}x{% endfor %}", 422, "range of"},
		{"nested loops", "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}", 422, "too much work"},
		{"nested loops over data", "{% for i in range(100000) %}{% for j in items %}{% for k in tags %}{% endfor %}{% endfor %}{% endfor %}", 422, "too much work"},
		{"quadratic sort", "{% set l = range(1000)|list %}{% for x in l %}{{ l|sort|first }}{% endfor %}", 422, "too much work"},
		{"string repeat", `{{ "x" * 1000000000 }}`, 422, "longer than the message limit"},
		{"doubling", doubling, 422, "longer than the message limit"},
		{"nested lists", nested, 422, "longer than the message limit"},
		{"replace growth", `{{ big|replace("b", big ~ big) }}`, 422, "replace"},
		{"map growth", `{{ range(100000)|map("replace", "", big)|length }}`, 422, "too much work"},
		{"join growth", `{{ range(100000)|join(big) }}`, 422, "join"},
		{"deep statements", strings.Repeat("{% if true %}", 65) + "x" + strings.Repeat("{% endif %}", 65), 422, "nested more than 64 deep"},
		{"deep brackets", "{{ " + strings.Repeat("(", 65) + "1" + strings.Repeat(")", 65) + " }}", 422, "line 1 column"},
		{"long chain", "{{ 1" + strings.Repeat(" + 1", 20000) + " }}", 422, "nests too deep"},
		{"huge source", strings.Repeat("x", 1<<20) + "{% if true %}{% endif %}", 422, "at most 1048576 bytes"},
		{"huge output", "{% for i in range(100000) %}{{ big }}{% endfor %}", 413, "max_message_size"},
		{"division by zero", "{{ n % 0 }}", 422, "bad template"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			body := mustJSON(t, map[string]any{
				"envelope_sender": "noreply@example.test",
				"content":         map[string]any{"text_body": tc.body},
				"substitutions":   jinjaSubs,
				"recipients":      []map[string]any{{"email": "rcpt@example.test", "name": "Jane"}, {"email": "rcpt2@example.test"}},
			})
			start := time.Now()
			a := do(t, c, "POST", base+"/api/inject/v1", body, nil)
			if d := time.Since(start); d > 3*time.Second {
				t.Errorf("took %v", d)
			}
			checkRefusal(t, a, tc.status, tc.errHas)
		})
	}
	if n := len(inj.messages()); n != 0 {
		t.Errorf("%d messages were injected by refused requests", n)
	}
}

// TestJinjaRequestBudget: the renders of one request share a step budget;
// past it the whole request is refused, nothing spooled.
func TestJinjaRequestBudget(t *testing.T) {
	defer func(n int) { jinjaMaxRequestSteps = n }(jinjaMaxRequestSteps)
	jinjaMaxRequestSteps = 5000
	inj := &recordingInjector{}
	_, base := startServer(t, testOptions(inj))
	rcpts := make([]map[string]any, 100)
	for i := range rcpts {
		rcpts[i] = map[string]any{"email": "r" + strconv.Itoa(i) + "@example.test"}
	}
	body := mustJSON(t, map[string]any{
		"envelope_sender": "noreply@example.test",
		"content":         map[string]any{"text_body": "{% for i in range(100) %}{{ i }}{% endfor %}"},
		"recipients":      rcpts,
	})
	a := do(t, client(t, "127.0.0.1"), "POST", base+"/api/inject/v1", body, nil)
	checkRefusal(t, a, 422, "templates of this request do too much work together")
	if n := len(inj.messages()); n != 0 {
		t.Errorf("%d messages spooled", n)
	}
}

// TestJinjaTemplateLimit: render with a limit, as the fast path's
// TestTemplateLimit; dst is kept on errors.
func TestJinjaTemplateLimit(t *testing.T) {
	tm, err := compileTemplate("{% for i in range(3) %}{{ big }}{% endfor %}", -1)
	if err != nil || tm.jinja == nil {
		t.Fatalf("compile: %v", err)
	}
	v := &vars{global: map[string]any{"big": strings.Repeat("x", 100)}}
	if out, err := tm.render([]byte("head"), v, false, 4+300); err != nil || len(out) != 304 {
		t.Errorf("at the limit: %d %v", len(out), err)
	}
	if out, err := tm.render([]byte("head"), v, false, 4+299); !errors.Is(err, mimebuild.ErrTooLarge) || string(out) != "head" {
		t.Errorf("past the limit: %q %v", out, err)
	}
	// The header section is the rendered one: a statement can move an
	// output into it, or out of it.
	src := "{% if body_first %}\n\n{% endif %}Subject: {{ s|lower }}\n\nbody {{ s }}"
	tm, _ = compileTemplate(src, strings.Index(src, "\n\n"))
	for _, c := range []struct {
		bodyFirst bool
		s         string
		ok        bool
	}{{false, "A\nBcc: x@example.test", false}, {true, "A\nBcc: x@example.test", true}, {false, "fine", true}, {false, "A\rB", false}} {
		v = &vars{global: map[string]any{"s": c.s, "body_first": c.bodyFirst}}
		_, err := tm.render([]byte("Date: x\n"), v, false, noLimit)
		if c.ok && err != nil || !c.ok && !errors.Is(err, errHeaderValue) {
			t.Errorf("body_first %v, s %q: %v", c.bodyFirst, c.s, err)
		}
	}
}

// TestJinjaCache: a template is parsed once and shared; concurrent renders
// of the shared template (text and HTML) do not mix their data; the cache
// stays within its bounds.
func TestJinjaCache(t *testing.T) {
	src := "{% for t in tags %}{{ t|upper }}{% endfor %} {{ name }}<{{ n }}>"
	a, err := compileTemplate(src, -1)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := compileTemplate(src, -1)
	if a.jinja != b.jinja {
		t.Error("the same source was compiled twice")
	}
	if c, _ := compileTemplate(src, 0); c.jinja == a.jinja {
		t.Error("a whole message shares the builder's template")
	}
	done := make(chan error)
	for g := range 8 {
		go func() {
			for i := range 50 {
				name := strconv.Itoa(g) + "-" + strconv.Itoa(i)
				v := &vars{name: &name, global: map[string]any{"tags": []any{"a&", name}, "n": i}}
				out, err := a.render(nil, v, g%2 == 0, noLimit)
				want := "A&" + strings.ToUpper(name) + " " + name + "<" + strconv.Itoa(i) + ">"
				if g%2 == 0 {
					want = "A&amp;" + strings.ToUpper(name) + " " + name + "<" + strconv.Itoa(i) + ">"
				}
				if err != nil || string(out) != want {
					done <- fmt.Errorf("render %q %v, want %q", out, err, want)
					return
				}
			}
			done <- nil
		}()
	}
	for range 8 {
		if err := <-done; err != nil {
			t.Error(err)
		}
	}
	for i := range 3 * jinjaCacheEntries {
		compileTemplate(strings.Repeat("x", 40<<10)+"{{ n|int }}"+strconv.Itoa(i), -1)
	}
	jinjaCache.mu.Lock()
	defer jinjaCache.mu.Unlock()
	if len(jinjaCache.m) > jinjaCacheEntries || jinjaCache.bytes > jinjaCacheBytes {
		t.Errorf("cache: %d entries, %d bytes", len(jinjaCache.m), jinjaCache.bytes)
	}
}

// FuzzTemplate compiles arbitrary sources and renders them with fixed
// data: no panic, and every render ends (the sandbox's limits).
func FuzzTemplate(f *testing.F) {
	for _, s := range []string{
		"Hi {{ name }}", "{% if vip %}a{% else %}b{% endif %}", "{% for x in items %}{{ loop.index }}{{ x.name|upper }}{% endfor %}",
		"{{ tags|join(', ') }}", `{% set a = "x" ~ name %}{{ a * 3 }}`, "{# c #}{{ n // 0 }}", "{{ range(10)|sum }}",
		"{% for i in range(1000) %}{% for j in range(1000) %}{{ i }}{% endfor %}{% endfor %}", "{{ user['address'].city|default('?') }}",
		"{% raw %}{{{% endraw %}", "{{ [1, [2, {'a': 3}]] + [4] }}", "{{ 10 ** 400 }}", "{{ big|replace('', big) }}",
	} {
		f.Add(s, 0)
	}
	name := "Jane"
	global := map[string]any{}
	for k, x := range jinjaSubs {
		global[k] = x
	}
	global["vip"] = true
	f.Fuzz(func(t *testing.T, src string, headerEnd int) {
		tm, err := compileTemplate(src, headerEnd%(len(src)+1))
		if err != nil {
			if !errors.Is(err, ErrTemplate) {
				t.Fatalf("compile %q: %v is not ErrTemplate", src, err)
			}
			return
		}
		start := time.Now()
		v := &vars{email: "j@example.test", name: &name, global: global}
		tm.render(nil, v, headerEnd%2 == 0, 64<<10)
		if d := time.Since(start); d > 2*jinjaRenderTime {
			t.Fatalf("render of %q took %v", src, d)
		}
	})
}

// BenchmarkTemplateJinja: the same text as BenchmarkTemplateRender with
// one filter, so that gonja renders it.
func BenchmarkTemplateJinja(b *testing.B) {
	tm, err := compileTemplate(strings.Repeat("Hello {{ name|upper }}, your code is {{ code }}.\n", 20), -1)
	if err != nil || tm.jinja == nil {
		b.Fatal(err)
	}
	name := "Jane"
	v := &vars{recipient: map[string]any{"code": "X123"}, name: &name, shared: &jinjaShared{}}
	var buf []byte
	b.ReportAllocs()
	for b.Loop() {
		buf, _ = tm.render(buf[:0], v, true, noLimit)
	}
}

// BenchmarkTemplateJinjaLoop: a loop over a list with an if.
func BenchmarkTemplateJinjaLoop(b *testing.B) {
	tm, _ := compileTemplate("{% for it in items %}{% if it.price > 3 %}{{ it.name }}: {{ it.price }}\n{% endif %}{% endfor %}", -1)
	v := &vars{global: jinjaSubs, shared: &jinjaShared{}}
	var buf []byte
	b.ReportAllocs()
	for b.Loop() {
		buf, _ = tm.render(buf[:0], v, false, noLimit)
	}
}

// BenchmarkTemplateJinjaCompile: what parsing BenchmarkTemplateJinja's
// template costs (once, when jinjaCache does not have it).
func BenchmarkTemplateJinjaCompile(b *testing.B) {
	src := strings.Repeat("Hello {{ name|upper }}, your code is {{ code }}.\n", 20)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := parseJinja(src, -1, false); err != nil {
			b.Fatal(err)
		}
	}
}
