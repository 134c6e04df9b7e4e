// Package httpapi is Gannet's HTTP API listener ([[http_listener]]): message
// injection, the liveness check, and the mount points of /metrics and the
// admin API (contract.md, "HTTP").
//
// Endpoints:
//
//	POST /v1/message             simple JSON → one MIME message (mimebuild) → 202 {"id","recipients"}
//	POST /api/inject/v1          KumoMTA's inject schema → one message per recipient → 200 {"success_count",…}
//	GET  /api/check-liveness/v1  200 {"status":"ok"}, no auth
//	GET  /metrics                Options.Metrics            (service "metrics")
//	*    /api/admin/…            Options.Admin              (service "admin")
//
// Every request passes the same gate, in this order: the path and its
// service must be enabled on the listener (else 404), the method must fit
// (405 with Allow), the caller must be trusted or present a valid
// "Authorization: Bearer <key>" (401), its key must have a token left in its
// bucket (429 with Retry-After), the body must fit MaxBodyBytes (413), parse
// (400) and make sense (422: bad addresses, CR or LF in any header value,
// subject, name or address — header injection —, templates we cannot
// expand, reserved headers), and what it builds must fit (413): each message
// at most MaxMessageBytes ([[http_listener]] max_message_size) once
// templates are expanded and parts encoded, and all the messages of the
// request together at most MaxInjectBytes (max_inject_bytes). Sizes are
// counted before the bytes are made — a template's expansion from the
// lengths of its pieces, base64 from the data's length, quoted-printable
// stopping at the limit (buildBudget) — so a small request cannot make the
// process build huge messages; a request refused for size spools nothing.
// Only then is the Injector called, once per request, with every message:
// it spools them all durably or none, and the answer is written after it
// returns (503 with Retry-After when it reports ErrQueueFull — the queue or
// the disk is full —, 500 otherwise). Every answer of ours is JSON; a refusal is
// {"error": "…"}; a panic in a handler is a 500 JSON answer, never a trace.
//
// Trust is by TCP peer address only (X-Forwarded-For is ignored). A key that
// is presented is checked even from a trusted host and binds its tenant: a
// request naming another tenant is refused with 403.
//
// Templates (/api/inject/v1) are KumoMTA's Jinja (template_dialect "Jinja",
// the default; "Static" turns templating off). Variables are looked up in
// the recipient's substitutions, then its "email" and "name", then the
// global substitutions. Each template is compiled once per request (and
// the Jinja ones kept in a small cache by source, 64 templates of up to
// 64 KiB, 1 MiB together). A
// template of literal text and "{{ name }}" / "{{ user.first }}"
// placeholders takes the fast path (template.go, no template engine);
// anything else — "{% … %}", "{# … #}", filters, expressions, whitespace
// control — is compiled by gonja (github.com/nikolalohinski/gonja/v2) in a
// sandbox (jinja.go):
//
//   - statements: if / elif / else, for (else, "if" filter, loop.index,
//     loop.first, loop.last, loop.length, loop.cycle, break, continue),
//     set (name = expression; inside if it is seen after the if, inside
//     for it is local to the iteration, as in Jinja), raw; comments;
//     "{%-" / "-%}" whitespace control;
//   - expressions: literals, lists, dicts, + - * / // % **, ~, comparisons,
//     and / or / not, in, "a if c else b", is defined / is none / … tests,
//     x.y and x["y"] / x[0];
//   - filters: upper, lower, title, capitalize, trim, default / d, escape /
//     e, safe, length / count, join, replace, first, last, int, float,
//     string, abs, round, sum, min, max, sort, unique, reverse, list, map,
//     select, reject, selectattr, rejectattr, items, dictsort, striptags,
//     truncate, wordcount, tojson, urlencode; global range() (at most
//     100000 numbers);
//   - not available (422): include, extends, import, from, macro, call,
//     block, with, filter blocks, do, autoescape, trans, recursive loops,
//     the block form of set and set of an attribute or item, Python-style
//     methods ("x.upper()"), other filters and globals. No template can
//     read a file or reach Go values beyond the request's JSON data.
//
// An unknown variable, or a path through one ("a.b.c" when a or b is
// missing), is "" on both paths (Jinja's default undefined). Strings expand
// as they are, booleans as true / false, numbers as JSON writes them on the
// fast path (1.50) and as numbers on the Jinja path (1.5), null as "",
// objects and arrays as text. Outputs are HTML-escaped in html_body
// (Jinja auto-escapes .html templates; "|safe" opts out) and nowhere else;
// "|escape" is there for the rest. A final newline is kept. In a builder
// "content", the subject, text_body, html_body, the display names of from
// and reply_to, and the values of headers are templates (as in KumoMTA);
// addresses and attachments are not. A value with CR or LF placed in a
// header — by a placeholder or an output ("{{ … }}") that lands in the
// header section of a whole message (the rendered one: up to its first
// empty line), or in any rendered header value of a builder — is refused
// for that recipient; header-section lines holding "{%" or "{#"
// need not look like fields.
//
// A template for gonja may be at most 1 MiB (its lexer allocates per byte
// of source); longer ones may only use "{{ path }}" placeholders.
//
// A template that does not compile refuses the request with 422 and says
// where: "content.text_body: bad template: line 2 column 7: …". An error
// while rendering (an unknown filter, a filter misused) fails that
// recipient ("bad template: line 2: …"). The Jinja sandbox is bounded: the
// output by max_message_size (413); every string or list an operator or a
// filter makes by the same size, checked before it is made; each render by
// 250000 steps (loop iterations, items iterated, calls, 256 bytes of string
// work) and the renders of a request by 100 times that and 10 seconds —
// past those the whole request is refused with 422, nothing spooled.
//
// Recipients that fail (bad address, header injection through a
// substitution) are listed in failed_recipients and errors while the others
// are spooled; if none can be built the answer is 422 with those lists and
// an "error". A whole-message "content" string gets Date and Message-ID
// fields when it has none, and CRLF line endings.
package httpapi
