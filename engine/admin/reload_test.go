package admin

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"

	"gannet/engine/httpapi"
)

// TestReloadEndpoint: POST reloads and answers what was applied (200), or
// the problems of a refused file (422); a tenant's key is refused (403),
// GET is 405.
func TestReloadEndpoint(t *testing.T) {
	answer := ReloadResponse{File: "/etc/gannet.toml", Applied: []string{"[queue]"}, NeedsRestart: []string{}, Errors: []string{}}
	calls := 0
	h := New(Options{Reload: func() ReloadResponse { calls++; return answer }})
	api := httpapi.New(httpapi.Options{
		TrustedHosts: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")},
		Services:     []string{httpapi.ServiceAdmin},
		APIKeys: func(b string) (string, bool) {
			return "acme", b == "key-acme"
		},
		Admin: h,
	}).Handler()
	srv := httptest.NewServer(api)
	defer srv.Close()
	do := func(method, key string) (int, ReloadResponse) {
		req, _ := http.NewRequest(method, srv.URL+PathReload, nil)
		if key != "" {
			req.Header.Set("Authorization", "Bearer "+key)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var r ReloadResponse
		json.NewDecoder(resp.Body).Decode(&r)
		return resp.StatusCode, r
	}
	if st, r := do(http.MethodPost, ""); st != 200 || len(r.Applied) != 1 || r.Applied[0] != "[queue]" || r.File != answer.File {
		t.Errorf("POST: %d %+v", st, r)
	}
	answer = ReloadResponse{File: "/etc/gannet.toml", Errors: []string{"/etc/gannet.toml:3: queue.x: unknown key"}}
	if st, r := do(http.MethodPost, ""); st != http.StatusUnprocessableEntity || len(r.Errors) != 1 {
		t.Errorf("POST of a refused file: %d %+v", st, r)
	}
	if st, _ := do(http.MethodPost, "key-acme"); st != http.StatusForbidden {
		t.Errorf("POST by a tenant: %d", st)
	}
	if st, _ := do(http.MethodGet, ""); st != http.StatusMethodNotAllowed {
		t.Errorf("GET: %d", st)
	}
	if calls != 2 {
		t.Errorf("Reload called %d times, want 2", calls)
	}
}
