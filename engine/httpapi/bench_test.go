package httpapi

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
)

// discardInjector accepts everything at once (the spool is not measured).
type discardInjector struct{ ids []string }

func (d *discardInjector) Inject(ctx context.Context, msgs []Message) ([]string, error) {
	for len(d.ids) < len(msgs) {
		d.ids = append(d.ids, "id"+strconv.Itoa(len(d.ids)))
	}
	return d.ids[:len(msgs)], nil
}

func benchHandler(b *testing.B, path string, body []byte, wantStatus int) {
	opts := testOptions(&discardInjector{})
	h := New(opts).Handler()
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		req := httptest.NewRequest(http.MethodPost, path, bytes.NewReader(body))
		req.RemoteAddr = "127.0.0.1:1234"
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != wantStatus {
			b.Fatalf("status %d: %s", rec.Code, rec.Body.Bytes())
		}
	}
}

// BenchmarkInjectMessage: POST /v1/message, one recipient, text + HTML.
func BenchmarkInjectMessage(b *testing.B) {
	body := []byte(`{"from":"News <news@example.test>","to":["user@example.test"],"subject":"Your weekly digest",` +
		`"headers":{"X-Campaign-Ref":"weekly"},"text":"Hello,\nhere is your digest.\n","html":"<p>Hello,</p><p>here is your digest.</p>"}`)
	benchHandler(b, "/v1/message", body, http.StatusAccepted)
}

// BenchmarkInjectKumo100: POST /api/inject/v1, 100 recipients with
// substitutions, builder content with an attachment: 100 messages.
func BenchmarkInjectKumo100(b *testing.B) {
	benchHandler(b, "/api/inject/v1", kumo100(b, 100), http.StatusOK)
}

// BenchmarkInjectKumo100Raw: the same with a whole-message template.
func BenchmarkInjectKumo100Raw(b *testing.B) {
	rcpts := make([]map[string]any, 100)
	for i := range rcpts {
		rcpts[i] = map[string]any{"email": "user" + strconv.Itoa(i) + "@example.test", "name": "User " + strconv.Itoa(i)}
	}
	body := mustJSON(b, map[string]any{
		"envelope_sender": "bounces@example.test",
		"recipients":      rcpts,
		"content":         "From: news@example.test\nTo: \"{{ name }}\" <{{ email }}>\nSubject: Hello {{ name }}\n\nHello {{ name }}, this is your digest.\n",
	})
	benchHandler(b, "/api/inject/v1", body, http.StatusOK)
}

// BenchmarkInjectKumo100RawJinja: BenchmarkInjectKumo100Raw with a
// statement and a filter, so that gonja compiles and renders the template.
func BenchmarkInjectKumo100RawJinja(b *testing.B) {
	rcpts := make([]map[string]any, 100)
	for i := range rcpts {
		rcpts[i] = map[string]any{"email": "user" + strconv.Itoa(i) + "@example.test", "name": "User " + strconv.Itoa(i)}
	}
	body := mustJSON(b, map[string]any{
		"envelope_sender": "bounces@example.test",
		"recipients":      rcpts,
		"content": "From: news@example.test\nTo: \"{{ name }}\" <{{ email }}>\nSubject: Hello {{ name|upper }}\n\n" +
			"Hello {{ name }}, {% if name %}this is your digest{% else %}hello{% endif %}.\n",
	})
	benchHandler(b, "/api/inject/v1", body, http.StatusOK)
}
