package engine

import (
	"gannet/engine/admin"
	"gannet/engine/metrics"
	"gannet/engine/shaping"
)

// Self-tuning (engine/shaping's tune.go and tuneconns.go) as the engine
// wires it: each change of a site's tuned rate or connection count is
// logged and kept by the delivery loop
// (with the admin rules, so that a restart starts from it);
// gannet_site_tuned_rate and gannet_site_tuned_connections, the queue
// summary's "tuned" and its site rows
// read the shaper.

// tuneChanged is shaping.Config.OnTune.
func (e *Engine) tuneChanged(st shaping.TuneState) {
	e.log.Info("site's tuned limits moved", "site", st.Site, "rate", st.Rate, "reason", st.Reason,
		"connections", st.Conns, "connections_reason", st.ConnsReason)
	if e.delivery != nil {
		e.delivery.TuneChanged(st)
	}
}

// tuneEntries lists what the sites' tuning learned, for the admin API.
func (e *Engine) tuneEntries() []admin.TuneEntry {
	if e.shaper == nil {
		return nil
	}
	var out []admin.TuneEntry
	for _, st := range e.shaper.Tunes() {
		out = append(out, admin.TuneEntry{Site: st.Site, Rate: st.Rate, Throttled: st.Throttled,
			Reason: st.Reason, Changed: st.Changed, Connections: st.Conns,
			ConnectionsRefusedAt: st.ConnsThrottled, ConnectionsReason: st.ConnsReason})
	}
	return out
}

// siteTunedGauge installs gannet_site_tuned_rate and
// gannet_site_tuned_connections.
func siteTunedGauge(m *metrics.Metrics, sh *shaping.Shaper) {
	m.SetSiteTuned(func() []metrics.SiteTuned {
		var out []metrics.SiteTuned
		for _, st := range sh.Tunes() {
			out = append(out, metrics.SiteTuned{Site: st.Site, Rate: st.Rate, Conns: st.Conns})
		}
		return out
	})
}
