package main

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"gannet/engine/admin"
)

// TestReloadCLI: `gannet reload` prints what was applied and what needs a
// restart (exit 0), or every problem of a refused file on stderr (exit 1).
func TestReloadCLI(t *testing.T) {
	answer, status := admin.ReloadResponse{}, 200
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != admin.PathReload {
			w.WriteHeader(http.StatusNotFound)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		json.NewEncoder(w).Encode(answer)
	}))
	defer srv.Close()

	answer = admin.ReloadResponse{File: "/etc/gannet/gannet.toml",
		Applied: []string{`smtp_listener "b" added`}, NeedsRestart: []string{"[log] path"}, Errors: []string{}}
	out, errOut, code := runCLI("reload", "-api", srv.URL)
	if code != 0 || !strings.Contains(out, "reloaded /etc/gannet/gannet.toml") ||
		!strings.Contains(out, `applied: smtp_listener "b" added`) || !strings.Contains(out, "needs a restart: [log] path") {
		t.Errorf("reload: exit %d\n%s%s", code, out, errOut)
	}

	answer, status = admin.ReloadResponse{File: "/etc/gannet/gannet.toml", Errors: []string{
		"/etc/gannet/gannet.toml:3: queue.x: unknown key", "/etc/gannet/gannet.toml:9: tls.mode: bad"}}, http.StatusUnprocessableEntity
	out, errOut, code = runCLI("reload", "-api", srv.URL)
	if code != 1 || !strings.Contains(errOut, "not applied") || !strings.Contains(errOut, "gannet.toml:3: queue.x") ||
		!strings.Contains(errOut, "gannet.toml:9: tls.mode") {
		t.Errorf("reload of a refused file: exit %d\n%s%s", code, out, errOut)
	}
	out, _, code = runCLI("reload", "-api", srv.URL, "-json")
	if code != 1 || !strings.Contains(out, `"errors":[`) {
		t.Errorf("reload -json of a refused file: exit %d %s", code, out)
	}
}
