package metrics

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
)

// TestPolicyMetrics: hook errors are counted by event, and campaign events
// by campaign and event, with at most maxCampaignEventSeries pairs: the
// rest count under "other", so a script counting by a header's value
// cannot grow the exposition without bound.
func TestPolicyMetrics(t *testing.T) {
	m := New()
	m.PolicyError("smtp_message_received")
	m.PolicyError("smtp_message_received")
	m.PolicyError("http_request")
	for i := range maxCampaignEventSeries + 50 {
		m.CampaignEvent(fmt.Sprintf("c%d", i), "queued")
	}
	m.CampaignEvent("c0", "queued")
	m.CampaignEvent(`we"ird`, "queued") // past the bound: other
	var buf bytes.Buffer
	m.WritePrometheus(&buf)
	out := buf.String()
	for _, want := range []string{
		`gannet_policy_errors_total{event="smtp_message_received"} 2`,
		`gannet_policy_errors_total{event="http_request"} 1`,
		`gannet_campaign_events_total{campaign="c0",event="queued"} 2`,
		`gannet_campaign_events_total{campaign="other",event="other"} 51`,
		"# HELP gannet_campaign_events_total Events a policy script counted",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("exposition lacks %q", want)
		}
	}
	if n := strings.Count(out, "gannet_campaign_events_total{"); n != maxCampaignEventSeries+1 {
		t.Errorf("%d campaign event series, want %d", n, maxCampaignEventSeries+1)
	}
}
