package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"gannet/engine/admin"
	"gannet/engine/cluster"
)

// TestXferCommand: `gannet xfer -to NODE` finds the node in the cluster's
// registry (GET /api/admin/cluster/v1) and sends its SMTP address as the
// target; host:port is taken as it is; the node asked, a node without an
// SMTP address and an unknown name are refused; -list and -cancel use GET
// and DELETE.
func TestXferCommand(t *testing.T) {
	var mu sync.Mutex
	var posted []admin.XferRequest
	var reqs []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		reqs = append(reqs, r.Method+" "+r.URL.Path+" "+strings.TrimSpace(string(body)))
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		switch r.Method + " " + r.URL.Path {
		case "GET " + admin.PathCluster:
			json.NewEncoder(w).Encode(admin.ClusterResponse{Enabled: true, Node: "node-a", Nodes: []cluster.Node{
				{ID: "node-a", SMTP: "127.0.0.1:2525"}, {ID: "node-b", SMTP: "127.0.0.1:2526"}, {ID: "node-c"}}})
		case "POST " + admin.PathXfer:
			var req admin.XferRequest
			json.Unmarshal(body, &req)
			mu.Lock()
			posted = append(posted, req)
			mu.Unlock()
			json.NewEncoder(w).Encode(admin.XferV1Response{ID: "x1", Target: req.To, Retried: 2, Recipients: 3})
		case "GET " + admin.PathXfer:
			json.NewEncoder(w).Encode([]admin.RuleEntry{{ID: "x1", Origin: "api", Domain: "x.test", Target: "127.0.0.1:2526",
				Reason: "retiring", Created: time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)}})
		case "DELETE " + admin.PathXfer:
			json.NewEncoder(w).Encode(admin.RuleEntry{ID: "x1", Target: "127.0.0.1:2526"})
		default:
			w.WriteHeader(http.StatusNotFound)
			json.NewEncoder(w).Encode(admin.ErrorResponse{Error: "no"})
		}
	}))
	defer srv.Close()
	run := func(args ...string) (string, string, int) {
		var out, errOut strings.Builder
		code := realMain(append(append([]string{"xfer"}, args...), "-api", srv.URL), &out, &errOut)
		return out.String(), errOut.String(), code
	}

	out, errOut, code := run("-to", "node-b", "-domain", "x.test", "-reason", "retiring")
	if code != 0 || !strings.Contains(out, "xfer x1 in force: matching mail goes to 127.0.0.1:2526 (2 deferred message(s), 3 recipient(s) due now)") {
		t.Errorf("xfer -to node-b (%d): %s%s", code, out, errOut)
	}
	out, errOut, code = run("-to", "127.0.0.5:2525", "-tenant", "acme")
	if code != 0 {
		t.Errorf("xfer -to host:port (%d): %s%s", code, out, errOut)
	}
	mu.Lock()
	if len(posted) != 2 || posted[0] != (admin.XferRequest{To: "127.0.0.1:2526", Domain: "x.test", Reason: "retiring"}) ||
		posted[1] != (admin.XferRequest{To: "127.0.0.5:2525", Tenant: "acme"}) {
		t.Errorf("posted %+v", posted)
	}
	mu.Unlock()
	for _, c := range []struct {
		to, want string
	}{
		{"node-a", "is the node asked"},
		{"node-c", "registered no SMTP listener address"},
		{"node-x", "no such live node"},
	} {
		if out, errOut, code := run("-to", c.to, "-domain", "x.test"); code != 1 || !strings.Contains(errOut, c.want) {
			t.Errorf("xfer -to %s (%d, want 1 and %q): %s%s", c.to, code, c.want, out, errOut)
		}
	}
	if _, _, code := run("-domain", "x.test"); code != 2 {
		t.Errorf("xfer without -to: %d, want 2", code)
	}
	if _, _, code := run("-to", "node-b"); code != 2 {
		t.Errorf("xfer without a selector: %d, want 2", code)
	}
	out, _, code = run("-list")
	if code != 0 || !strings.Contains(out, "TARGET") || !strings.Contains(out, "x1  127.0.0.1:2526  x.test") || !strings.Contains(out, "retiring") {
		t.Errorf("xfer -list (%d):\n%s", code, out)
	}
	out, _, code = run("-cancel", "x1")
	if code != 0 || !strings.Contains(out, "xfer x1 to 127.0.0.1:2526 cancelled") {
		t.Errorf("xfer -cancel (%d): %s", code, out)
	}
	mu.Lock()
	defer mu.Unlock()
	if last := reqs[len(reqs)-1]; last != `DELETE `+admin.PathXfer+` {"id":"x1"}` {
		t.Errorf("cancel request %q", last)
	}
}
