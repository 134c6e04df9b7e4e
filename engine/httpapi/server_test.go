package httpapi

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

type refusal struct {
	name   string
	from   string // client address: 127.0.0.1 trusted, 127.0.0.9 not
	method string
	path   string
	body   string
	hdr    map[string]string
	status int
	errHas string // part of the "error" text
}

const okMessage = `{"from":"a@example.test","to":["b@example.test"],"subject":"s","text":"t"}`
const okInject = `{"envelope_sender":"a@example.test","recipients":[{"email":"b@example.test"}],"content":{"subject":"s","text_body":"t"}}`

func refusals() []refusal {
	key := map[string]string{"Authorization": "Bearer free-key"}
	return []refusal{
		{"no key untrusted", "127.0.0.9", "POST", "/v1/message", okMessage, nil, 401, "authorization required"},
		{"no key inject", "127.0.0.9", "POST", "/api/inject/v1", okInject, nil, 401, "authorization required"},
		{"wrong key", "127.0.0.9", "POST", "/v1/message", okMessage, map[string]string{"Authorization": "Bearer nope"}, 401, "invalid API key"},
		{"wrong key from trusted", "127.0.0.1", "POST", "/v1/message", okMessage, map[string]string{"Authorization": "Bearer nope"}, 401, "invalid API key"},
		{"basic auth", "127.0.0.9", "POST", "/v1/message", okMessage, map[string]string{"Authorization": "Basic YTpi"}, 401, "Bearer"},
		{"metrics untrusted", "127.0.0.9", "GET", "/metrics", "", nil, 401, "authorization"},
		{"bad JSON", "127.0.0.1", "POST", "/v1/message", `{"from":`, nil, 400, "bad JSON"},
		{"bad JSON inject", "127.0.0.9", "POST", "/api/inject/v1", `[1,2`, key, 400, "bad JSON"},
		{"not an object", "127.0.0.1", "POST", "/v1/message", `"x"`, nil, 400, "bad JSON"},
		{"unknown field", "127.0.0.1", "POST", "/v1/message", `{"form":"a@example.test"}`, nil, 400, "unknown field"},
		{"trailing data", "127.0.0.1", "POST", "/v1/message", okMessage + `{}`, nil, 400, "after the JSON"},
		{"wrong type", "127.0.0.1", "POST", "/api/inject/v1", `{"recipients":"x"}`, nil, 400, "bad JSON"},
		{"too large", "127.0.0.1", "POST", "/v1/message", `{"text":"` + strings.Repeat("x", 70000) + `"}`, nil, 413, "larger than"},
		{"too large inject", "127.0.0.9", "POST", "/api/inject/v1", `{"content":"` + strings.Repeat("x", 70000) + `"}`, key, 413, "larger than"},
		{"LF in subject", "127.0.0.1", "POST", "/v1/message", `{"from":"a@example.test","to":["b@example.test"],"subject":"a\nBcc: v@example.test"}`, nil, 422, "header injection"},
		{"CRLF in header value", "127.0.0.1", "POST", "/v1/message", `{"from":"a@example.test","to":["b@example.test"],"headers":{"X-A":"v\r\nBcc: v@example.test"}}`, nil, 422, "header injection"},
		{"CR in header name", "127.0.0.1", "POST", "/v1/message", `{"from":"a@example.test","to":["b@example.test"],"headers":{"X-A\rB":"v"}}`, nil, 422, "CR or LF"},
		{"LF in to", "127.0.0.1", "POST", "/v1/message", `{"from":"a@example.test","to":["b@example.test\nBcc: v@example.test"]}`, nil, 422, "CR or LF"},
		{"LF in from name", "127.0.0.1", "POST", "/v1/message", `{"from":"Eve\n <a@example.test>","to":["b@example.test"]}`, nil, 422, "CR or LF"},
		{"reserved header", "127.0.0.1", "POST", "/v1/message", `{"from":"a@example.test","to":["b@example.test"],"headers":{"Content-Type":"text/html"}}`, nil, 422, "set by the API"},
		{"bad address", "127.0.0.1", "POST", "/v1/message", `{"from":"a@example.test","to":["nobody"]}`, nil, 422, "to:"},
		{"no domain", "127.0.0.1", "POST", "/v1/message", `{"from":"a@example.test","to":["a@"]}`, nil, 422, "to:"},
		{"no from", "127.0.0.1", "POST", "/v1/message", `{"to":["b@example.test"]}`, nil, 422, "from is required"},
		{"no recipients", "127.0.0.1", "POST", "/v1/message", `{"from":"a@example.test"}`, nil, 422, "no recipients"},
		{"bad base64", "127.0.0.1", "POST", "/v1/message", `{"from":"a@example.test","to":["b@example.test"],"attachments":[{"filename":"a","content":"!!"}]}`, nil, 422, "base64"},
		{"tenant mismatch", "127.0.0.9", "POST", "/v1/message", `{"from":"a@example.test","to":["b@example.test"],"tenant":"other"}`, map[string]string{"Authorization": "Bearer acme-key"}, 403, "tenant"},
		{"inject no sender", "127.0.0.1", "POST", "/api/inject/v1", `{"recipients":[{"email":"b@example.test"}],"content":"Subject: x\n\ny"}`, nil, 422, "envelope_sender"},
		{"inject LF in subject", "127.0.0.1", "POST", "/api/inject/v1", `{"envelope_sender":"a@example.test","recipients":[{"email":"b@example.test"}],"content":{"subject":"a\nBcc: v@example.test","text_body":"t"}}`, nil, 422, "header injection"},
		{"inject LF in header", "127.0.0.1", "POST", "/api/inject/v1", `{"envelope_sender":"a@example.test","recipients":[{"email":"b@example.test"}],"content":{"headers":{"X-A":"a\r\nBcc: v@example.test"},"text_body":"t"}}`, nil, 422, "header injection"},
		{"inject LF in from name", "127.0.0.1", "POST", "/api/inject/v1", `{"envelope_sender":"a@example.test","recipients":[{"email":"b@example.test"}],"content":{"from":{"email":"a@example.test","name":"x\ny"},"text_body":"t"}}`, nil, 422, "CR or LF"},
		{"inject all recipients bad", "127.0.0.1", "POST", "/api/inject/v1", `{"envelope_sender":"a@example.test","recipients":[{"email":"b@example.test","name":"x\r\nBcc: v@example.test"}],"content":{"text_body":"t"}}`, nil, 422, "no message could be built"},
		{"inject unclosed statement", "127.0.0.1", "POST", "/api/inject/v1", `{"envelope_sender":"a@example.test","recipients":[{"email":"b@example.test"}],"content":{"text_body":"a\n{% if x %}y"}}`, nil, 422, "line 2"},
		{"inject include", "127.0.0.1", "POST", "/api/inject/v1", `{"envelope_sender":"a@example.test","recipients":[{"email":"b@example.test"}],"content":{"text_body":"{% include '/etc/passwd' %}"}}`, nil, 422, "content.text_body"},
		{"inject no body", "127.0.0.1", "POST", "/api/inject/v1", `{"envelope_sender":"a@example.test","recipients":[{"email":"b@example.test"}],"content":{"subject":"s"}}`, nil, 422, "text_body"},
		{"inject not a message", "127.0.0.1", "POST", "/api/inject/v1", `{"envelope_sender":"a@example.test","recipients":[{"email":"b@example.test"}],"content":"Hello there"}`, nil, 422, "not a header field"},
		{"inject content number", "127.0.0.1", "POST", "/api/inject/v1", `{"envelope_sender":"a@example.test","recipients":[{"email":"b@example.test"}],"content":5}`, nil, 422, "content must be"},
		{"inject no recipients", "127.0.0.1", "POST", "/api/inject/v1", `{"envelope_sender":"a@example.test","recipients":[],"content":"Subject: x\n\ny"}`, nil, 422, "recipients"},
		{"inject dialect", "127.0.0.1", "POST", "/api/inject/v1", `{"envelope_sender":"a@example.test","template_dialect":"Handlebars","recipients":[{"email":"b@example.test"}],"content":"Subject: x\n\ny"}`, nil, 422, "template_dialect"},
		{"GET message", "127.0.0.1", "GET", "/v1/message", "", nil, 405, "not allowed"},
		{"PUT inject", "127.0.0.1", "PUT", "/api/inject/v1", okInject, nil, 405, "not allowed"},
		{"POST metrics", "127.0.0.1", "POST", "/metrics", "", nil, 405, "not allowed"},
		{"POST liveness", "127.0.0.1", "POST", "/api/check-liveness/v1", "", nil, 405, "not allowed"},
		{"unknown path", "127.0.0.1", "GET", "/nope", "", nil, 404, "no such endpoint"},
		{"admin not mounted", "127.0.0.1", "GET", "/api/admin/queue-summary/v1", "", nil, 404, "admin"},
	}
}

// TestRefusals sends every refusal with Go's client and with curl: each
// answer has the right status and is JSON with an "error".
func TestRefusals(t *testing.T) {
	inj := &recordingInjector{}
	opts := testOptions(inj)
	opts.MaxBodyBytes = 64 << 10
	opts.Metrics = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("gannet_x 1\n")) })
	_, base := startServer(t, opts)
	clients := map[string]*http.Client{"127.0.0.1": client(t, "127.0.0.1"), "127.0.0.9": client(t, "127.0.0.9")}
	for _, c := range refusals() {
		for _, via := range []string{"go", "curl"} {
			t.Run(via+"/"+c.name, func(t *testing.T) {
				var a answer
				if via == "go" {
					a = do(t, clients[c.from], c.method, base+c.path, []byte(c.body), c.hdr)
				} else {
					a = curl(t, c.from, c.method, base+c.path, []byte(c.body), c.hdr)
				}
				checkRefusal(t, a, c.status, c.errHas)
			})
		}
	}
	if n := len(inj.messages()); n != 0 {
		t.Errorf("%d messages were injected by refused requests", n)
	}
}

func checkRefusal(t *testing.T, a answer, status int, errHas string) {
	t.Helper()
	if a.status != status {
		t.Fatalf("status %d, want %d: %s", a.status, status, a.body)
	}
	if ct := a.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("content-type %q", ct)
	}
	if a.errorText() == "" || !strings.Contains(a.errorText(), errHas) {
		t.Errorf("error %q, want it to mention %q (body %s)", a.errorText(), errHas, a.body)
	}
	if status == 405 && a.header.Get("Allow") == "" {
		t.Errorf("405 without Allow")
	}
}

func TestQueueFull(t *testing.T) {
	inj := &recordingInjector{err: fmt.Errorf("spool: depth 100000: %w", ErrQueueFull)}
	_, base := startServer(t, testOptions(inj))
	for _, path := range []string{"/v1/message", "/api/inject/v1"} {
		body := okMessage
		if path == "/api/inject/v1" {
			body = okInject
		}
		for _, via := range []string{"go", "curl"} {
			var a answer
			if via == "go" {
				a = do(t, client(t, "127.0.0.1"), "POST", base+path, []byte(body), nil)
			} else {
				a = curl(t, "127.0.0.1", "POST", base+path, []byte(body), nil)
			}
			checkRefusal(t, a, 503, "queue full")
			if a.header.Get("Retry-After") == "" {
				t.Errorf("%s %s: 503 without Retry-After", via, path)
			}
		}
	}
	// Another failure is a 500 that does not leak the cause.
	inj.err = fmt.Errorf("pebble: disk on fire at /secret/path")
	a := do(t, client(t, "127.0.0.1"), "POST", base+"/v1/message", []byte(okMessage), nil)
	checkRefusal(t, a, 500, "local error in processing")
	if strings.Contains(string(a.body), "secret") {
		t.Errorf("cause leaked: %s", a.body)
	}
	// A panic is a 500 JSON answer too.
	inj.reset()
	inj.panic = true
	a = curl(t, "127.0.0.1", "POST", base+"/api/inject/v1", []byte(okInject), nil)
	checkRefusal(t, a, 500, "internal error")
}

func TestRateLimitPerKey(t *testing.T) {
	inj := &recordingInjector{}
	opts := testOptions(inj)
	var mu sync.Mutex
	now := fixedNow
	opts.Now = func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	opts.RatePerKey, opts.RateBurst = 1, 2
	_, base := startServer(t, opts)
	acme := map[string]string{"Authorization": "Bearer acme-key"}
	for i := 0; i < 2; i++ {
		if a := curl(t, "127.0.0.9", "POST", base+"/v1/message", []byte(okMessage), acme); a.status != 202 {
			t.Fatalf("request %d: %s", i, a)
		}
	}
	a := curl(t, "127.0.0.9", "POST", base+"/v1/message", []byte(okMessage), acme)
	checkRefusal(t, a, 429, "rate limit")
	if a.header.Get("Retry-After") != "2" {
		t.Errorf("Retry-After %q", a.header.Get("Retry-After"))
	}
	// Another key has its own bucket; trusted callers without a key are not limited.
	if a := do(t, client(t, "127.0.0.9"), "POST", base+"/v1/message", []byte(okMessage), map[string]string{"Authorization": "Bearer free-key"}); a.status != 202 {
		t.Fatalf("other key: %s", a)
	}
	for i := 0; i < 5; i++ {
		if a := do(t, client(t, "127.0.0.1"), "POST", base+"/v1/message", []byte(okMessage), nil); a.status != 202 {
			t.Fatalf("trusted %d: %s", i, a)
		}
	}
	mu.Lock()
	now = now.Add(time.Second)
	mu.Unlock()
	if a := do(t, client(t, "127.0.0.9"), "POST", base+"/v1/message", []byte(okMessage), acme); a.status != 202 {
		t.Fatalf("after refill: %s", a)
	}
}

func TestServicesPerListener(t *testing.T) {
	inj := &recordingInjector{}
	opts := testOptions(inj)
	opts.Services = []string{ServiceInject}
	opts.Metrics = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("gannet_x 1\n")) })
	opts.Admin = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("{}")) })
	_, base := startServer(t, opts)
	for _, p := range []string{"/metrics", "/api/admin/queue-summary/v1"} {
		checkRefusal(t, curl(t, "127.0.0.1", "GET", base+p, nil, nil), 404, "not enabled")
		checkRefusal(t, do(t, client(t, "127.0.0.1"), "GET", base+p, nil, nil), 404, "not enabled")
	}
	if a := do(t, client(t, "127.0.0.1"), "POST", base+"/v1/message", []byte(okMessage), nil); a.status != 202 {
		t.Fatalf("inject: %s", a)
	}
	// An admin+metrics listener does not inject.
	opts.Services = []string{ServiceAdmin, ServiceMetrics}
	_, base2 := startServer(t, opts)
	checkRefusal(t, curl(t, "127.0.0.1", "POST", base2+"/v1/message", []byte(okMessage), nil), 404, "not enabled")
}

func TestMountsAndLiveness(t *testing.T) {
	inj := &recordingInjector{}
	opts := testOptions(inj)
	opts.Metrics = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		w.Write([]byte("gannet_messages_received_total{listener=\"http\"} 0\n"))
	})
	opts.Admin = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, ok := CallerFrom(r.Context())
		json.NewEncoder(w).Encode(map[string]any{"path": r.URL.Path, "ok": ok, "tenant": c.Tenant, "trusted": c.Trusted, "keyed": c.Keyed})
	})
	_, base := startServer(t, opts)
	a := curl(t, "127.0.0.9", "GET", base+"/api/check-liveness/v1", nil, nil)
	if a.status != 200 || a.json["status"] != "ok" {
		t.Fatalf("liveness %s", a)
	}
	a = curl(t, "127.0.0.1", "GET", base+"/metrics", nil, nil)
	if a.status != 200 || !strings.Contains(string(a.body), "gannet_messages_received_total") {
		t.Fatalf("metrics %s", a)
	}
	a = curl(t, "127.0.0.9", "GET", base+"/metrics", nil, map[string]string{"Authorization": "Bearer free-key"})
	if a.status != 200 {
		t.Fatalf("metrics with key %s", a)
	}
	a = curl(t, "127.0.0.9", "GET", base+"/api/admin/queue-summary/v1", nil, map[string]string{"Authorization": "Bearer acme-key"})
	if a.status != 200 || a.json["path"] != "/api/admin/queue-summary/v1" || a.json["tenant"] != "acme" || a.json["keyed"] != true || a.json["trusted"] != false {
		t.Fatalf("admin %s", a)
	}
	checkRefusal(t, curl(t, "127.0.0.9", "GET", base+"/api/admin/queue-summary/v1", nil, nil), 401, "authorization")
}

func TestStartShutdown(t *testing.T) {
	s := New(testOptions(&recordingInjector{}))
	if s.Addr() != "" {
		t.Fatal("Addr before Start")
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err == nil {
		t.Fatal("second Start succeeded")
	}
	addr := s.Addr()
	if a := do(t, client(t, "127.0.0.1"), "GET", "http://"+addr+"/api/check-liveness/v1", nil, nil); a.status != 200 {
		t.Fatal(a)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := client(t, "127.0.0.1").Get("http://" + addr + "/api/check-liveness/v1"); err == nil {
		t.Fatal("still serving after Shutdown")
	}
	if err := New(Options{Listen: "127.0.0.1:0"}).Start(); err == nil {
		t.Fatal("inject service without an Injector started")
	}
}

// TestConsoleService: /console and below go to the Console handler, with
// no key needed (it has its own login) and the peer in the context, only
// on a listener that lists the console service; a key's role reaches the
// admin handler.
func TestConsoleService(t *testing.T) {
	opts := testOptions(&recordingInjector{})
	opts.Services = []string{ServiceConsole, ServiceAdmin}
	opts.Console = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, ok := CallerFrom(r.Context())
		json.NewEncoder(w).Encode(map[string]any{"path": r.URL.Path, "ok": ok, "trusted": c.Trusted, "addr": c.Addr.String()})
	})
	opts.KeyRole = func(b string) string {
		if b == "free-key" {
			return "viewer"
		}
		return ""
	}
	opts.Admin = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, _ := CallerFrom(r.Context())
		json.NewEncoder(w).Encode(map[string]any{"role": c.Role})
	})
	_, base := startServer(t, opts)
	for _, tt := range []struct {
		from, path string
		trusted    bool
	}{{"127.0.0.9", "/console/", false}, {"127.0.0.1", "/console/destinations", true}, {"127.0.0.9", "/console", false}} {
		a := do(t, client(t, tt.from), "GET", base+tt.path, nil, nil)
		if a.status != 200 || a.json["path"] != tt.path || a.json["trusted"] != tt.trusted || a.json["addr"] != tt.from {
			t.Errorf("GET %s from %s: %s", tt.path, tt.from, a)
		}
	}
	if a := do(t, client(t, "127.0.0.9"), "GET", base+"/consolex", nil, nil); a.status != 404 {
		t.Errorf("/consolex: %s", a)
	}
	a := do(t, client(t, "127.0.0.9"), "GET", base+"/api/admin/x", nil, map[string]string{"Authorization": "Bearer free-key"})
	if a.json["role"] != "viewer" {
		t.Errorf("the admin handler sees role %v, want viewer", a.json["role"])
	}
	opts.Services = []string{ServiceAdmin}
	_, base2 := startServer(t, opts)
	checkRefusal(t, do(t, client(t, "127.0.0.1"), "GET", base2+"/console/", nil, nil), 404, "not enabled")
}
