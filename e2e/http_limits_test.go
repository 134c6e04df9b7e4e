package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// procStatusKB reads one "Name:  N kB" line of /proc/PID/status.
func procStatusKB(t *testing.T, pid int, name string) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, name+":"); ok {
			n, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err != nil {
				t.Fatalf("/proc/%d/status %s: %q", pid, name, l)
			}
			return n
		}
	}
	t.Fatalf("/proc/%d/status has no %s", pid, name)
	return 0
}

// TestE2EInjectAmplification (issue #15, hostile clients): a 1 MiB request
// to /api/inject/v1 whose eight recipients each get a 1 MiB substitution
// placed 100 times (800 MiB of messages) is answered 413 with a JSON error,
// nothing is queued or logged as received, and gannet's peak resident
// memory (VmHWM, reset before the request) grows by less than 64 MiB.
// gannet then still takes a normal request.
func TestE2EInjectAmplification(t *testing.T) {
	w := newRelayWorld(t)
	g := w.gannet(t, gannetConfig{}) // default [[http_listener]] limits: 20MiB a message, 256MiB a request

	rcpts := make([]map[string]string, 8)
	for i := range rcpts {
		rcpts[i] = map[string]string{"email": fmt.Sprintf("r%d@%s", i, domain1)}
	}
	req, _ := json.Marshal(map[string]any{
		"envelope_sender": "a@src.test",
		"recipients":      rcpts,
		"content":         "From: a@src.test\nTo: b@" + domain1 + "\nSubject: amp\n\n" + strings.Repeat("{{ big }}\n", 100),
		"substitutions":   map[string]string{"big": strings.Repeat("x", 1<<20)},
	})
	file := filepath.Join(t.TempDir(), "amplify.json")
	if err := os.WriteFile(file, req, 0o600); err != nil {
		t.Fatal(err)
	}

	pid := g.p.cmd.Process.Pid
	// Writing 5 to clear_refs resets VmHWM to the current VmRSS (proc(5)),
	// so that the peak measured is the request's, not the start's.
	if err := os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", pid), []byte("5"), 0); err != nil {
		t.Logf("cannot reset VmHWM (%v): the start-up peak counts too", err)
	}
	before := procStatusKB(t, pid, "VmRSS")
	r := adminCurl(t, g, "POST", "/api/inject/v1", "", "-H", "Content-Type: application/json", "--data-binary", "@"+file)
	peak := procStatusKB(t, pid, "VmHWM")
	r.want(t, "amplification request", 413)
	if !strings.Contains(r.body, "max_message_size") {
		t.Errorf("413 answer does not name the limit: %s", r.body)
	}
	if grew := (peak - before) >> 10; grew >= 64 {
		t.Errorf("resident memory grew by %d MiB (VmRSS %d kB before, VmHWM %d kB after), want < 64", grew, before, peak)
	} else {
		t.Logf("VmRSS %d kB before, VmHWM %d kB after the request: +%d MiB", before, peak, grew)
	}

	if s := summaryOf(t, g); s.Totals.Messages != 0 {
		t.Errorf("%d messages queued after a refused request, want none", s.Totals.Messages)
	}
	if recs := selectRecords(g.Records(), recordFilter{Type: "Reception"}); len(recs) != 0 {
		t.Errorf("Reception records after a refused request: %s", summarize(recs))
	}

	small, _ := json.Marshal(map[string]any{"envelope_sender": "a@src.test", "recipients": rcpts[:2],
		"content": "From: a@src.test\nSubject: fine\n\nHello {{ name }}\n"})
	r = adminCurl(t, g, "POST", "/api/inject/v1", string(small)).want(t, "a normal request", 200)
	var ans struct {
		SuccessCount int `json:"success_count"`
	}
	if r.decode(t, &ans); ans.SuccessCount != 2 {
		t.Errorf("normal request after the refusal: %s", r.body)
	}
}
