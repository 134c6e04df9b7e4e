package delivery

import (
	"sort"
	"time"

	"gannet/engine/outbound"
)

// SiteStatus is the state of one path (egress source, MX site) of the
// delivery loop: for gannet_site_effective_rate and the admin API.
type SiteStatus struct {
	Site          string
	Source        string  // egress source name; "" for the default source
	Connections   int     // effective connection limit (after back-off)
	EffectiveRate float64 // messages per second allowed now; 0 = unlimited
	Ready         int     // items waiting for a worker
	InFlight      int     // items taken by a worker
	Suspended     bool    // a suspension (rule or admin) is in force
}

// siteIdleForget is how long an empty path is still listed by Sites.
const siteIdleForget = 10 * time.Minute

// Sites returns the state of every path with queued or recent mail,
// sorted by site and source.
func (l *Loop) Sites() []SiteStatus {
	type snap struct {
		path            outbound.Path
		ready, inFlight int
	}
	l.mu.Lock()
	l.sweepSitesLocked()
	snaps := make([]snap, 0, len(l.sites))
	for _, q := range l.sites {
		snaps = append(snaps, snap{q.path, q.len(), q.inFlight})
	}
	l.mu.Unlock()
	now := l.clock.Now()
	out := make([]SiteStatus, 0, len(snaps))
	for _, s := range snaps {
		lim := l.limits(s.path)
		st := SiteStatus{Site: s.path.Site.String(), Source: s.path.Source, Connections: max(1, lim.Connections),
			EffectiveRate: lim.MessageRate, Ready: s.ready, InFlight: s.inFlight}
		if l.opts.Shaper != nil {
			g := l.opts.Shaper.Gate(s.path)
			st.Suspended = g.Until.After(now)
		}
		out = append(out, st)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Site != out[j].Site {
			return out[i].Site < out[j].Site
		}
		return out[i].Source < out[j].Source
	})
	return out
}

// sweepSitesLocked forgets paths empty for siteIdleForget; at most once a
// second. Called with l.mu held.
func (l *Loop) sweepSitesLocked() {
	now := l.clock.Now()
	if now.Sub(l.lastSweep) < time.Second {
		return
	}
	l.lastSweep = now
	for k, q := range l.sites {
		if q.workers == 0 && q.len() == 0 && q.inFlight == 0 && !q.idleSince.IsZero() && now.Sub(q.idleSince) > siteIdleForget {
			delete(l.sites, k)
		}
	}
}
