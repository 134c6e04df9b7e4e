package admin

import (
	"net/http"
	"sort"

	"gannet/engine/delivery"
)

// queueSummary: GET /api/admin/queue-summary/v1.
func (h *handler) queueSummary(w http.ResponseWriter, r *http.Request, c caller) *apiError {
	s := h.opts.Loop.Summary(c.tenant)
	out := h.summarize(s, c)
	// The quarantine is the operator's: an index entry that does not
	// decode belongs to no known tenant.
	if q := h.opts.Quarantine; q != nil && c.tenant == "" {
		ids, total, err := q.QuarantinedIDs(MaxCorruptIDs)
		if err != nil {
			h.log.Error("admin summary: reading the spool's quarantine", "err", err)
		}
		out.Totals.Corrupt, out.CorruptIDs = total, ids
	}
	if d := h.opts.Dead; d != nil && c.tenant == "" {
		out.Totals.Dead = int(d.Stats().Dead)
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// summarize shapes the loop's summary: rows per queue, then sums per
// domain, tenant and campaign, and the sites.
func (h *handler) summarize(s delivery.Summary, c caller) QueueSummaryV1 {
	out := QueueSummaryV1{
		Totals: Totals{Messages: s.Messages, Counts: Counts{Recipients: s.Recipients,
			Scheduled: s.Scheduled, Ready: s.Ready, InFlight: s.InFlight, Held: s.Held}},
		Queues: []QueueRow{}, Domains: []DomainRow{}, Tenants: []GroupRow{}, Campaigns: []GroupRow{}, Sites: []SiteRow{},
	}
	siteRate := map[string]float64{}
	inBackoff := map[string]bool{}
	tuned := map[string]TuneEntry{}
	if c.tenant == "" {
		out.Backoff = h.backoffs()
		out.Warmup = h.warmups()
		for _, b := range out.Backoff {
			inBackoff[b.Site] = true
		}
		if h.opts.Tunes != nil {
			out.Tuned = h.opts.Tunes()
			for _, t := range out.Tuned {
				tuned[t.Site] = t
			}
		}
	}
	for _, st := range s.Sites {
		t := tuned[st.Site]
		out.Sites = append(out.Sites, SiteRow{Site: st.Site, Source: st.Source, Connections: st.Connections,
			EffectiveRate: st.EffectiveRate, Ready: st.Ready, InFlight: st.InFlight, Suspended: st.Suspended,
			Backoff: inBackoff[st.Site], TunedRate: t.Rate, TuneReason: t.Reason, TunedConnections: t.Connections})
		if st.Source == "" {
			siteRate[st.Site] = st.EffectiveRate
		}
	}
	if c.tenant != "" {
		out.Sites = nil
	}

	type group struct {
		idx       int
		suspended bool
	}
	domains, tenants, campaigns := map[string]*group{}, map[string]*group{}, map[string]*group{}
	for _, q := range s.Queues {
		cnt := Counts{Recipients: q.Recipients, Scheduled: q.Scheduled, Ready: q.Ready, InFlight: q.InFlight, Held: q.Held}
		out.Queues = append(out.Queues, QueueRow{Name: q.Name, Domain: q.Domain, Tenant: q.Tenant, Campaign: q.Campaign,
			Site: q.Site, Messages: q.Messages, Counts: cnt, EffectiveRate: siteRate[q.Site],
			Suspended: q.Suspended, Bouncing: q.Bouncing})

		g := domains[q.Domain]
		if g == nil {
			g = &group{idx: len(out.Domains), suspended: true}
			domains[q.Domain] = g
			out.Domains = append(out.Domains, DomainRow{Domain: q.Domain})
		}
		d := &out.Domains[g.idx]
		d.Messages += q.Messages
		d.add(cnt)
		if q.Site != "" {
			d.EffectiveRate = siteRate[q.Site]
		}
		g.suspended = g.suspended && q.Suspended
		d.Suspended = g.suspended

		addGroup := func(m map[string]*group, rows *[]GroupRow, name string, rate float64) {
			g := m[name]
			if g == nil {
				g = &group{idx: len(*rows), suspended: true}
				m[name] = g
				*rows = append(*rows, GroupRow{Name: name, EffectiveRate: rate})
			}
			row := &(*rows)[g.idx]
			row.add(cnt)
			g.suspended = g.suspended && q.Suspended
			row.Suspended = g.suspended
		}
		rate := 0.0
		if h.opts.TenantRate != nil && q.Tenant != "" {
			rate = h.opts.TenantRate(q.Tenant)
		}
		addGroup(tenants, &out.Tenants, q.Tenant, rate)
		addGroup(campaigns, &out.Campaigns, q.Campaign, 0)
	}
	sort.Slice(out.Domains, func(i, j int) bool { return out.Domains[i].Domain < out.Domains[j].Domain })
	sort.Slice(out.Tenants, func(i, j int) bool { return out.Tenants[i].Name < out.Tenants[j].Name })
	sort.Slice(out.Campaigns, func(i, j int) bool { return out.Campaigns[i].Name < out.Campaigns[j].Name })

	for _, r := range h.opts.Loop.Suspensions() {
		if c.tenant == "" || r.Selector.Tenant == c.tenant {
			out.Totals.Suspensions++
		}
	}
	for _, r := range h.opts.Loop.Bounces() {
		if c.tenant == "" || r.Selector.Tenant == c.tenant {
			out.Totals.Bounces++
		}
	}
	for _, r := range h.opts.Loop.Holds() {
		if c.tenant == "" || r.Selector.Tenant == c.tenant {
			out.Totals.Holds++
		}
	}
	return out
}
