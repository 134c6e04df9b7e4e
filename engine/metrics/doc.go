// Package metrics defines Gannet's Prometheus metrics in one place, with the
// names of the outside contract (docs/contract.md, "Metrics").
//
// It wraps a VictoriaMetrics metrics.Set — one per Metrics value, never the
// library's global set, so tests and several engines in one process do not
// share counters. Counters and gauges are created once in New and kept in
// typed fields; the labelled received counter is cached per listener name so
// that hot paths never build a metric name. Histograms are Prometheus
// histograms (le buckets, TYPE histogram), not the library's vmrange
// histograms, which Prometheus' histogram_quantile cannot use. Queue depths
// are callback gauges: the engine installs cheap functions with
// SetQueueDepth and they are read at scrape time. WritePrometheus ends with
// the Go runtime and process metrics (go_*, process_*).
//
// # Bounded labels
//
// Destinations, tenants and campaigns are unbounded sets chosen by whoever
// sends mail, so series labelled by them are capped ([metrics]
// max_destination_labels, SetMaxDestinationLabels; 50 by default):
//
//   - Counters (capped.go): gannet_{site,domain,tenant,campaign}_messages_
//     {received,delivered,transient_failures,bounced,expired}_total. A
//     CappedCounters gives its own series to the values with the most
//     events (first come until the cap is reached, then re-ranked each
//     minute by a decaying volume score) and counts the rest under "other".
//     A value that gains a series starts it at zero and one that loses it
//     stops being written, so that every series stays monotonic.
//   - Gauges read at scrape time (destinations.go, siterates.go):
//     gannet_{site,domain}_connections, gannet_{site,domain}_queue_depth,
//     gannet_domain_effective_rate and gannet_site_effective_rate{site,source}
//     show the busiest destinations by name and sum the rest as "other"
//     (rates, whose sum means nothing, have no "other" per domain).
//
// Bounce classes are a fixed vocabulary and need no cap:
// gannet_bounces_total{class} (bounces and expirations) and
// gannet_transient_failures_by_class_total{class}. So are the kinds of
// gannet_spool_corrupt_total{kind="index|record"}, messages the spool
// quarantined because they are corrupt (queue/quarantine.go); both series
// exist from the start, at 0, so that an alert sees the first one.
// gannet_connections_opened_total{direction} is the denominator of the TLS
// failure ratio the alert rules (deploy/prometheus) use.
//
// With [metrics] compat = "kumomta" (SetCompat) the exposition also
// carries KumoMTA's names for the metrics Gannet has an equivalent of,
// derived from the same scrape's Gannet series (kumocompat.go).
//
// The metrics package only counts; the engine decides what to count where
// (engine/observe.go derives the labelled series from the log records).
package metrics
