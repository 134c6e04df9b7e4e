package metrics

import (
	"sort"
	"strconv"
)

// DestinationGauge is the state of one destination (MX site or domain)
// at scrape time.
type DestinationGauge struct {
	Name        string  // site key or domain
	Connections float64 // outbound transactions in progress (each holds or waits for one connection)
	QueueDepth  float64 // work waiting: see DestinationState
	Rate        float64 // effective message rate (messages per second; 0 = unlimited), when HasRate
	HasRate     bool
}

// DestinationState is what the per-destination gauges read at each scrape.
type DestinationState struct {
	// Sites: QueueDepth counts work items (one message's recipients at
	// one domain) ready or in flight at the site. Rates of sites are
	// written by gannet_site_effective_rate (SetSiteRates), not here.
	Sites []DestinationGauge
	// Domains: QueueDepth counts recipients not yet delivered, bounced or
	// expired (scheduled, ready or in flight); Rate is the effective rate
	// of the site the domain is routed to.
	Domains []DestinationGauge
}

// SetDestinations installs the function the per-destination gauges call
// at each scrape: gannet_site_connections, gannet_site_queue_depth,
// gannet_domain_connections, gannet_domain_queue_depth and
// gannet_domain_effective_rate. It must be safe to call from any
// goroutine.
func (m *Metrics) SetDestinations(f func() DestinationState) { m.destinations.Store(&f) }

// appendDestinations writes the per-destination gauges: for each of sites
// and domains, the MaxDestinationLabels busiest (queue depth plus
// connections) by name and the sum of the rest as "other".
func (m *Metrics) appendDestinations(out []byte) []byte {
	p := m.destinations.Load()
	if p == nil {
		return out
	}
	st := (*p)()
	limit := m.MaxDestinationLabels()
	out = appendDestinationFamilies(out, "site", "destination site", st.Sites, limit, false)
	return appendDestinationFamilies(out, "domain", "destination domain", st.Domains, limit, true)
}

func appendDestinationFamilies(out []byte, label, what string, gs []DestinationGauge, limit int, withRate bool) []byte {
	if len(gs) == 0 {
		return out
	}
	sort.Slice(gs, func(i, j int) bool {
		wi, wj := gs[i].QueueDepth+gs[i].Connections, gs[j].QueueDepth+gs[j].Connections
		if wi != wj {
			return wi > wj
		}
		return gs[i].Name < gs[j].Name
	})
	named, rest := gs, []DestinationGauge(nil)
	if len(gs) > limit {
		named, rest = gs[:limit], gs[limit:]
	}
	sort.Slice(named, func(i, j int) bool { return named[i].Name < named[j].Name })
	var other DestinationGauge
	for _, g := range rest {
		other.Connections += g.Connections
		other.QueueDepth += g.QueueDepth
	}
	capNote := " (the busiest " + strconv.Itoa(limit) + "; the rest summed as " + label + `="other").`
	fam := func(name, help string, v func(DestinationGauge) float64) {
		out = appendHeader(out, name, help+capNote, "gauge")
		for _, g := range named {
			out = appendSample(out, name, label, g.Name, v(g))
		}
		if len(rest) > 0 {
			out = appendSample(out, name, label, OtherLabel, v(other))
		}
	}
	prefix := "gannet_" + label + "_"
	fam(prefix+"connections", "Outbound SMTP transactions in progress per "+what,
		func(g DestinationGauge) float64 { return g.Connections })
	queueHelp := "Work items (a message's recipients at one domain) ready or in flight per " + what
	if label == "domain" {
		queueHelp = "Recipients waiting for delivery (scheduled, ready or in flight) per " + what
	}
	fam(prefix+"queue_depth", queueHelp, func(g DestinationGauge) float64 { return g.QueueDepth })
	if withRate {
		name := prefix + "effective_rate"
		started := false
		for _, g := range named {
			if !g.HasRate {
				continue
			}
			if !started {
				out = appendHeader(out, name, "Messages per second the site of a destination domain may get now, after adaptive back-off and shaping; 0 means unlimited (the busiest "+strconv.Itoa(limit)+" domains; no \"other\": a sum of rates means nothing).", "gauge")
				started = true
			}
			out = appendSample(out, name, label, g.Name, g.Rate)
		}
	}
	return out
}
