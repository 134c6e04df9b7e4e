package httpapi

import (
	"strconv"
	"sync/atomic"
	"testing"
)

// TestDraining: while the node drains, inject answers 503 with Retry-After
// and the liveness check 503 {"status":"draining"}; then both come back.
func TestDraining(t *testing.T) {
	inj := &recordingInjector{}
	var draining atomic.Bool
	opts := testOptions(inj)
	opts.Services = []string{ServiceInject}
	opts.Draining = draining.Load
	_, base := startServer(t, opts)
	c := client(t, "127.0.0.1")
	msg := []byte(`{"from":"a@src.test","to":["b@dst.test"],"subject":"s","text":"t"}`)

	draining.Store(true)
	a := do(t, c, "GET", base+"/api/check-liveness/v1", nil, nil)
	if a.status != 503 || a.json["status"] != "draining" {
		t.Errorf("liveness while draining: %s", a)
	}
	for _, path := range []string{"/v1/message", "/api/inject/v1"} {
		a = do(t, c, "POST", base+path, msg, nil)
		if a.status != 503 || a.header.Get("Retry-After") != strconv.Itoa(DrainRetryAfter) || a.errorText() == "" {
			t.Errorf("%s while draining: %s, Retry-After %q", path, a, a.header.Get("Retry-After"))
		}
	}
	if n := len(inj.messages()); n != 0 {
		t.Errorf("%d messages injected while draining", n)
	}

	draining.Store(false)
	if a = do(t, c, "GET", base+"/api/check-liveness/v1", nil, nil); a.status != 200 || a.json["status"] != "ok" {
		t.Errorf("liveness after drain: %s", a)
	}
	if a = do(t, c, "POST", base+"/v1/message", msg, nil); a.status != 202 {
		t.Errorf("inject after drain: %s", a)
	}
}
