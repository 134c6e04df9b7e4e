package admin

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// FuzzAdminRequest feeds arbitrary bodies and queries to every admin
// endpoint through httpapi's gate, over a real spool and delivery loop with
// mail queued: the answer is always JSON with a known status, a refusal
// always carries {"error"}, and nothing panics.
func FuzzAdminRequest(f *testing.F) {
	seeds := []struct {
		method uint8
		path   uint8
		query  string
		body   string
	}{
		{1, 2, "", `{"domain":"x.test","reason":"r","duration":"5m"}`},
		{1, 3, "", `{"tenant":"acme","site":"127.0.0.1:1","duration":"0"}`},
		{2, 3, "", `{"id":"rule-1"}`},
		{2, 3, "", `{"domain":"x.test"}`},
		{2, 2, "", `{"id":""}`},
		{0, 1, "id=x&want_body=true", ``},
		{0, 0, "", ``},
		{1, 2, "", `{"domain":"x.test","expires":"2091-01-01T00:00:00Z"}`},
		{1, 2, "", `{"domain":`},
		{1, 3, "", `{"domain":"x.test","duration":"99999999999999h"}`},
		{1, 2, "", "{\"domain\":\"x\u0000.test\"}"},
		{0, 1, "id=%ff%00", ``},
		{0, 7, "domain=x.test&limit=2&group_by=domain", ``},
		{0, 7, "state=dead&since=1h&min_attempts=x", ``},
		{1, 8, "", `{"domain":"y.test","reason":"r"}`},
		{1, 9, "", `{"ids":["nope"]}`},
		{0, 10, "id=x&body=1", ``},
		{2, 10, "", `{"domain":"x.test","since":"2d"}`},
	}
	for _, s := range seeds {
		f.Add(s.method, s.path, s.query, s.body)
	}
	w := newWorld(f)
	w.queueMail(f, "acme", "c1", "a@x.test", "b@y.test")
	w.queueMail(f, "other", "", "c@x.test")
	methods := []string{http.MethodGet, http.MethodPost, http.MethodDelete, http.MethodPut}
	paths := []string{PathQueueSummary, PathInspectMessage, PathBounce, PathSuspend, "/api/admin/x", PathRetry, PathHold,
		PathQueue, PathQueueBounce, PathQueueDelete, PathDeadLetters, PathTLSReports}
	allowed := map[int]bool{200: true, 400: true, 403: true, 404: true, 405: true, 413: true, 422: true}
	f.Fuzz(func(t *testing.T, method, path uint8, query, body string) {
		target := paths[int(path)%len(paths)]
		if q := strings.Map(func(r rune) rune {
			if r <= ' ' || r == '#' || r == 0x7f {
				return -1
			}
			return r
		}, query); q != "" {
			target += "?" + q
		}
		req := httptest.NewRequest(methods[int(method)%len(methods)], "/", strings.NewReader(body))
		req.URL.Path = target
		if i := strings.IndexByte(target, '?'); i >= 0 {
			req.URL.Path, req.URL.RawQuery = target[:i], target[i+1:]
		}
		req.RemoteAddr = "127.0.0.1:1"
		if len(body) > 0 && body[0]&1 == 1 {
			req.Header.Set("Authorization", "Bearer key-acme")
		}
		rr := httptest.NewRecorder()
		w.api.ServeHTTP(rr, req)
		if !allowed[rr.Code] {
			t.Fatalf("%s %s %q: status %d: %s", req.Method, target, body, rr.Code, rr.Body.String())
		}
		if !strings.HasPrefix(rr.Header().Get("Content-Type"), "application/json") || !json.Valid(rr.Body.Bytes()) {
			t.Fatalf("%s %s: not JSON: %q", req.Method, target, rr.Body.String())
		}
		if rr.Code >= 400 && !strings.Contains(rr.Body.String(), `"error"`) {
			t.Fatalf("%s %s: refusal without error: %s", req.Method, target, rr.Body.String())
		}
	})
}
