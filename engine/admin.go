package engine

import (
	"net/http"
	"time"

	"gannet/engine/admin"
	"gannet/engine/delivery"
)

// adminHandler returns the admin API (engine/admin) over this engine's
// delivery loop and spool, mounted by every HTTP listener that serves
// "admin": queue summary, message inspection, bounces and suspensions.
func (e *Engine) adminHandler() http.Handler {
	opts := admin.Options{
		Loop:         e.delivery,
		Xfer:         e.delivery,
		Spool:        e.spool,
		Quarantine:   e.spool,
		Dead:         e.spool,
		TenantRate:   e.tenantRate,
		Automatic:    e.shapingSuspensions,
		Backoffs:     e.backoffEntries, // backoff.go
		EndBackoff:   e.endBackoff,
		Tunes:        e.tuneEntries,   // tune.go
		Warmup:       e.warmupEntries, // warmup.go
		TLSReportsOn: func() bool { return e.conf().TLS.TLSRPT },
		Trace:        e.trace,
		LogLevel:     e.LogLevel,
		SetLogLevel:  e.SetLogLevel,
		Reload:       e.Reload,
		Draining:     e.Draining,
		SetDraining:  e.SetDraining,
		Now:          e.now,
		Logger:       e.log.With("part", "admin"),
	}
	if e.tlsrpt != nil {
		opts.TLSReports = tlsReportsAdmin{e} // tlsrpt.go
	}
	if e.cluster != nil {
		opts.Cluster = e.cluster
	}
	opts.Suppression = e.suppress
	opts.Erase = e.Erase // erase.go
	if e.events != nil {
		opts.Events = e.events
	}
	opts.OwnSMTP = func() []string {
		var out []string
		for _, a := range e.SMTPAddrs() {
			out = append(out, a.String())
		}
		return out
	}
	return admin.New(opts)
}

// shapingSuspensions lists the paths a shaping rule suspended by itself
// ([[shaping.rule]] action "suspend"), as suspension entries of origin
// "rule": one per (egress source, site), expiring when the rule's
// suspension ends.
func (e *Engine) shapingSuspensions() []admin.RuleEntry {
	if e.shaper == nil {
		return nil
	}
	now := e.now()
	var out []admin.RuleEntry
	for _, st := range e.shaper.Status() {
		if st.Suspended.IsZero() {
			continue
		}
		exp := st.Suspended
		id := "rule:" + st.Site
		if st.Source != "" {
			id = "rule:" + st.Source + "/" + st.Site
		}
		out = append(out, admin.RuleEntry{ID: id, Origin: delivery.OriginRule, Site: st.Site, Source: st.Source,
			Reason: "suspended by a shaping rule", Duration: max(0, exp.Sub(now)).Round(time.Second).String(),
			Expires: &exp})
	}
	return out
}
