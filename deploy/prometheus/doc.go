// Package prometheus holds Gannet's Prometheus alerting rules
// (gannet-alerts.yml) and their unit tests (gannet-alerts_test.yml), as
// files for operators to deploy; the Go code here only tests them.
//
// rules_test.go runs `promtool check rules` and `promtool test rules` (the
// Debian package prometheus; scripts/install-test-peers.sh installs it) and
// checks that every gannet_* metric the rules name is one engine/metrics
// exports, so that a renamed metric cannot silently disable an alert.
// Without promtool the test skips loudly, and fails when CI=true.
//
// The alerts, each per relay (job, instance):
//
//   - GannetQueueDepthHigh: sum of gannet_queue_depth (scheduled and ready;
//     not the dead letters) above 50,000 for 10m.
//   - GannetDeliveryLatencyHigh: p95 of gannet_delivery_latency_seconds
//     (histogram_quantile over the rate of the le buckets) above 60 s.
//   - GannetOutboundSMTPErrorsHigh: gannet_smtp_errors_total{direction="out"}
//     above 1% of recipient attempts (delivered + transient + bounced).
//   - GannetInboundSMTPErrorsHigh: gannet_smtp_errors_total{direction="in"}
//     above 1% of final answers to clients (messages received + errors).
//   - GannetTLSFailuresHigh: gannet_tls_failures_total (but policy="sts"
//     or "dane", failures under destinations' MTA-STS policies or DANE
//     TLSA records) above 2% of
//     gannet_connections_opened_total (both directions).
//   - GannetDomainConnectionsHigh: gannet_domain_connections above 20 for
//     one domain.
//   - GannetSpoolCorrupt: gannet_spool_corrupt_total increased in the last
//     hour (a message quarantined as corrupt: never delivered or bounced).
//   - GannetTLSCertificateExpiresSoon: a listener's certificate
//     (gannet_tls_certificate_expiry_timestamp_seconds{listener}) expires
//     within 14 days, for 10m.
//   - GannetSiteInBackoff: a site in backoff mode (gannet_site_backoff) for 2h.
//   - GannetEventsLost: an event sink gave up records in the last hour
//     (gannet_events_shipped_total, result rejected, expired or dropped).
//
// The ratio alerts wait for at least 100 attempts (or connections) in their
// 10 minute window.
//
// example-scrape.txt is what GET /metrics served at the end of the e2e test
// TestE2EObservability (retries, a bounce, deliveries; max_destination_labels
// = 2); regenerate it with
//
//	GANNET_METRICS_OUT=$PWD/deploy/prometheus/example-scrape.txt go test -run TestE2EObservability ./e2e/
package prometheus
