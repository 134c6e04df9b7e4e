package metrics

import (
	"bytes"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

func exercised() *Metrics {
	m := New()
	m.Received("relay-in").Inc()
	m.Received("relay-in").Inc()
	m.Received(`odd "name"\`).Inc()
	m.Delivered.Add(3)
	m.TransientFailures.Inc()
	m.Bounced.Inc()
	m.Expired.Inc()
	m.ObserveDeliveryLatency(time.Unix(100, 0), time.Unix(102, 0))
	m.SMTPErrors(In).Inc()
	m.SMTPErrors(Out).Add(2)
	m.TLSFailures.Inc()
	m.TLSFailure("sts", "certificate-host-mismatch").Inc()
	m.TLSFailure("sts", "no-such-type").Inc()
	m.TLSFailure("bogus", "certificate-expired").Inc()
	m.MTASTSFetch("ok").Inc()
	m.MTASTSFetch("invalid").Inc()
	m.CertificateExpiry("relay-in", func() time.Time { return time.Unix(1600000000, 0) })
	m.CertificateExpiry("relay-in", func() time.Time { return time.Unix(1700000000, 0) })
	m.Connections(In).Inc()
	m.Connections(Out).Add(4)
	m.SpoolCommit.Update(0.003)
	m.LogRecordsDropped.Inc()
	m.Xferred.Inc()
	m.RedisCall("rate")
	m.RedisCall("rate")
	m.RedisCall("heartbeat")
	m.RedisCall("no such op")
	m.SpoolCorrupt("index").Inc()
	m.SetQueueDepth(func() float64 { return 7 }, func() float64 { return 2 })
	m.ConnectionsOpened(In).Add(5)
	m.ConnectionsOpened(Out).Add(6)
	m.TLSHandshakesOut(false).Add(2)
	m.TLSHandshakesOut(true).Add(3)
	m.BounceClass("InvalidRecipient").Inc()
	m.BounceClass("").Inc()
	m.TransientClass("TransientFailure").Add(2)
	m.Sites.Inc("mx.d1.test", OutcomeDelivered)
	m.Domains.Inc("d1.test", OutcomeReceived)
	m.Domains.Inc("d1.test", OutcomeDelivered)
	m.Tenants.Inc("acme", OutcomeBounced)
	m.Campaigns.Inc("spring", OutcomeTransientFailure)
	m.SetDestinations(func() DestinationState {
		return DestinationState{
			Sites:   []DestinationGauge{{Name: "mx.d1.test", Connections: 1, QueueDepth: 3}},
			Domains: []DestinationGauge{{Name: "d1.test", Connections: 1, QueueDepth: 4, Rate: 2.5, HasRate: true}},
		}
	})
	return m
}

var (
	sampleRe = regexp.MustCompile(`^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(?:[ \t]*[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\.)*"[ \t]*,?)*\})? (\S+)( -?[0-9]+)?$`)
	helpRe   = regexp.MustCompile(`^# HELP [a-zA-Z_:][a-zA-Z0-9_:]*( .*)?$`)
	typeRe   = regexp.MustCompile(`^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge|histogram|summary|untyped)$`)
)

// checkExposition checks each line of the Prometheus text format (version
// 0.0.4): comments, samples with a valid name, labels and float value, and
// one TYPE per family before its samples.
func checkExposition(t *testing.T, text string) map[string]float64 {
	t.Helper()
	values := map[string]float64{}
	typed := map[string]bool{}
	for i, line := range strings.Split(strings.TrimSuffix(text, "\n"), "\n") {
		switch {
		case strings.HasPrefix(line, "# HELP"):
			if !helpRe.MatchString(line) {
				t.Errorf("line %d: bad HELP %q", i+1, line)
			}
		case strings.HasPrefix(line, "# TYPE"):
			m := typeRe.FindStringSubmatch(line)
			if m == nil {
				t.Errorf("line %d: bad TYPE %q", i+1, line)
				continue
			}
			if typed[m[1]] {
				t.Errorf("line %d: second TYPE for %s", i+1, m[1])
			}
			typed[m[1]] = true
		case strings.HasPrefix(line, "#"):
		default:
			m := sampleRe.FindStringSubmatch(line)
			if m == nil {
				t.Errorf("line %d: bad sample %q", i+1, line)
				continue
			}
			v, err := strconv.ParseFloat(m[3], 64)
			if err != nil && m[3] != "+Inf" && m[3] != "-Inf" && m[3] != "NaN" {
				t.Errorf("line %d: bad value %q", i+1, line)
			}
			values[m[1]+m[2]] = v
		}
	}
	return values
}

func TestExpositionHasContractMetrics(t *testing.T) {
	var buf bytes.Buffer
	exercised().WritePrometheus(&buf)
	values := checkExposition(t, buf.String())
	for name, want := range map[string]float64{
		`gannet_messages_received_total{listener="relay-in"}`:                             2,
		`gannet_messages_received_total{listener="odd \"name\"\\"}`:                       1,
		`gannet_messages_delivered_total`:                                                 3,
		`gannet_messages_transient_failures_total`:                                        1,
		`gannet_messages_bounced_total`:                                                   1,
		`gannet_messages_expired_total`:                                                   1,
		`gannet_queue_depth{queue="scheduled"}`:                                           7,
		`gannet_queue_depth{queue="ready"}`:                                               2,
		`gannet_delivery_latency_seconds_count`:                                           1,
		`gannet_delivery_latency_seconds_bucket{le="1"}`:                                  0,
		`gannet_delivery_latency_seconds_bucket{le="2.5"}`:                                1,
		`gannet_delivery_latency_seconds_bucket{le="+Inf"}`:                               1,
		`gannet_smtp_errors_total{direction="in"}`:                                        1,
		`gannet_smtp_errors_total{direction="out"}`:                                       2,
		`gannet_tls_failures_total{policy="none",result_type="other"}`:                    1,
		`gannet_tls_failures_total{policy="none",result_type="certificate-expired"}`:      1,
		`gannet_tls_failures_total{policy="sts",result_type="certificate-host-mismatch"}`: 1,
		`gannet_tls_failures_total{policy="sts",result_type="other"}`:                     1,
		`gannet_mta_sts_policy_fetches_total{result="ok"}`:                                1,
		`gannet_mta_sts_policy_fetches_total{result="error"}`:                             0,
		`gannet_mta_sts_policy_fetches_total{result="invalid"}`:                           1,
		`gannet_tls_certificate_expiry_timestamp_seconds{listener="relay-in"}`:            1700000000,
		`gannet_connections{direction="in"}`:                                              1,
		`gannet_connections{direction="out"}`:                                             4,
		`gannet_spool_commit_seconds_count`:                                               1,
		`gannet_spool_commit_seconds_bucket{le="0.005"}`:                                  1,
		`gannet_log_records_dropped_total`:                                                1,
		`gannet_messages_xferred_total`:                                                   1,
		`gannet_cluster_redis_calls_total{op="rate"}`:                                     2,
		`gannet_cluster_redis_calls_total{op="heartbeat"}`:                                1,
		`gannet_cluster_redis_calls_total{op="other"}`:                                    1,
		`gannet_spool_corrupt_total{kind="index"}`:                                        1,
		`gannet_spool_corrupt_total{kind="record"}`:                                       0,
		`gannet_connections_opened_total{direction="in"}`:                                 5,
		`gannet_connections_opened_total{direction="out"}`:                                6,
		`gannet_tls_handshakes_total{direction="out",resumed="false"}`:                    2,
		`gannet_tls_handshakes_total{direction="out",resumed="true"}`:                     3,
		`gannet_bounces_total{class="InvalidRecipient"}`:                                  1,
		`gannet_bounces_total{class="Uncategorized"}`:                                     1,
		`gannet_transient_failures_by_class_total{class="TransientFailure"}`:              2,
		`gannet_site_messages_delivered_total{site="mx.d1.test"}`:                         1,
		`gannet_site_messages_bounced_total{site="mx.d1.test"}`:                           0,
		`gannet_domain_messages_received_total{domain="d1.test"}`:                         1,
		`gannet_domain_messages_delivered_total{domain="d1.test"}`:                        1,
		`gannet_tenant_messages_bounced_total{tenant="acme"}`:                             1,
		`gannet_campaign_messages_transient_failures_total{campaign="spring"}`:            1,
		`gannet_site_connections{site="mx.d1.test"}`:                                      1,
		`gannet_site_queue_depth{site="mx.d1.test"}`:                                      3,
		`gannet_domain_connections{domain="d1.test"}`:                                     1,
		`gannet_domain_queue_depth{domain="d1.test"}`:                                     4,
		`gannet_domain_effective_rate{domain="d1.test"}`:                                  2.5,
	} {
		got, ok := values[name]
		if !ok {
			t.Errorf("%s missing", name)
		} else if got != want {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
	for _, typ := range []string{
		"# TYPE gannet_delivery_latency_seconds histogram",
		"# TYPE gannet_spool_commit_seconds histogram",
		"# TYPE gannet_messages_delivered_total counter",
		"# TYPE gannet_queue_depth gauge",
	} {
		if !strings.Contains(buf.String(), typ+"\n") {
			t.Errorf("no %q", typ)
		}
	}
	if !strings.Contains(buf.String(), "\ngo_goroutines ") && !strings.Contains(buf.String(), "\ngo_goroutines{") {
		t.Error("no process metrics (go_goroutines)")
	}
}

func TestQueueDepthBeforeSetIsZero(t *testing.T) {
	var buf bytes.Buffer
	New().WritePrometheus(&buf)
	values := checkExposition(t, buf.String())
	if v, ok := values[`gannet_queue_depth{queue="ready"}`]; !ok || v != 0 {
		t.Errorf("queue depth = %v, %v", v, ok)
	}
}

func TestTwoInstancesDoNotShare(t *testing.T) {
	a, b := New(), New()
	a.Delivered.Inc()
	if b.Delivered.Get() != 0 {
		t.Error("metrics shared between instances")
	}
	if a.Received("x") != a.Received("x") {
		t.Error("Received not cached")
	}
}

// TestPromtoolAccepts runs Prometheus' own checker on the output.
func TestPromtoolAccepts(t *testing.T) {
	rec := httptest.NewRecorder()
	exercised().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, "text/plain; version=0.0.4") {
		t.Errorf("Content-Type = %q", ct)
	}
	promtoolCheck(t, rec.Body.String())
}

func BenchmarkReceivedInc(b *testing.B) {
	m := New()
	b.ReportAllocs()
	for b.Loop() {
		m.Received("relay-in").Inc()
	}
}
