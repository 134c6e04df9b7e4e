package admin

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"

	"gannet/engine/httpapi"
)

// TestDrainEndpoint: GET shows whether the node drains; POST with no body
// or {} drains, {"off": true} ends it; a tenant's key and unknown fields are
// refused.
func TestDrainEndpoint(t *testing.T) {
	draining := false
	h := New(Options{Draining: func() bool { return draining }, SetDraining: func(on bool) { draining = on }})
	api := httpapi.New(httpapi.Options{
		TrustedHosts: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")},
		Services:     []string{httpapi.ServiceAdmin},
		APIKeys: func(b string) (string, bool) {
			if b == "key-acme" {
				return "acme", true
			}
			return "", false
		},
		Admin: h,
	}).Handler()
	srv := httptest.NewServer(api)
	t.Cleanup(srv.Close)
	do := func(method, body, key string) (int, bool) {
		req, _ := http.NewRequest(method, srv.URL+PathDrain, strings.NewReader(body))
		if key != "" {
			req.Header.Set("Authorization", "Bearer "+key)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var r DrainResponse
		json.NewDecoder(resp.Body).Decode(&r)
		return resp.StatusCode, r.Draining
	}
	if st, d := do(http.MethodGet, "", ""); st != 200 || d {
		t.Errorf("GET: %d %v", st, d)
	}
	if st, d := do(http.MethodPost, "", ""); st != 200 || !d || !draining {
		t.Errorf("POST: %d %v", st, d)
	}
	if st, _ := do(http.MethodPost, `{"off":true}`, "key-acme"); st != http.StatusForbidden || !draining {
		t.Errorf("POST by a tenant: %d (draining %v)", st, draining)
	}
	if st, _ := do(http.MethodPost, `{"of":true}`, ""); st != http.StatusBadRequest || !draining {
		t.Errorf("POST unknown field: %d", st)
	}
	if st, d := do(http.MethodPost, `{"off":true}`, ""); st != 200 || d || draining {
		t.Errorf("POST off: %d %v", st, d)
	}
	if st, d := do(http.MethodPost, `{}`, ""); st != 200 || !d {
		t.Errorf("POST {}: %d %v", st, d)
	}
}
