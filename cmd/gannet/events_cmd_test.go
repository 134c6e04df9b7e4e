package main

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"gannet/engine/admin"
	"gannet/engine/events"
)

// TestEventsStatusCLI: `gannet events status` prints a line per sink with
// its backlog, last success and last error, and says so when there is no
// sink. (Against the real API: e2e/events_test.go.)
func TestEventsStatusCLI(t *testing.T) {
	var sinks []events.SinkStatus
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != admin.PathEvents || r.Method != http.MethodGet {
			w.WriteHeader(http.StatusNotFound)
			return
		}
		json.NewEncoder(w).Encode(admin.EventsResponse{Sinks: sinks})
	}))
	defer srv.Close()
	out, errOut, code := runCLI("events", "status", "-api", srv.URL)
	if code != 0 || !strings.Contains(out, "no event sinks") {
		t.Errorf("without sinks: exit %d\n%s%s", code, out, errOut)
	}
	ok := time.Now().Add(-90 * time.Second)
	bad := time.Now().Add(-5 * time.Second)
	sinks = []events.SinkStatus{
		{Name: "crm", Kind: "webhook", Backlog: 1234, Shipped: 50, Rejected: 2, LastSuccess: &ok,
			LastError: "webhook answered 503 Service Unavailable", LastErrorAt: &bad},
		{Name: "bus", Kind: "amqp", Shipped: 7},
	}
	out, errOut, code = runCLI("events", "status", "-api", srv.URL)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if code != 0 || len(lines) != 3 {
		t.Fatalf("exit %d\n%s%s", code, out, errOut)
	}
	for _, want := range []string{"crm", "webhook", "1234", "1m30s ago", "5s ago: webhook answered 503"} {
		if !strings.Contains(lines[1], want) {
			t.Errorf("line %q lacks %q", lines[1], want)
		}
	}
	if f := strings.Fields(lines[2]); len(f) < 9 || f[0] != "bus" || f[7] != "never" || f[8] != "-" {
		t.Errorf("line %q, want bus … never -", lines[2])
	}
	if _, _, code := runCLI("events", "list", "-api", srv.URL); code != 2 {
		t.Errorf("events list: exit %d, want 2 (usage)", code)
	}
}
