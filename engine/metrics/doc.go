// Package metrics defines Gannet's Prometheus metrics in one place, with the
// names of the outside contract (shared/docs/contract.md, "Metrics").
//
// It wraps a VictoriaMetrics metrics.Set — one per Metrics value, never the
// library's global set, so tests and several engines in one process do not
// share counters. Counters and gauges are created once in New and kept in
// typed fields; the labelled received counter is cached per listener name so
// that hot paths never build a metric name. Histograms are Prometheus
// histograms (le buckets, TYPE histogram), not the library's vmrange
// histograms, which Prometheus' histogram_quantile cannot use. Queue depths
// are callback gauges: the engine installs cheap functions with
// SetQueueDepth and they are read at scrape time.
package metrics
