package metrics

import (
	"bytes"
	"strings"
	"testing"
)

// TestSuppressionMetrics: the suppression series are written with their
// labels, values and HELP texts.
func TestSuppressionMetrics(t *testing.T) {
	m := New()
	m.SetSuppressionEntries(func() float64 { return 7 })
	m.Suppressed("refuse").Inc()
	m.Suppressed("refuse").Inc()
	m.Suppressed("drop").Inc()
	m.SuppressionAdded("bounce").Inc()
	var b bytes.Buffer
	m.WritePrometheus(&b)
	out := b.String()
	for _, want := range []string{
		`gannet_suppressed_total{mode="refuse"} 2`,
		`gannet_suppressed_total{mode="drop"} 1`,
		"gannet_suppression_entries 7",
		`gannet_suppression_added_total{source="bounce"} 1`,
		"# HELP gannet_suppressed_total Recipients not sent to",
		"# HELP gannet_suppression_entries Entries on",
		"# HELP gannet_suppression_added_total Suppression list entries",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("no %q in:\n%s", want, out)
		}
	}
}
