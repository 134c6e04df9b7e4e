package engine

import (
	"time"

	"gannet/engine/admin"
	"gannet/engine/delivery"
	"gannet/engine/metrics"
	"gannet/engine/shaping"
)

// Backoff mode (engine/shaping's backoffmode.go) as the engine wires it:
// the shaper decides when a site enters and leaves it; each change goes to
// the delivery loop (BackoffStart/BackoffEnd records, the state kept in
// the spool with the admin rules and shared with the cluster's), and is
// logged; gannet_site_backoff, the queue summary and
// /api/admin/backoff/v1 read the shaper.

// backoffChanged is shaping.Config.OnBackoff.
func (e *Engine) backoffChanged(ev shaping.BackoffEvent) {
	st := &ev.State
	switch {
	case ev.Update:
		e.log.Info("site in backoff mode longer", "site", st.Site, "until", st.Until)
	case ev.Start:
		e.log.Warn("site in backoff mode", "site", st.Site, "reason", st.Reason, "origin", st.Origin,
			"until", st.Until, "deliveries", st.Deliveries)
	default:
		e.log.Info("site back to normal from backoff mode", "site", st.Site, "reason", ev.EndReason)
	}
	if e.delivery != nil {
		e.delivery.BackoffChanged(ev)
	}
}

// backoffTick is how often backoffs are checked for their end time.
const backoffTick = time.Second

// startBackoffClock ends backoffs on time, traffic or not, until the
// spool closes.
func (e *Engine) startBackoffClock() {
	if e.shaper == nil {
		return
	}
	go func() {
		t := time.NewTicker(backoffTick)
		defer t.Stop()
		for {
			select {
			case <-e.spool.Done():
				return
			case <-t.C:
				e.shaper.Tick()
			}
		}
	}()
}

// siteBackoffGauge installs gannet_site_backoff: every site the loop has
// mail for (0 or 1), and every site in backoff.
func siteBackoffGauge(m *metrics.Metrics, loop *delivery.Loop, sh *shaping.Shaper) {
	m.SetSiteBackoffs(func() []metrics.SiteBackoff {
		on := map[string]bool{}
		for _, st := range sh.Backoffs() {
			on[st.Site] = true
		}
		seen := map[string]int{}
		var out []metrics.SiteBackoff
		for _, s := range loop.Sites() {
			if i, ok := seen[s.Site]; ok {
				out[i].Weight += s.Ready + s.InFlight
				continue
			}
			seen[s.Site] = len(out)
			out = append(out, metrics.SiteBackoff{Site: s.Site, Backoff: on[s.Site], Weight: s.Ready + s.InFlight})
		}
		for site := range on {
			if _, ok := seen[site]; !ok {
				out = append(out, metrics.SiteBackoff{Site: site, Backoff: true})
			}
		}
		return out
	})
}

// backoffEntries lists the sites in backoff for the admin API.
func (e *Engine) backoffEntries() []admin.BackoffEntry {
	if e.shaper == nil {
		return nil
	}
	var out []admin.BackoffEntry
	for _, st := range e.shaper.Backoffs() {
		out = append(out, admin.BackoffEntryOf(st))
	}
	return out
}

// endBackoff returns a site to normal (DELETE /api/admin/backoff/v1).
func (e *Engine) endBackoff(site string) bool {
	return e.shaper != nil && e.shaper.EndBackoff(site, "ended by an operator")
}
