package metrics

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
)

// scrapeAll parses one exposition into series → value and counts the TYPE
// lines of each family.
func scrapeAll(t *testing.T, m *Metrics) (map[string]float64, map[string]int, string) {
	t.Helper()
	var buf bytes.Buffer
	m.WritePrometheus(&buf)
	values, types := map[string]float64{}, map[string]int{}
	for _, l := range strings.Split(buf.String(), "\n") {
		if f, ok := strings.CutPrefix(l, "# TYPE "); ok {
			types[strings.Fields(f)[0]]++
			continue
		}
		if l == "" || l[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(l, ' ')
		v, err := strconv.ParseFloat(l[i+1:], 64)
		if err != nil {
			t.Fatalf("bad line %q", l)
		}
		values[l[:i]] = v
	}
	return values, types, buf.String()
}

// TestKumoCompatNames: with [metrics] compat = "kumomta" each KumoMTA
// family a dashboard reads is there with the value of the Gannet series it
// stands for; without it none is.
func TestKumoCompatNames(t *testing.T) {
	m := exercised()
	m.Sites.Inc("mx.d1.test", OutcomeTransientFailure)
	m.Sites.Inc("mx.d1.test", OutcomeBounced)
	off, _, _ := scrapeAll(t, m)
	for k := range off {
		for _, f := range kumo {
			if strings.HasPrefix(k, f.name+"{") || k == f.name || strings.HasPrefix(k, f.name+"_") {
				t.Errorf("compat off, yet %s is written", k)
			}
		}
	}

	m.SetCompat(CompatKumoMTA)
	v, types, text := scrapeAll(t, m)
	same := map[string]string{
		`total_messages_received{service="relay-in"}`:                         `gannet_messages_received_total{listener="relay-in"}`,
		`total_messages_delivered{service="smtp_client:mx.d1.test"}`:          `gannet_site_messages_delivered_total{site="mx.d1.test"}`,
		`total_messages_transfail{service="smtp_client:mx.d1.test"}`:          `gannet_site_messages_transient_failures_total{site="mx.d1.test"}`,
		`total_messages_fail{service="smtp_client:mx.d1.test"}`:               `gannet_site_messages_bounced_total{site="mx.d1.test"}`,
		`connection_count{service="smtp_client:mx.d1.test"}`:                  `gannet_site_connections{site="mx.d1.test"}`,
		`connection_count{service="esmtp_listener"}`:                          `gannet_connections{direction="in"}`,
		`total_connection_count{service="esmtp_listener"}`:                    `gannet_connections_opened_total{direction="in"}`,
		`total_connection_count{service="smtp_client"}`:                       `gannet_connections_opened_total{direction="out"}`,
		`ready_count{service="smtp_client:mx.d1.test"}`:                       `gannet_site_queue_depth{site="mx.d1.test"}`,
		`scheduled_count{queue="d1.test"}`:                                    `gannet_domain_queue_depth{domain="d1.test"}`,
		`scheduled_by_domain{domain="d1.test"}`:                               `gannet_domain_queue_depth{domain="d1.test"}`,
		`scheduled_count_total`:                                               `gannet_queue_depth{queue="scheduled"}`,
		`smtp_server_rejections{service="esmtp_listener"}`:                    `gannet_smtp_errors_total{direction="in"}`,
		`deliver_message_latency_rollup_bucket{service="smtp_client",le="5"}`: `gannet_delivery_latency_seconds_bucket{le="5"}`,
		`deliver_message_latency_rollup_count{service="smtp_client"}`:         `gannet_delivery_latency_seconds_count`,
		`deliver_message_latency_rollup_sum{service="smtp_client"}`:           `gannet_delivery_latency_seconds_sum`,
		`memory_usage`: `process_resident_memory_bytes`,
	}
	for kumoSeries, gannetSeries := range same {
		kv, ok := v[kumoSeries]
		gv, gok := v[gannetSeries]
		if !ok || !gok {
			t.Errorf("%s present %v, %s present %v", kumoSeries, ok, gannetSeries, gok)
			continue
		}
		// RSS can move between the two reads of /proc: same order only.
		if kumoSeries == "memory_usage" {
			if kv <= 0 || gv <= 0 {
				t.Errorf("memory_usage %v, RSS %v", kv, gv)
			}
			continue
		}
		if kv != gv {
			t.Errorf("%s = %v, want %v (%s)", kumoSeries, kv, gv, gannetSeries)
		}
	}
	if got, want := v["message_count"], v[`gannet_queue_depth{queue="scheduled"}`]+v[`gannet_queue_depth{queue="ready"}`]; got != want || got == 0 {
		t.Errorf("message_count = %v, want scheduled+ready = %v", got, want)
	}
	if v[`total_messages_received{service="odd \"name\"\\"}`] != 1 {
		t.Errorf("an escaped listener name did not carry over:\n%s", grepLines(text, "total_messages_received"))
	}
	// One TYPE line per family: connection_count comes from two Gannet
	// families and must still be written as one group.
	for _, f := range kumo {
		if types[f.name] != 1 {
			t.Errorf("%d TYPE lines for %s", types[f.name], f.name)
		}
	}
	promtoolCheck(t, text)
}

func grepLines(text, sub string) string {
	var b strings.Builder
	for _, l := range strings.Split(text, "\n") {
		if strings.Contains(l, sub) {
			b.WriteString(l + "\n")
		}
	}
	return b.String()
}

// promtoolCheck runs `promtool check metrics` (Prometheus' own parser and
// linter): a parse error fails; lint findings (KumoMTA's counters have no
// _total suffix; the library's go_* and process_* names) do not, except
// about gannet_* names.
func promtoolCheck(t *testing.T, text string) {
	t.Helper()
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("promtool is required in CI (Debian package prometheus)")
		}
		t.Skip("promtool not installed; skipping the independent check")
	}
	cmd := exec.Command(promtool, "check", "metrics")
	cmd.Stdin = strings.NewReader(text)
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if errors.As(err, &ee) && ee.ExitCode() == 3 {
		for _, l := range strings.Split(string(out), "\n") {
			if strings.Contains(l, "gannet_") {
				t.Errorf("promtool: %s", strings.TrimSpace(l))
			}
		}
		return
	}
	if err != nil {
		t.Fatalf("promtool check metrics: %v\n%s", err, out)
	}
}

func BenchmarkWritePrometheusKumoCompat(b *testing.B) {
	m := exercised()
	m.SetCompat(CompatKumoMTA)
	var buf bytes.Buffer
	b.ReportAllocs()
	for b.Loop() {
		buf.Reset()
		m.WritePrometheus(&buf)
	}
}
