package httpapi

import (
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"testing"
)

// TestOnRefusal: each refused inject request is reported once, with the
// peer, the status, the error text and the tenant when known; accepted
// requests and the other endpoints are not.
func TestOnRefusal(t *testing.T) {
	var mu sync.Mutex
	var got []string
	opts := testOptions(&recordingInjector{})
	opts.OnRefusal = func(peer netip.Addr, method, path string, status int, msg, tenant string) {
		mu.Lock()
		defer mu.Unlock()
		got = append(got, fmt.Sprintf("%s %s %s %d %q %s", peer, method, path, status, msg, tenant))
	}
	_, base := startServer(t, opts)
	ok := mustJSON(t, map[string]any{"from": "a@src.test", "to": []string{"b@dst.test"}, "subject": "s", "text": "t"})
	if a := curl(t, "127.0.0.1", "POST", base+"/v1/message", ok, nil); a.status != 202 {
		t.Fatalf("good message: %s", a)
	}
	curl(t, "127.0.0.9", "POST", base+"/api/inject/v1", []byte("{}"), nil)                                                  // 401
	curl(t, "127.0.0.9", "POST", base+"/v1/message", []byte("{bad"), map[string]string{"Authorization": "Bearer acme-key"}) // 400
	curl(t, "127.0.0.1", "GET", base+"/api/nothing", nil, nil)                                                              // 404, not inject
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 2 || !strings.HasPrefix(got[0], `127.0.0.9 POST /api/inject/v1 401 "`) {
		t.Fatalf("refusals reported: %q", got)
	}
	if want := `127.0.0.9 POST /v1/message 400 "bad JSON`; !strings.HasPrefix(got[1], want) || !strings.HasSuffix(got[1], " acme") {
		t.Errorf("second refusal %q, want %s… acme", got[1], want)
	}
}
