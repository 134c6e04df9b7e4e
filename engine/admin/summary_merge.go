package admin

import "sort"

// MergeSummaries sums the queue summaries of several nodes of a cluster
// into one (`gannet queue summary -cluster`): each node keeps its own
// spool, so the fleet's queue is the sum of theirs. Rows with the same key
// (queue name, domain, tenant, campaign, site and egress source) add their
// counts and effective rates (each node's rate is its share of the
// fleet's); a row is suspended, bouncing or in backoff when it is on any
// node, and each site in backoff is listed once.
// Quarantined message ids are node-local and are left out (Totals.Corrupt
// still counts them).
func MergeSummaries(nodes []QueueSummaryV1) QueueSummaryV1 {
	var out QueueSummaryV1
	queues := map[string]*QueueRow{}
	domains := map[string]*DomainRow{}
	tenants := map[string]*GroupRow{}
	campaigns := map[string]*GroupRow{}
	sites := map[[2]string]*SiteRow{}
	backoff := map[string]*BackoffEntry{}
	tuned := map[string]*TuneEntry{}
	warm := map[[2]string]*WarmupEntry{}
	for _, s := range nodes {
		mergeWarmup(warm, s.Warmup) // warmup.go
		t := &out.Totals
		t.Messages += s.Totals.Messages
		t.Counts.add(s.Totals.Counts)
		// Admin rules are shared by the cluster's nodes: each lists the
		// same ones, so the fleet has as many as the node with most.
		t.Suspensions = max(t.Suspensions, s.Totals.Suspensions)
		t.Bounces = max(t.Bounces, s.Totals.Bounces)
		t.Holds = max(t.Holds, s.Totals.Holds)
		t.Corrupt += s.Totals.Corrupt
		t.Dead += s.Totals.Dead
		for _, q := range s.Queues {
			if m := queues[q.Name]; m != nil {
				m.Messages += q.Messages
				m.Counts.add(q.Counts)
				m.EffectiveRate += q.EffectiveRate
				m.Suspended = m.Suspended || q.Suspended
				m.Bouncing = m.Bouncing || q.Bouncing
				if m.Site == "" {
					m.Site = q.Site
				}
				continue
			}
			q := q
			queues[q.Name] = &q
		}
		for _, d := range s.Domains {
			if m := domains[d.Domain]; m != nil {
				m.Messages += d.Messages
				m.Counts.add(d.Counts)
				m.EffectiveRate += d.EffectiveRate
				m.Suspended = m.Suspended || d.Suspended
				continue
			}
			d := d
			domains[d.Domain] = &d
		}
		mergeGroups(tenants, s.Tenants)
		mergeGroups(campaigns, s.Campaigns)
		for _, r := range s.Sites {
			k := [2]string{r.Site, r.Source}
			if m := sites[k]; m != nil {
				m.Connections += r.Connections
				m.EffectiveRate += r.EffectiveRate
				m.Ready += r.Ready
				m.InFlight += r.InFlight
				m.Suspended = m.Suspended || r.Suspended
				m.Backoff = m.Backoff || r.Backoff
				m.TunedRate += r.TunedRate // each node tunes its own share
				m.TunedConnections += r.TunedConnections
				continue
			}
			r := r
			sites[k] = &r
		}
		// Each node tunes its own share of a site: the rates add up, the
		// latest change says why.
		for _, t := range s.Tuned {
			if m := tuned[t.Site]; m != nil {
				m.Rate += t.Rate
				m.Throttled += t.Throttled
				m.Connections += t.Connections
				m.ConnectionsRefusedAt += t.ConnectionsRefusedAt
				if t.Changed.After(m.Changed) {
					m.Reason, m.ConnectionsReason, m.Changed = t.Reason, t.ConnectionsReason, t.Changed
				}
				continue
			}
			t := t
			tuned[t.Site] = &t
		}
		// Backoff mode is shared by the nodes (as admin rules are): one
		// entry per site, the first node's.
		for _, b := range s.Backoff {
			if backoff[b.Site] == nil {
				b := b
				backoff[b.Site] = &b
			}
		}
	}
	out.Queues = sortedRows(queues, func(r *QueueRow) string { return r.Name })
	out.Domains = sortedRows(domains, func(r *DomainRow) string { return r.Domain })
	out.Tenants = sortedRows(tenants, func(r *GroupRow) string { return r.Name })
	out.Campaigns = sortedRows(campaigns, func(r *GroupRow) string { return r.Name })
	out.Sites = sortedRows(sites, func(r *SiteRow) string { return r.Site + "\x00" + r.Source })
	if len(backoff) > 0 {
		out.Backoff = sortedRows(backoff, func(b *BackoffEntry) string { return b.Site })
	}
	if len(tuned) > 0 {
		out.Tuned = sortedRows(tuned, func(t *TuneEntry) string { return t.Site })
	}
	if len(warm) > 0 {
		out.Warmup = sortedRows(warm, func(w *WarmupEntry) string { return w.Source + "\x00" + w.Provider })
	}
	return out
}

func mergeGroups(into map[string]*GroupRow, rows []GroupRow) {
	for _, g := range rows {
		if m := into[g.Name]; m != nil {
			m.Counts.add(g.Counts)
			m.EffectiveRate += g.EffectiveRate
			m.Suspended = m.Suspended || g.Suspended
			continue
		}
		g := g
		into[g.Name] = &g
	}
}

// sortedRows returns the rows of m ordered by key.
func sortedRows[K comparable, R any](m map[K]*R, key func(*R) string) []R {
	rows := make([]R, 0, len(m))
	for _, r := range m {
		rows = append(rows, *r)
	}
	sort.Slice(rows, func(i, j int) bool { return key(&rows[i]) < key(&rows[j]) })
	return rows
}
