package httpapi

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
)

// post sends one request to the API's handler from a trusted address.
func post(t *testing.T, s *Server, path string, body []byte) answer {
	t.Helper()
	r := httptest.NewRequest(http.MethodPost, path, strings.NewReader(string(body)))
	r.RemoteAddr = "127.0.0.1:50000"
	w := httptest.NewRecorder()
	s.Handler().ServeHTTP(w, r)
	a := answer{status: w.Code, header: w.Header(), body: w.Body.Bytes()}
	json.Unmarshal(a.body, &a.json)
	return a
}

// amplified is the request of issue #15: eight recipients whose message
// places a 1 MiB substitution 100 times (100 MiB each from a 1 MiB request),
// as a whole message or as a builder's text_body or html_body.
func amplified(t *testing.T, content string) []byte {
	rcpts := make([]map[string]any, 8)
	for i := range rcpts {
		rcpts[i] = map[string]any{"email": fmt.Sprintf("r%d@example.test", i)}
	}
	body := strings.Repeat("{{ big }}\n", 100)
	var c any
	switch content {
	case "raw":
		c = "From: a@example.test\nSubject: amp\n\n" + body
	case "text_body", "html_body":
		c = map[string]any{"subject": "amp", content: body}
	}
	return mustJSON(t, map[string]any{"envelope_sender": "a@example.test", "recipients": rcpts,
		"content": c, "substitutions": map[string]any{"big": strings.Repeat("<", 1<<20)}})
}

// TestInjectAmplificationRefused: the amplification request is answered
// 413 with a JSON error naming max_message_size, nothing reaches the
// injector, and nothing was rendered: the request allocates less than
// 64 MiB (its JSON decoded), not the 800 MiB its messages would be.
func TestInjectAmplificationRefused(t *testing.T) {
	for _, content := range []string{"raw", "text_body", "html_body"} {
		t.Run(content, func(t *testing.T) {
			inj := &recordingInjector{}
			s := New(testOptions(inj))
			req := amplified(t, content)
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			a := post(t, s, pathInject, req)
			runtime.ReadMemStats(&after)
			if a.status != http.StatusRequestEntityTooLarge || !strings.Contains(a.errorText(), "max_message_size") {
				t.Errorf("answer %s, want 413 with a JSON error naming max_message_size", a)
			}
			if inj.calls != 0 {
				t.Errorf("the injector was called %d times", inj.calls)
			}
			if grew := after.TotalAlloc - before.TotalAlloc; grew > 64<<20 {
				t.Errorf("the refused request allocated %d MiB", grew>>20)
			}
		})
	}
}

// sized is an inject request for n recipients whose messages are each a
// little over size bytes, as a whole message (raw) or built (builder).
func sized(t *testing.T, n, size int, builder bool) []byte {
	rcpts := make([]map[string]any, n)
	for i := range rcpts {
		rcpts[i] = map[string]any{"email": fmt.Sprintf("r%d@example.test", i)}
	}
	var c any = "From: a@example.test\nSubject: sized\n\n{{ fill }}\n"
	if builder {
		c = map[string]any{"subject": "sized", "text_body": "{{ fill }}"}
	}
	return mustJSON(t, map[string]any{"envelope_sender": "a@example.test", "recipients": rcpts,
		"content": c, "substitutions": map[string]any{"fill": strings.Repeat("0123456789abcdef\n", size/17)}})
}

// TestInjectMessageLimitExact: a message of exactly max_message_size bytes
// is spooled; with a limit one byte smaller the request is refused with 413
// and nothing is spooled. Both content forms.
func TestInjectMessageLimitExact(t *testing.T) {
	for _, builder := range []bool{false, true} {
		inj := &recordingInjector{}
		req := sized(t, 1, 200<<10, builder)
		if a := post(t, New(testOptions(inj)), pathInject, req); a.status != http.StatusOK {
			t.Fatalf("builder %v: %s", builder, a)
		}
		size := len(inj.messages()[0].Body)
		for _, c := range []struct {
			limit  int
			status int
		}{{size, http.StatusOK}, {size - 1, http.StatusRequestEntityTooLarge}} {
			inj.reset()
			opts := testOptions(inj)
			opts.MaxMessageBytes = int64(c.limit)
			a := post(t, New(opts), pathInject, req)
			if a.status != c.status {
				t.Errorf("builder %v, message of %d bytes, limit %d: %s, want %d", builder, size, c.limit, a, c.status)
			}
			if spooled := len(inj.messages()); (c.status == http.StatusOK) != (spooled == 1) {
				t.Errorf("builder %v, limit %d: %d messages spooled", builder, c.limit, spooled)
			}
		}
	}
}

// TestInjectTotalLimit: max_inject_bytes bounds a request's messages
// together: eight messages of about 600 KiB pass a 4 MiB total one by one
// but not together, and the answer is 413 naming max_inject_bytes, with
// nothing spooled (all or nothing); five of them fit.
func TestInjectTotalLimit(t *testing.T) {
	inj := &recordingInjector{}
	opts := testOptions(inj)
	opts.MaxMessageBytes, opts.MaxInjectBytes = 1<<20, 4<<20
	s := New(opts)
	a := post(t, s, pathInject, sized(t, 8, 600<<10, false))
	if a.status != http.StatusRequestEntityTooLarge || !strings.Contains(a.errorText(), "max_inject_bytes") {
		t.Errorf("8 × 600 KiB: %s, want 413 naming max_inject_bytes", a)
	}
	if inj.calls != 0 {
		t.Errorf("the injector was called %d times", inj.calls)
	}
	if a := post(t, s, pathInject, sized(t, 5, 600<<10, true)); a.status != http.StatusOK || len(inj.messages()) != 5 {
		t.Errorf("5 × 600 KiB: %s, %d spooled", a, len(inj.messages()))
	}
}

// TestInjectFailedRecipientsCount: what was rendered for a recipient that
// then failed (here a header value with CR LF, found after the body) counts
// against max_inject_bytes, so failing recipients cannot make one request
// render without end.
func TestInjectFailedRecipientsCount(t *testing.T) {
	inj := &recordingInjector{}
	opts := testOptions(inj)
	opts.MaxMessageBytes, opts.MaxInjectBytes = 1<<20, 4<<20
	rcpts := make([]map[string]any, 50)
	for i := range rcpts {
		rcpts[i] = map[string]any{"email": fmt.Sprintf("r%d@example.test", i), "substitutions": map[string]any{"h": "x\r\nBcc: v@example.test"}}
	}
	req := mustJSON(t, map[string]any{"envelope_sender": "a@example.test", "recipients": rcpts,
		"content":       map[string]any{"text_body": "{{ fill }}", "headers": map[string]string{"X-H": "{{ h }}"}},
		"substitutions": map[string]any{"fill": strings.Repeat("y", 900<<10)}})
	a := post(t, New(opts), pathInject, req)
	if a.status != http.StatusRequestEntityTooLarge || inj.calls != 0 {
		t.Errorf("50 failing recipients of 900 KiB each: %s, want 413", a)
	}
}

// TestMessageSizeLimit: POST /v1/message builds at most max_message_size:
// text that quoted-printable encoding makes too large, and an attachment
// whose base64 is too large, are refused with 413; a message that fits is
// taken.
func TestMessageSizeLimit(t *testing.T) {
	inj := &recordingInjector{}
	opts := testOptions(inj)
	opts.MaxMessageBytes = 1 << 20
	s := New(opts)
	msg := func(text string, attachment []byte) []byte {
		m := map[string]any{"from": "a@example.test", "to": "b@example.test", "subject": "size", "text": text}
		if attachment != nil {
			m["attachments"] = []map[string]any{{"filename": "a.bin", "content": base64.StdEncoding.EncodeToString(attachment)}}
		}
		return mustJSON(t, m)
	}
	for _, c := range []struct {
		name   string
		req    []byte
		status int
	}{
		{"600 KiB of 8-bit text (1.8 MiB quoted-printable)", msg(strings.Repeat("\u00e9", 300<<10), nil), http.StatusRequestEntityTooLarge},
		{"900 KiB attachment (1.2 MiB base64)", msg("see attached", make([]byte, 900<<10)), http.StatusRequestEntityTooLarge},
		{"600 KiB attachment", msg("see attached", make([]byte, 600<<10)), http.StatusAccepted},
	} {
		inj.reset()
		a := post(t, s, pathMessage, c.req)
		if a.status != c.status {
			t.Errorf("%s: %s, want %d", c.name, a, c.status)
		}
		if c.status == http.StatusRequestEntityTooLarge && (!strings.Contains(a.errorText(), "max_message_size") || inj.calls != 0) {
			t.Errorf("%s: %s, %d injector calls", c.name, a, inj.calls)
		}
	}
}
