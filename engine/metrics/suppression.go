package metrics

import vm "github.com/VictoriaMetrics/metrics"

// Suppression metrics (the suppression list, engine/suppress):
//
//   - gannet_suppressed_total{mode}: recipients not sent to because they
//     are suppressed: refused as the mail came in ("refuse"), or taken and
//     skipped ("drop");
//   - gannet_suppression_entries: the entries on the list (all tenants);
//   - gannet_suppression_added_total{source}: entries added or renewed, by
//     source ("bounce", "oob", "complaint", "admin", "import", "erase").

// Suppressed returns gannet_suppressed_total{mode} for mode "refuse" or
// "drop".
// The two counters are made on first use and kept: no allocation after.
func (m *Metrics) Suppressed(mode string) *vm.Counter {
	if c, ok := m.suppressed.Load(mode); ok {
		return c.(*vm.Counter)
	}
	c := m.set.GetOrCreateCounter(`gannet_suppressed_total{mode="` + escapeLabel(mode) + `"}`)
	m.suppressed.Store(mode, c)
	return c
}

// SuppressionAdded returns gannet_suppression_added_total{source}.
func (m *Metrics) SuppressionAdded(source string) *vm.Counter {
	return m.set.GetOrCreateCounter(`gannet_suppression_added_total{source="` + escapeLabel(source) + `"}`)
}

// SetSuppressionEntries installs the function gannet_suppression_entries
// calls at each scrape.
func (m *Metrics) SetSuppressionEntries(n func() float64) {
	m.set.GetOrCreateGauge("gannet_suppression_entries", n)
}
