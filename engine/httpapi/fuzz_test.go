package httpapi

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
)

// FuzzInjectJSON sends arbitrary bodies to both inject endpoints: the
// handler never panics (a recovered panic would be a 500) and always
// answers JSON with one of the documented statuses; refusals carry "error".
func FuzzInjectJSON(f *testing.F) {
	f.Add(false, []byte(okMessage))
	f.Add(true, []byte(okInject))
	f.Add(false, []byte(`{"from":"A <a@example.test>","to":"b@example.test","cc":["c@example.test"],"bcc":["d@example.test"],"subject":"Grüße","headers":{"X-A":"b","Reply-To":"r@example.test","Message-ID":"<x@y>"},"text":"t","html":"<p>h</p>","attachments":[{"filename":"a.txt","content_type":"text/plain","content":"aGVsbG8=","content_id":"c1"}],"tenant":"t","campaign":"c"}`))
	f.Add(true, []byte(`{"envelope_sender":"a@example.test","content":"To: {{ name }} <{{ email }}>\nSubject: {{ s.x }}\n\n{{ g }}","recipients":[{"email":"b@example.test","name":"B","substitutions":{"s":{"x":1}}},{"email":"bad"}],"substitutions":{"g":[1,null,true]}}`))
	f.Add(true, []byte(`{"envelope_sender":"a@example.test","content":{"from":{"email":"f@example.test","name":"F"},"reply_to":{"email":"r@example.test"},"subject":"{{a}}","html_body":"{{a}}","headers":{"X-Y":"{{ b }}"},"attachments":[{"data":"x","content_type":"text/plain","file_name":"f.txt"}]},"recipients":[{"email":"b@example.test"}]}`))
	f.Add(true, []byte(`{"envelope_sender":"a@example.test","content":{"text_body":"{%"},"recipients":[{"email":"b@example.test"}]}`))
	f.Add(false, []byte(`{"from":"a@example.test","to":["b@example.test"],"subject":"a\r\nb"}`))
	f.Add(true, []byte(`null`))
	f.Add(false, []byte(``))
	f.Add(true, []byte(`{"content":"\u0000"}`))
	inj := &recordingInjector{}
	opts := testOptions(inj)
	opts.MaxBodyBytes = 1 << 20
	opts.MaxRecipients = 50
	h := New(opts).Handler()
	allowed := map[int]bool{200: true, 202: true, 400: true, 403: true, 413: true, 422: true}
	f.Fuzz(func(t *testing.T, kumo bool, body []byte) {
		path := "/v1/message"
		if kumo {
			path = "/api/inject/v1"
		}
		req := httptest.NewRequest(http.MethodPost, path, bytes.NewReader(body))
		req.RemoteAddr = "127.0.0.1:1234"
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if !allowed[rec.Code] {
			t.Fatalf("status %d for %q: %s", rec.Code, body, rec.Body.Bytes())
		}
		var ans map[string]any
		if err := json.Unmarshal(rec.Body.Bytes(), &ans); err != nil {
			t.Fatalf("answer is not JSON: %q", rec.Body.Bytes())
		}
		if rec.Code >= 400 {
			if s, _ := ans["error"].(string); s == "" {
				t.Fatalf("refusal %d without error: %s", rec.Code, rec.Body.Bytes())
			}
		}
		inj.reset()
	})
}
