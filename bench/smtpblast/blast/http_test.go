package blast

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// fakeInjectAPI answers the two inject endpoints as contract.md describes.
// It is a fake because the real API (engine/inject) is another package.
type fakeInjectAPI struct {
	mu       sync.Mutex
	messages []messageRequest
	injects  []injectRequest
	n        atomic.Int64
}

func (f *fakeInjectAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	switch r.URL.Path {
	case "/v1/message":
		var req messageRequest
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil || req.From == "" || len(req.To) == 0 {
			w.WriteHeader(400)
			w.Write([]byte(`{"error":"bad request"}`))
			return
		}
		f.mu.Lock()
		f.messages = append(f.messages, req)
		f.mu.Unlock()
		w.WriteHeader(202)
		json.NewEncoder(w).Encode(map[string]any{"id": "q" + strconv.FormatInt(f.n.Add(1), 10), "recipients": len(req.To)})
	case "/api/inject/v1":
		var req injectRequest
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil || req.Content == "" {
			w.WriteHeader(400)
			w.Write([]byte(`{"error":"bad request"}`))
			return
		}
		f.mu.Lock()
		f.injects = append(f.injects, req)
		f.mu.Unlock()
		json.NewEncoder(w).Encode(map[string]any{"success_count": len(req.Recipients), "fail_count": 0, "failed_recipients": []string{}, "errors": []string{}})
	default:
		w.WriteHeader(404)
		w.Write([]byte(`{"error":"not found"}`))
	}
}

func TestHTTPModes(t *testing.T) {
	api := &fakeInjectAPI{}
	srv := httptest.NewServer(api)
	defer srv.Close()

	var ids syncBuffer
	res := mustRun(t, Config{HTTPURL: srv.URL, HTTPMode: "message", Connections: 2, Messages: 30, Rcpts: 2, IDs: &ids, RunID: "h"})
	if res.Acked != 30 || res.Replies[202] != 30 || res.RcptsAccepted != 60 || len(api.messages) != 30 || res.Mode != "http-message" {
		t.Fatalf("message mode: %+v", res)
	}
	m := api.messages[0]
	if !strings.HasPrefix(m.Headers["X-Blast-Id"], "h-") || len(m.To) != 2 || !strings.Contains(m.Text, "\r\n.\r\n") {
		t.Errorf("message request %+v", m)
	}
	for _, line := range strings.Split(strings.TrimSpace(ids.b.String()), "\n") {
		if q, b, _ := strings.Cut(line, "\t"); !strings.HasPrefix(q, "q") || !strings.HasPrefix(b, "h-") {
			t.Errorf("id line %q", line)
		}
	}

	res = mustRun(t, Config{HTTPURL: srv.URL + "/", HTTPMode: "inject", Messages: 10, Rcpts: 3})
	if res.Acked != 10 || res.Replies[200] != 10 || res.RcptsAccepted != 30 || len(api.injects) != 10 {
		t.Fatalf("inject mode: %+v", res)
	}
	if c := api.injects[0].Content; !strings.Contains(c, "X-Blast-Id: ") || !strings.Contains(c, "\r\n\r\n") {
		t.Errorf("inject content %q", c[:min(len(c), 200)])
	}

	// A full URL is used as given; a 404 is a failure, not an abort.
	res = mustRun(t, Config{HTTPURL: srv.URL + "/elsewhere", HTTPMode: "message", Messages: 3})
	if res.Failed != 3 || res.Replies[404] != 3 || len(res.Errors) == 0 {
		t.Fatalf("404: %+v", res)
	}
}
