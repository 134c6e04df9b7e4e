package metrics

import vm "github.com/VictoriaMetrics/metrics"

// FeedbackReport returns gannet_feedback_reports_total{kind, matched}: the
// reports received on feedback addresses, kind "dsn" or "arf", matched
// "true" when their signed reference verified. Four series at most.
func (m *Metrics) FeedbackReport(kind string, matched bool) *vm.Counter {
	if kind != "dsn" && kind != "arf" {
		kind = "other"
	}
	mt := "false"
	if matched {
		mt = "true"
	}
	return m.set.GetOrCreateCounter(`gannet_feedback_reports_total{kind="` + kind + `",matched="` + mt + `"}`)
}
