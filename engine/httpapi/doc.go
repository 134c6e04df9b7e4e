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
// Templates (/api/inject/v1): the KumoMTA API embeds Jinja; Gannet
// implements the subset that inject requests use in practice, "{{ name }}"
// and dotted paths "{{ user.first }}", looked up in the recipient's
// substitutions, then its "email" and "name", then the global
// substitutions. An unknown variable expands to "" (Jinja's default
// undefined). Strings expand as they are, numbers and booleans as JSON
// writes them, null as "", objects and arrays as JSON. Values are
// HTML-escaped in html_body (Jinja auto-escapes .html templates) and
// nowhere else. In a builder "content", the subject, text_body, html_body,
// the display names of from and reply_to, and the values of headers are
// templates (as in KumoMTA); addresses and attachments are not. A value
// with CR or LF placed in a header is refused for that recipient. Anything else Jinja would parse — "{% … %}", "{# … #}",
// filters, expressions — refuses the request with 422 instead of sending
// half-expanded mail; template_dialect "Static" turns templating off.
// Recipients that fail (bad address, header injection through a
// substitution) are listed in failed_recipients and errors while the others
// are spooled; if none can be built the answer is 422 with those lists and
// an "error". A whole-message "content" string gets Date and Message-ID
// fields when it has none, and CRLF line endings.
package httpapi
