package metrics

import (
	"sync"
	"sync/atomic"

	vm "github.com/VictoriaMetrics/metrics"
)

// The metrics of a policy script (engine/policy/lua):
// gannet_policy_errors_total{event} counts hooks that raised an error or
// ran past [policy] hook_timeout; gannet_campaign_events_total{campaign,
// event} counts the script's increment_campaign_metric calls.

// maxCampaignEventSeries bounds the {campaign, event} pairs with a series
// of their own: the names come from scripts and mail headers, so past the
// bound the events count under campaign="other", event="other".
const maxCampaignEventSeries = 1000

type policyMetrics struct {
	errors         sync.Map // event → *vm.Counter
	campaignEvents sync.Map // campaign "\x00" event → *vm.Counter
	pairs          atomic.Int64
	otherOnce      sync.Once
	other          *vm.Counter
}

// PolicyError counts one failed hook call of event.
func (m *Metrics) PolicyError(event string) {
	c, ok := m.policy.errors.Load(event)
	if !ok {
		c, _ = m.policy.errors.LoadOrStore(event,
			m.set.GetOrCreateCounter(`gannet_policy_errors_total{event="`+escapeLabel(event)+`"}`))
	}
	c.(*vm.Counter).Inc()
}

// CampaignEvent counts one event of campaign (increment_campaign_metric).
func (m *Metrics) CampaignEvent(campaign, event string) {
	p := &m.policy
	key := campaign + "\x00" + event
	if c, ok := p.campaignEvents.Load(key); ok {
		c.(*vm.Counter).Inc()
		return
	}
	if p.pairs.Add(1) > maxCampaignEventSeries {
		p.pairs.Add(-1)
		p.otherOnce.Do(func() {
			p.other = m.set.GetOrCreateCounter(`gannet_campaign_events_total{campaign="other",event="other"}`)
		})
		p.other.Inc()
		return
	}
	c, loaded := p.campaignEvents.LoadOrStore(key, m.set.GetOrCreateCounter(
		`gannet_campaign_events_total{campaign="`+escapeLabel(campaign)+`",event="`+escapeLabel(event)+`"}`))
	if loaded {
		p.pairs.Add(-1)
	}
	c.(*vm.Counter).Inc()
}
