package prometheus

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"gannet/engine/metrics"
)

// promtool returns the path of promtool, or skips (fails in CI).
func promtool(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("promtool")
	if err != nil {
		msg := "PEER MISSING: promtool (Debian package prometheus); `make peers` installs it"
		if v := strings.ToLower(os.Getenv("CI")); v == "true" || v == "1" {
			t.Fatal(msg)
		}
		t.Skip("!!! " + msg)
	}
	return p
}

func TestRulesCheck(t *testing.T) {
	out, err := exec.Command(promtool(t), "check", "rules", "gannet-alerts.yml").CombinedOutput()
	if err != nil {
		t.Fatalf("promtool check rules: %v\n%s", err, out)
	}
	rules, err := os.ReadFile("gannet-alerts.yml")
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(rules), "- alert: "); n < 8 || !strings.Contains(string(out), fmt.Sprintf("SUCCESS: %d rules found", n)) {
		t.Errorf("promtool check rules: %s", out)
	}
}

func TestRulesUnitTests(t *testing.T) {
	out, err := exec.Command(promtool(t), "test", "rules", "gannet-alerts_test.yml").CombinedOutput()
	if err != nil {
		t.Fatalf("promtool test rules: %v\n%s", err, out)
	}
	t.Logf("%s", out)
}

// TestRulesNameExportedMetrics: every gannet_* series the rules read or
// their descriptions name is one Gannet writes at /metrics.
func TestRulesNameExportedMetrics(t *testing.T) {
	rules, err := os.ReadFile("gannet-alerts.yml")
	if err != nil {
		t.Fatal(err)
	}
	m := metrics.New()
	m.Received("relay-in").Inc()
	m.ObserveDeliveryLatency(time.Unix(0, 0), time.Unix(1, 0))
	m.BounceClass("InvalidRecipient").Inc()
	m.TransientClass("TransientFailure").Inc()
	m.CertificateExpiry("relay-in", func() time.Time { return time.Unix(2000000000, 0) })
	m.EventsShipped("crm", "dropped").Inc()
	m.EventBacklog("crm", func() float64 { return 3 })
	m.SetDestinations(func() metrics.DestinationState {
		g := []metrics.DestinationGauge{{Name: "d.example", Connections: 1}}
		return metrics.DestinationState{Sites: g, Domains: g}
	})
	m.SetSiteBackoffs(func() []metrics.SiteBackoff { return []metrics.SiteBackoff{{Site: "mx.d.example", Backoff: true}} })
	var buf bytes.Buffer
	m.WritePrometheus(&buf)
	exported := map[string]bool{}
	for _, l := range strings.Split(buf.String(), "\n") {
		if l != "" && l[0] != '#' {
			exported[strings.FieldsFunc(l, func(r rune) bool { return r == '{' || r == ' ' })[0]] = true
		}
	}
	used := map[string]bool{}
	for _, name := range regexp.MustCompile(`\bgannet_[a-z_]+`).FindAllString(string(rules), -1) {
		if !strings.HasSuffix(name, "_") { // prose like gannet_domain_messages_*_total
			used[name] = true
		}
	}
	var names []string
	for n := range used {
		names = append(names, n)
	}
	sort.Strings(names)
	if len(names) < 8 {
		t.Fatalf("only %d metric names found in the rules: %v", len(names), names)
	}
	for _, n := range names {
		if !exported[n] {
			t.Errorf("the rules use %s, which /metrics does not export", n)
		}
	}
}
