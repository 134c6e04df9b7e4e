package metrics

import (
	"bytes"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"gannet/engine/tlsrpt"

	vm "github.com/VictoriaMetrics/metrics"
)

// Directions for the labelled in/out metrics.
const (
	In  = "in"
	Out = "out"
)

// deliveryLatencyBuckets are the upper bounds (seconds) from reception to
// delivery: fast local hand-offs up to a day of retries.
func deliveryLatencyBuckets() []float64 {
	return []float64{0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 4 * 3600, 24 * 3600}
}

// spoolCommitBuckets are the upper bounds (seconds) of one durable spool
// commit (append + fsync, shared by a group commit).
func spoolCommitBuckets() []float64 {
	return []float64{0.0001, 0.00025, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1}
}

// Metrics holds every metric of the contract, registered on its own Set.
// The fields are safe for concurrent use; keep them and call their methods
// (Inc, Add, Update, UpdateDuration) on hot paths.
type Metrics struct {
	set *vm.Set

	Delivered         *vm.Counter             // gannet_messages_delivered_total: recipients accepted by the remote host
	TransientFailures *vm.Counter             // gannet_messages_transient_failures_total: attempts failed temporarily
	Bounced           *vm.Counter             // gannet_messages_bounced_total: recipients failed permanently (incl. admin bounces)
	Expired           *vm.Counter             // gannet_messages_expired_total: recipients given up after max_retry_age
	DeliveryLatency   *vm.PrometheusHistogram // gannet_delivery_latency_seconds: reception to delivery
	SMTPErrorsIn      *vm.Counter             // gannet_smtp_errors_total{direction="in"}: 4xx/5xx replies we sent
	SMTPErrorsOut     *vm.Counter             // gannet_smtp_errors_total{direction="out"}: 4xx/5xx replies we got
	TLSFailures       *vm.Counter             // gannet_tls_failures_total{policy="none",result_type="other"}: failed inbound handshakes (outbound ones: TLSFailure)
	ConnectionsIn     *vm.Gauge               // gannet_connections{direction="in"}: open inbound connections (Inc/Dec)
	ConnectionsOut    *vm.Gauge               // gannet_connections{direction="out"}: open outbound connections (Inc/Dec)
	SpoolCommit       *vm.PrometheusHistogram // gannet_spool_commit_seconds: time to make a message durable
	LogRecordsDropped *vm.Counter             // gannet_log_records_dropped_total: log records lost because the log writer fell behind
	RedisErrors       *vm.Counter             // gannet_cluster_redis_errors_total: calls to the cluster's Redis that failed or timed out
	Xferred           *vm.Counter             // gannet_messages_xferred_total: recipients handed to another node (gannet xfer; XferOut records)
	// gannet_rejection_records_dropped_total{reason}: Rejection records
	// not written because a connection had its [log]
	// rejections_per_connection ("per_connection") or the server its
	// rejection_rate ("rate").
	RejectionsDroppedPerConn, RejectionsDroppedRate *vm.Counter

	// gannet_spool_corrupt_total{kind}: messages the spool found corrupt
	// and quarantined, by where (queue.CorruptKind): an index value that
	// does not decode, or a body record that does not read back.
	SpoolCorruptIndex  *vm.Counter // kind="index"
	SpoolCorruptRecord *vm.Counter // kind="record"

	ConnectionsOpenedIn  *vm.Counter // gannet_connections_opened_total{direction="in"}: connections accepted
	ConnectionsOpenedOut *vm.Counter // gannet_connections_opened_total{direction="out"}: outbound sessions established

	// gannet_tls_handshakes_total{direction="out",resumed}: successful
	// outbound TLS handshakes, full or resuming an earlier session
	// (TLSHandshakesOut).
	tlsHandshakesFull, tlsHandshakesResumed *vm.Counter

	// Per-destination and per-sender counters with a bounded number of
	// label values (capped.go): gannet_site_messages_*_total{site},
	// gannet_domain_messages_*_total{domain},
	// gannet_tenant_messages_*_total{tenant},
	// gannet_campaign_messages_*_total{campaign}.
	Sites, Domains, Tenants, Campaigns *CappedCounters

	received   sync.Map // listener name → *vm.Counter
	suppressed sync.Map // gannet_suppressed_total: mode → *vm.Counter (suppression.go)

	// gannet_mta_sts_policy_fetches_total{result}
	stsFetchOK, stsFetchError, stsFetchInvalid *vm.Counter
	certExpiry                                 sync.Map // listener name → *atomic.Pointer[func() time.Time]
	scheduled                                  atomic.Pointer[func() float64]
	dead                                       atomic.Pointer[func() float64]
	ready                                      atomic.Pointer[func() float64]
	siteRates                                  atomic.Pointer[func() []SiteRate]    // gannet_site_effective_rate (siterates.go)
	siteBackoffs                               atomic.Pointer[func() []SiteBackoff] // gannet_site_backoff (siterates.go)
	siteTuned                                  atomic.Pointer[func() []SiteTuned]   // gannet_site_tuned_rate (siterates.go)

	// warmup feeds gannet_egress_warmup_* (warmup.go).
	warmup atomic.Pointer[func() []WarmupRemaining]

	maxLabels        atomic.Int64                            // [metrics] max_destination_labels
	kumoCompat       atomic.Bool                             // [metrics] compat = "kumomta" (kumocompat.go)
	destinations     atomic.Pointer[func() DestinationState] // destinations.go
	bounceClasses    classCounters                           // gannet_bounces_total{class}
	transientClasses classCounters                           // gannet_transient_failures_by_class_total{class}
	policy           policyMetrics                           // policy.go
}

// New creates the metrics on a new Set. It turns on TYPE/HELP lines, which
// Prometheus needs to treat the histograms as histograms (a global switch of
// the VictoriaMetrics library).
func New() *Metrics {
	vm.ExposeMetadata(true)
	s := vm.NewSet()
	m := &Metrics{set: s}
	m.Delivered = s.NewCounter("gannet_messages_delivered_total")
	m.TransientFailures = s.NewCounter("gannet_messages_transient_failures_total")
	m.Bounced = s.NewCounter("gannet_messages_bounced_total")
	m.Expired = s.NewCounter("gannet_messages_expired_total")
	m.DeliveryLatency = s.NewPrometheusHistogramExt("gannet_delivery_latency_seconds", deliveryLatencyBuckets())
	m.SMTPErrorsIn = s.NewCounter(`gannet_smtp_errors_total{direction="in"}`)
	m.SMTPErrorsOut = s.NewCounter(`gannet_smtp_errors_total{direction="out"}`)
	m.TLSFailures = s.NewCounter(`gannet_tls_failures_total{policy="none",result_type="other"}`)
	m.stsFetchOK = s.NewCounter(`gannet_mta_sts_policy_fetches_total{result="ok"}`)
	m.stsFetchError = s.NewCounter(`gannet_mta_sts_policy_fetches_total{result="error"}`)
	m.stsFetchInvalid = s.NewCounter(`gannet_mta_sts_policy_fetches_total{result="invalid"}`)
	m.ConnectionsIn = s.NewGauge(`gannet_connections{direction="in"}`, nil)
	m.ConnectionsOut = s.NewGauge(`gannet_connections{direction="out"}`, nil)
	m.SpoolCommit = s.NewPrometheusHistogramExt("gannet_spool_commit_seconds", spoolCommitBuckets())
	m.LogRecordsDropped = s.NewCounter("gannet_log_records_dropped_total")
	m.RedisErrors = s.NewCounter("gannet_cluster_redis_errors_total")
	m.Xferred = s.NewCounter("gannet_messages_xferred_total")
	m.RejectionsDroppedPerConn = s.NewCounter(`gannet_rejection_records_dropped_total{reason="per_connection"}`)
	m.RejectionsDroppedRate = s.NewCounter(`gannet_rejection_records_dropped_total{reason="rate"}`)
	m.SpoolCorruptIndex = s.NewCounter(`gannet_spool_corrupt_total{kind="index"}`)
	m.SpoolCorruptRecord = s.NewCounter(`gannet_spool_corrupt_total{kind="record"}`)
	s.NewGauge(`gannet_queue_depth{queue="scheduled"}`, func() float64 { return call(&m.scheduled) })
	s.NewGauge(`gannet_queue_depth{queue="ready"}`, func() float64 { return call(&m.ready) })
	s.NewGauge(`gannet_queue_depth{queue="dead"}`, func() float64 { return call(&m.dead) })
	m.ConnectionsOpenedIn = s.NewCounter(`gannet_connections_opened_total{direction="in"}`)
	m.ConnectionsOpenedOut = s.NewCounter(`gannet_connections_opened_total{direction="out"}`)
	m.tlsHandshakesFull = s.NewCounter(`gannet_tls_handshakes_total{direction="out",resumed="false"}`)
	m.tlsHandshakesResumed = s.NewCounter(`gannet_tls_handshakes_total{direction="out",resumed="true"}`)
	m.bounceClasses = classCounters{set: s, family: "gannet_bounces_total"}
	m.transientClasses = classCounters{set: s, family: "gannet_transient_failures_by_class_total"}
	m.maxLabels.Store(DefaultMaxLabels)
	all := []Outcome{OutcomeReceived, OutcomeDelivered, OutcomeTransientFailure, OutcomeBounced, OutcomeExpired}
	m.Sites = newCapped("site", "gannet_site_messages_", "per destination site", DefaultMaxLabels, time.Now, all[1:]...)
	m.Domains = newCapped("domain", "gannet_domain_messages_", "per destination domain", DefaultMaxLabels, time.Now, all...)
	m.Tenants = newCapped("tenant", "gannet_tenant_messages_", "per tenant", DefaultMaxLabels, time.Now, all...)
	m.Campaigns = newCapped("campaign", "gannet_campaign_messages_", "per campaign", DefaultMaxLabels, time.Now, all...)
	return m
}

// SetMaxDestinationLabels sets how many values of each bounded label
// (site, domain, tenant, campaign) get series of their own; the others
// are summed under "other" ([metrics] max_destination_labels). n < 1
// means DefaultMaxLabels.
func (m *Metrics) SetMaxDestinationLabels(n int) {
	if n < 1 {
		n = DefaultMaxLabels
	}
	m.maxLabels.Store(int64(n))
	for _, c := range []*CappedCounters{m.Sites, m.Domains, m.Tenants, m.Campaigns} {
		c.SetLimit(n)
	}
}

// SetCompat sets [metrics] compat: CompatKumoMTA adds the KumoMTA names
// of the metrics Gannet has an equivalent of (kumocompat.go); "" only
// Gannet's own.
func (m *Metrics) SetCompat(compat string) { m.kumoCompat.Store(compat == CompatKumoMTA) }

// MaxDestinationLabels returns the cap set by SetMaxDestinationLabels.
func (m *Metrics) MaxDestinationLabels() int { return int(m.maxLabels.Load()) }

func call(p *atomic.Pointer[func() float64]) float64 {
	if f := p.Load(); f != nil {
		return (*f)()
	}
	return 0
}

// SetDeadDepth installs the function that gannet_queue_depth{queue="dead"}
// (the spool's dead letters) calls at each scrape. Until set, it reads 0.
func (m *Metrics) SetDeadDepth(dead func() float64) { m.dead.Store(&dead) }

// SetQueueDepth installs the functions that gannet_queue_depth calls at each
// scrape: messages waiting for their next attempt, and messages due and
// waiting for a connection. They must be cheap and safe to call from any
// goroutine. Until set, both read 0.
func (m *Metrics) SetQueueDepth(scheduled, ready func() float64) {
	m.scheduled.Store(&scheduled)
	m.ready.Store(&ready)
}

// Received returns the counter gannet_messages_received_total{listener=NAME}
// (messages accepted: made durable and answered 2xx). NAME is an
// [[smtp_listener]] name, or "http" for the inject API. The counter is
// created on first use and cached: keep it.
func (m *Metrics) Received(listener string) *vm.Counter {
	if c, ok := m.received.Load(listener); ok {
		return c.(*vm.Counter)
	}
	c := m.set.GetOrCreateCounter(`gannet_messages_received_total{listener="` + escapeLabel(listener) + `"}`)
	m.received.Store(listener, c)
	return c
}

// ReceivedTotal is the sum of gannet_messages_received_total over the
// listeners.
func (m *Metrics) ReceivedTotal() uint64 {
	var n uint64
	m.received.Range(func(_, c any) bool {
		n += c.(*vm.Counter).Get()
		return true
	})
	return n
}

// SpoolCorrupt returns the gannet_spool_corrupt_total counter of kind
// "index" or "record" (queue.CorruptKind.String); any other kind counts as
// "record", the kind of everything that is not an index value.
func (m *Metrics) SpoolCorrupt(kind string) *vm.Counter {
	if kind == "index" {
		return m.SpoolCorruptIndex
	}
	return m.SpoolCorruptRecord
}

// Connections returns ConnectionsIn or ConnectionsOut for In or Out.
func (m *Metrics) Connections(direction string) *vm.Gauge {
	if direction == Out {
		return m.ConnectionsOut
	}
	return m.ConnectionsIn
}

// ProxyRefused returns gannet_proxy_protocol_refused_total{listener,reason}:
// connections a PROXY protocol listener refused, by reason ("untrusted":
// not from trusted_proxies; "malformed": no header or a broken one;
// "timeout": none complete within proxy_header_timeout).
func (m *Metrics) ProxyRefused(listener, reason string) *vm.Counter {
	return m.set.GetOrCreateCounter(`gannet_proxy_protocol_refused_total{listener="` + escapeLabel(listener) + `",reason="` + escapeLabel(reason) + `"}`)
}

// SMTPErrors returns SMTPErrorsIn or SMTPErrorsOut for In or Out.
func (m *Metrics) SMTPErrors(direction string) *vm.Counter {
	if direction == Out {
		return m.SMTPErrorsOut
	}
	return m.SMTPErrorsIn
}

// TLSFailure returns the gannet_tls_failures_total counter of policy
// ("sts", "dane" or "none"; any other value counts as "none") and
// resultType (an RFC 8460 result type, tlsrpt.ResultTypes; any other value
// counts as "other"). The label values are capped to those sets, so the
// series are at most 3 × 12.
func (m *Metrics) TLSFailure(policy, resultType string) *vm.Counter {
	switch policy {
	case "sts", "dane":
	default:
		policy = "none"
	}
	if !tlsrpt.KnownResultType(resultType) {
		resultType = "other"
	}
	return m.set.GetOrCreateCounter(`gannet_tls_failures_total{policy="` + policy + `",result_type="` + resultType + `"}`)
}

// MTASTSFetch returns the gannet_mta_sts_policy_fetches_total counter of
// result "ok", "error" or "invalid" (any other value counts as "error").
func (m *Metrics) MTASTSFetch(result string) *vm.Counter {
	switch result {
	case "ok":
		return m.stsFetchOK
	case "invalid":
		return m.stsFetchInvalid
	}
	return m.stsFetchError
}

// CertificateExpiry installs
// gannet_tls_certificate_expiry_timestamp_seconds{listener}: when the
// certificate a listener serves expires, read from notAfter at each scrape
// (so that a certificate re-read from its files shows at once). Listeners
// are named in the configuration, so the label set is bounded by it. A
// second call for the same listener replaces the function.
func (m *Metrics) CertificateExpiry(listener string, notAfter func() time.Time) {
	p := new(atomic.Pointer[func() time.Time])
	p.Store(&notAfter)
	if old, loaded := m.certExpiry.LoadOrStore(listener, p); loaded {
		old.(*atomic.Pointer[func() time.Time]).Store(&notAfter)
		return
	}
	m.set.NewGauge(`gannet_tls_certificate_expiry_timestamp_seconds{listener="`+escapeLabel(listener)+`"}`,
		func() float64 {
			t := (*p.Load())()
			if t.IsZero() {
				return 0
			}
			return float64(t.Unix())
		})
}

// ObserveDeliveryLatency records a delivery of a message received at created.
func (m *Metrics) ObserveDeliveryLatency(created, delivered time.Time) {
	m.DeliveryLatency.Update(delivered.Sub(created).Seconds())
}

// EventsShipped returns the gannet_events_shipped_total counter of an
// [[event_sink]] (names come from the configuration, so the series are
// bounded) and a result: ok, rejected, expired, dropped or retried.
func (m *Metrics) EventsShipped(sink, result string) *vm.Counter {
	return m.set.GetOrCreateCounter(`gannet_events_shipped_total{sink="` + escapeLabel(sink) + `",result="` + escapeLabel(result) + `"}`)
}

// EventBacklog installs gannet_event_backlog{sink}: the records a sink
// has not shipped yet, read from backlog at each scrape. A second call
// for the same sink keeps the first function.
func (m *Metrics) EventBacklog(sink string, backlog func() float64) {
	m.set.GetOrCreateGauge(`gannet_event_backlog{sink="`+escapeLabel(sink)+`"}`, backlog)
}

// RedisCall counts a round trip to the cluster's Redis in
// gannet_cluster_redis_calls_total{op}: op is what it was for, "rate",
// "conn", "rules", "suppress", "heartbeat" or "other" (engine/cluster's
// Op*; any other value counts as "other", so the series are at most six).
func (m *Metrics) RedisCall(op string) {
	switch op {
	case "rate", "conn", "rules", "suppress", "heartbeat":
	default:
		op = "other"
	}
	m.set.GetOrCreateCounter(`gannet_cluster_redis_calls_total{op="` + op + `"}`).Inc()
}

// Set returns the underlying Set, for metrics other packages add.
func (m *Metrics) Set() *vm.Set { return m.set }

// help gives the HELP text of each metric family; the library writes HELP
// lines without text, and WritePrometheus fills them in.
func help(family string) string {
	switch family {
	case "gannet_messages_received_total":
		return "Messages accepted (durable, answered 2xx), by listener."
	case "gannet_messages_delivered_total":
		return "Recipients whose MX host accepted the message."
	case "gannet_messages_transient_failures_total":
		return "Delivery attempts that failed temporarily and will be retried."
	case "gannet_messages_bounced_total":
		return "Recipients that failed permanently, including admin bounces."
	case "gannet_messages_expired_total":
		return "Recipients given up after max_retry_age."
	case "gannet_queue_depth":
		return "Messages in the queue: scheduled (waiting for their next attempt) or ready (due, waiting for a connection); dead: dead letters kept in the spool."
	case "gannet_delivery_latency_seconds":
		return "Time from reception to delivery."
	case "gannet_smtp_errors_total":
		return "SMTP 4xx/5xx replies sent (in) or received (out)."
	case "gannet_tls_failures_total":
		return "Failed TLS handshakes, inbound (policy=\"none\", result_type=\"other\") and outbound, by the policy in force (none, sts, dane) and the RFC 8460 result type (starttls-not-supported, certificate-host-mismatch, certificate-expired, certificate-not-trusted, validation-failure, ...; MX host not in an MTA-STS policy: validation-failure)."
	case "gannet_mta_sts_policy_fetches_total":
		return "MTA-STS policy fetches (RFC 8461): ok, error (DNS, connection, TLS, HTTP status or type, size, timeout) or invalid (the file does not parse)."
	case "gannet_tls_certificate_expiry_timestamp_seconds":
		return "When the certificate of each SMTP and HTTP listener expires (Unix seconds)."
	case "gannet_connections":
		return "Open SMTP connections, inbound and outbound."
	case "gannet_spool_commit_seconds":
		return "Time to make a message durable in the spool."
	case "gannet_log_records_dropped_total":
		return "Log records lost because the log writer could not keep up."
	case "gannet_messages_xferred_total":
		return "Recipients handed to another node by gannet xfer (XferOut records); not counted as delivered."
	case "gannet_rejection_records_dropped_total":
		return "Rejection records not written: past [log] rejections_per_connection (per_connection) or rejection_rate (rate)."
	case "gannet_spool_corrupt_total":
		return "Messages found corrupt in the spool and quarantined: an index entry that does not decode (index) or a body record that does not read back (record)."
	case "gannet_connections_opened_total":
		return "SMTP connections accepted (in) or outbound sessions established (out)."
	case "gannet_tls_handshakes_total":
		return "Successful outbound TLS handshakes: full (resumed=\"false\") or resuming an earlier session with the same MX host (resumed=\"true\")."
	case "gannet_bounces_total":
		return "Recipients that bounced or expired, by bounce classification."
	case "gannet_policy_errors_total":
		return "Policy script hook calls that raised an error or ran past [policy] hook_timeout, by event."
	case "gannet_campaign_events_total":
		return "Events a policy script counted with increment_campaign_metric, by campaign and event."
	case "gannet_cluster_redis_errors_total":
		return "Calls to the cluster's Redis ([cluster] redis) that failed or ran past redis_timeout; meanwhile each limit falls back to this node's share."
	case "gannet_cluster_redis_calls_total":
		return "Round trips to the cluster's Redis ([cluster] redis), failed ones included, by what they were for: rate (leases of a shared rate's tokens), conn (connection leases), rules (shared admin rules), heartbeat (node entries), other (connection set-up)."
	case "gannet_feedback_reports_total":
		return "Reports received on feedback addresses: asynchronous DSNs (kind=\"dsn\") and ARF reports (kind=\"arf\"), matched=\"true\" when their signed reference verified."
	case "gannet_suppressed_total":
		return "Recipients not sent to because they are on the suppression list: refused as the mail came in (mode=\"refuse\") or taken and skipped (mode=\"drop\")."
	case "gannet_suppression_entries":
		return "Entries on the suppression list, every tenant's and the global list."
	case "gannet_suppression_added_total":
		return "Suppression list entries added or renewed, by source (bounce, oob, complaint, admin, import, erase)."
	case "gannet_transient_failures_by_class_total":
		return "Delivery attempts that failed temporarily, by bounce classification of the reply."
	case "gannet_events_shipped_total":
		return "Log records of each [[event_sink]] by result: ok (taken), rejected (a 4xx for good), expired (max_retry_age), dropped (max_backlog, or the journal fell behind), retried (per record per failed attempt)."
	case "gannet_event_backlog":
		return "Log records an [[event_sink]] has not shipped yet."
	}
	return ""
}

// WritePrometheus writes every Gannet metric, then the Go runtime and process
// metrics (go_*, process_*), in the Prometheus text format.
func (m *Metrics) WritePrometheus(w io.Writer) {
	var buf bytes.Buffer
	m.set.WritePrometheus(&buf)
	out := make([]byte, 0, buf.Len()+2048)
	for rest := buf.Bytes(); len(rest) > 0; {
		line := rest
		if i := bytes.IndexByte(rest, '\n'); i >= 0 {
			line, rest = rest[:i], rest[i+1:]
		} else {
			rest = nil
		}
		out = append(out, line...)
		if name, ok := bytes.CutPrefix(line, []byte("# HELP ")); ok && bytes.IndexByte(name, ' ') < 0 {
			if h := help(string(name)); h != "" {
				out = append(out, ' ')
				out = append(out, h...)
			}
		}
		out = append(out, '\n')
	}
	out = m.appendSiteRates(out)
	out = m.appendSiteBackoffs(out)
	out = m.appendSiteTuned(out)
	out = m.appendWarmup(out)
	out = m.appendDestinations(out)
	for _, c := range []*CappedCounters{m.Sites, m.Domains, m.Tenants, m.Campaigns} {
		out = c.appendTo(out)
	}
	if !m.kumoCompat.Load() {
		w.Write(out)
		vm.WriteProcessMetrics(w)
		return
	}
	var proc bytes.Buffer
	vm.WriteProcessMetrics(&proc)
	out = append(out, proc.Bytes()...)
	// The derived families follow; text is what was written so far (its
	// bytes do not move while out grows past them).
	out = appendKumoCompat(out, out[:len(out):len(out)])
	w.Write(out)
}

// ServeHTTP serves GET /metrics.
func (m *Metrics) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
	m.WritePrometheus(w)
}

// escapeLabel escapes a label value for the text format: backslash, double
// quote and line feed.
func escapeLabel(s string) string {
	if !strings.ContainsAny(s, "\\\"\n") {
		return s
	}
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`)
	return r.Replace(s)
}
