package shaping

import (
	"fmt"
	"slices"
	"sort"
	"time"

	"gannet/engine/outbound"
)

// Self-tuning ([shaping] tune = true) searches, per site, for the highest
// message rate (here) and connection count (tuneconns.go) that keep the site's deferral rate under a target. It
// works in windows of Tuning.Window: at the end of each, it looks at the
// share of attempts the site deferred (as backoff mode counts them:
// recipients, not counting failures Gannet made itself) and at the rate
// of transactions the busiest egress source offered it in that window
// (the tuned rate applies to each source's path to the site).
//
//   - Above the target: the site pushed back at the rate offered. The
//     tuned rate steps back to TuneStepBack (85%) of that rate (or of the
//     tuned rate, if lower), or to TuneTook (90%) of the rate the site
//     accepted in the window when that is lower (far past the limit, the
//     site took about what it allows), not below Tuning.MinRate. The rate
//     at which the throttling began is remembered.
//   - At or under the target, with the tuned rate in use (the site was
//     offered at least TuneBusy of it): the tuned rate climbs by
//     TuneClimb (10%), or by TuneClimbNear (2%) once it is within 10% of
//     the rate that throttling last began at, so that the search dwells
//     just under the site's hidden limit rather than running past it.
//   - A window whose traffic stayed well under the tuned rate teaches
//     nothing. One with fewer than Tuning.MinAttempts attempts stretches
//     (tunestart.go).
//
// A site starts at a tenth of the ceiling and climbs faster until its
// first pushback (slow start, tunestart.go). Greylisting is not pushback
// (greylist.go); a burst of deferrals steps back 15% only (tuneburst.go).
//
// The tuned rate never passes the configured max_message_rate (the
// ceiling; with none, the climb has no end but the site's pushback).
// While tuning, the tuned rate replaces the adaptive AIMD cut of the
// message rate and connections (the search is a slower AIMD of its own);
// while the site is in backoff mode, the tuning waits. Each change is
// told to Config.OnTune, after the Shaper's lock is released, so that it
// can be kept across restarts (RestoreTune puts it back).

// Tuning is the self-tuning configuration of a destination.
type Tuning struct {
	Enabled        bool
	TargetDeferral float64       // the deferral share to stay under (0.02)
	Window         time.Duration // one step per window (30s)
	MinAttempts    int           // attempts a window must hold to count (20)
	MinRate        float64       // the floor, per second (1)
}

// The steps of the search.
const (
	TuneClimb     = 0.10 // the climb per good window
	TuneClimbNear = 0.02 // the climb near the rate throttling last began at
	TuneStepBack  = 0.85 // the share of the throttled rate a bad window steps back to
	TuneBusy      = 0.8  // the share of the tuned rate a window must use to climb
	TuneTook      = 0.9  // the share of the rate the site took a bad window steps back to, when lower
)

// TuneState is what a site's tuning has learned.
type TuneState struct {
	Site string
	// Rate is the tuned message rate per second of each path to the site
	// (0: nothing learned yet, the configured limits).
	Rate float64
	// Throttled is the rate at which the site last pushed back (0: never).
	Throttled float64
	// Reason says why Rate last moved ("deferrals 6.3% over 30s at
	// 21.4/s: down to 85%").
	Reason string
	// Conns is the tuned connection limit of each path to the site (0:
	// nothing learned yet, the starting count; tuneconns.go).
	Conns int
	// ConnsThrottled is the connection count at which the site last
	// refused connections or slowed down (0: never, or since passed).
	ConnsThrottled int
	// ConnsReason says why Conns last moved ("refused 4 of 31
	// connections at 5: down to 4").
	ConnsReason string
	// Changed is when Rate or Conns last moved.
	Changed time.Time
}

// siteTune is the tuning state of one site.
type siteTune struct {
	TuneState
	winStart           time.Time
	attempts, deferred int
	sources            []string // the egress sources seen in the window
	counts             []int    // and their transactions
	connWindow                  // connection-count tuning (tuneconns.go)

	burst tuneBurst // the window's runs of deferrals (tuneburst.go)
	slow  bool      // slow start: climbing TuneSlowStart a window until the first pushback (tunestart.go)
}

// tuningOf returns the tuning configuration of a path.
func (s *Shaper) tuningOf(p *path) Tuning {
	if s.cfg.Tune == nil {
		return Tuning{}
	}
	t := s.cfg.Tune(p.domain, p.hosts)
	t.TargetDeferral = cmpOr(t.TargetDeferral, 0.02)
	t.Window = cmpOr(t.Window, 30*time.Second)
	t.MinAttempts = cmpOr(t.MinAttempts, 20)
	t.MinRate = cmpOr(t.MinRate, 1.0)
	return t
}

// tunedRate returns the tuned rate of a path; 0 when it does not tune or
// has learned nothing. Under s.mu.
func tunedRate(p *path) float64 {
	if !p.tuning.Enabled || p.sm == nil {
		return 0
	}
	if p.sm.tune == nil {
		return tuneStartRate(p) // nothing seen yet: the slow start's (tunestart.go)
	}
	return p.sm.tune.Rate
}

// observeTune takes one transaction into the tuning of the path's site;
// under s.mu.
func (s *Shaper) observeTune(p *path, out *outbound.Outcome, now time.Time) {
	tc := p.tuning
	if !tc.Enabled {
		return
	}
	sm := s.siteModeOf(p)
	t := sm.tune
	if t == nil {
		t = newSiteTune(p, now)
		sm.tune = t
	}
	if t.winStart.IsZero() || sm.on {
		// The first transaction starts a window; backoff mode decides
		// the rate meanwhile.
		t.resetWindow(now)
		if sm.on {
			return
		}
	}
	if i := slices.Index(t.sources, p.source); i >= 0 {
		t.counts[i]++
	} else {
		t.sources, t.counts = append(t.sources, p.source), append(t.counts, 1)
	}
	for i := range out.Results {
		r := &out.Results[i]
		switch {
		case r.Local:
		case r.Status == outbound.Transient && Greylisting(r.Reply):
			// Not pushback (greylist.go): no attempt of the site's rate.
		case r.Status == outbound.Transient:
			t.attempts++
			t.deferred++
			t.burst.deferral()
		default:
			t.attempts++
			t.burst.acceptance()
		}
	}
	t.observeConns(out)
	elapsed := now.Sub(t.winStart)
	if !tuneWindowDone(tc, elapsed, t.attempts, t.deferred, t.burst.isBurst(t.deferred)) {
		return
	}
	rateMoved := s.stepRate(p, t, elapsed)
	connsMoved := t.stepConns(tc, p.base.Connections, elapsed)
	t.resetWindow(now)
	if rateMoved || connsMoved {
		t.Changed = now
		s.tunes = append(s.tunes, t.TuneState)
	}
}

// resetWindow starts a new window at now.
func (t *siteTune) resetWindow(now time.Time) {
	t.winStart, t.attempts, t.deferred, t.sources, t.counts = now, 0, 0, t.sources[:0], t.counts[:0]
	t.txns, t.refused, t.maxOpen, t.took = 0, 0, 0, t.took[:0]
	t.burst = tuneBurst{}
}

// stepRate is the message rate's step at the end of a window of elapsed;
// it reports whether the tuned rate moved.
func (s *Shaper) stepRate(p *path, t *siteTune, elapsed time.Duration) bool {
	tc := p.tuning
	if t.attempts == 0 || len(t.counts) == 0 {
		return false // stretched to its end with nothing to learn from (tuneWindowDone)
	}
	// The tuned rate is each egress source's: the rate offered is the
	// busiest source's, the one the tuned rate held back.
	offered := float64(slices.Max(t.counts)) / elapsed.Seconds()
	burst := t.burst.isBurst(t.deferred)
	ceil := p.base.MessageRate
	cur := t.Rate
	if cur <= 0 {
		cur = ceil
	}
	share := float64(t.deferred) / float64(t.attempts)
	var next float64
	var how string
	switch {
	case share > tc.TargetDeferral && burst:
		// Pushback all the same: the slow start ends (a site throttling
		// past a hidden rate answers in runs too).
		t.slow = false
		next, how = max(tc.MinRate, cmpOr(cur, offered)*TuneStepBack), fmt.Sprintf("a burst: down to %.0f%%", TuneStepBack*100)
	case share > tc.TargetDeferral:
		from := offered
		if cur > 0 && cur < from {
			from = cur
		}
		t.Throttled, t.slow = from, false
		next, how = from*TuneStepBack, fmt.Sprintf("down to %.0f%%", TuneStepBack*100)
		if took := offered * (1 - share) * TuneTook; took < next {
			next, how = took, fmt.Sprintf("down to %.0f%% of the %.1f/s it took", TuneTook*100, offered*(1-share))
		}
		next = max(tc.MinRate, next)
	case cur <= 0 || offered < TuneBusy*cur:
		return false // unlimited and accepted, or not enough traffic to tell
	default:
		step := TuneClimb
		if t.Throttled > 0 && cur*(1+TuneClimb) > 0.9*t.Throttled && cur < t.Throttled {
			step = TuneClimbNear
		}
		if t.Throttled > 0 && cur >= t.Throttled {
			t.Throttled = 0 // the site takes more than it did: search on
		}
		if t.slow {
			step = TuneSlowStart
		}
		next = cur * (1 + step)
		how = fmt.Sprintf("up %.0f%%", step*100)
	}
	if ceil > 0 && next >= ceil {
		next, how = ceil, "at the configured max_message_rate"
	}
	if next == t.Rate {
		return false
	}
	t.Rate = next
	t.Reason = fmt.Sprintf("deferrals %.1f%% over %s at %.1f/s: %s", share*100, shortDuration(elapsed), offered, how)
	return true
}

// Tunes returns what each tuning site has learned, by site; a site that
// has not moved its connection count yet shows the count it starts from.
func (s *Shaper) Tunes() []TuneState { return s.tunesOf(true) }

// Learned returns what each tuning site has learned, by site, as it was
// learned (no connection count for a site that has not moved it): the
// state a cluster shares.
func (s *Shaper) Learned() []TuneState { return s.tunesOf(false) }

// tunesOf returns what each tuning site has learned; with starts, a
// connection count not learned yet is the one the site starts from.
func (s *Shaper) tunesOf(starts bool) []TuneState {
	s.mu.Lock()
	defer s.unlock()
	// A site some path uses without tuning (tune turned off since) is
	// left out; one no path uses yet (restored) is listed.
	off, conns := map[*siteMode]bool{}, map[*siteMode]int{}
	for _, p := range s.paths {
		if p.sm != nil && !p.tuning.Enabled {
			off[p.sm] = true
		} else if p.sm != nil {
			conns[p.sm] = max(conns[p.sm], tunedConns(p))
		}
	}
	var out []TuneState
	for _, sm := range s.sites {
		if sm.tune.learned() && !off[sm] {
			st := sm.tune.TuneState
			if st.Conns <= 0 && starts {
				st.Conns = conns[sm]
			}
			out = append(out, st)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Site < out[j].Site })
	return out
}

// learned reports whether the site's tuning has learned a rate or a
// connection count (nil: it does not tune).
func (t *siteTune) learned() bool {
	return t != nil && (t.Rate > 0 || t.Conns > 0)
}

// RestoreTune puts back what a site's tuning learned before a restart, or
// on another node of a cluster (nothing is told to OnTune). A later
// configuration that lowers the ceiling still holds: the configured rate
// caps the tuned one. It reports false when st holds neither a rate nor a
// connection count, or is what is in force already.
func (s *Shaper) RestoreTune(st TuneState) bool {
	if st.Site == "" || (st.Rate <= 0 && st.Conns <= 0) {
		return false
	}
	s.mu.Lock()
	defer s.unlock()
	sm := s.sites[st.Site]
	if sm != nil && sm.tune != nil && sm.tune.Rate == st.Rate && sm.tune.Conns == st.Conns && sm.tune.Throttled == st.Throttled && sm.tune.Changed.Equal(st.Changed) {
		return false
	}
	if sm == nil {
		sm = &siteMode{}
		s.sites[st.Site] = sm
	}
	sm.tune = &siteTune{TuneState: st}
	return true
}
