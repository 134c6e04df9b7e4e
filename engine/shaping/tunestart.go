package shaping

import (
	"fmt"
	"time"
)

// How a site's tuning starts and how its windows end (tune.go).
//
// Slow start: a site with a configured ceiling (max_message_rate) and
// nothing learned starts at TuneStartShare (10%) of it, not at the
// ceiling, and climbs by TuneSlowStart (50%) a window while it accepts,
// until it first pushes back; then the steps of tune.go (10%, 2% near
// the rate the throttling began at). Like TCP's slow start (RFC 5681
// §3.1), this finds a site's limit in a few windows without sending a
// first window far past it: the overshoot is at most one step of 50%. A
// rate kept across a restart (RestoreTune) is no start: it climbs by the
// normal steps.
//
// Windows: a window ends after Tuning.Window once it holds
// Tuning.MinAttempts attempts; one that has fewer stretches until it has
// them, or until TuneStretch windows have passed, and then counts with
// what it has (if anything). So a tuned rate too low to fill a window
// (rate × window < min attempts) still climbs, if more slowly, rather
// than never learning again. A window in which the site pushes back hard
// (more than TuneEarlyShare of the attempts deferred, with MinAttempts,
// and not in a burst: tuneburst.go) ends early, after a fifth of
// Tuning.Window (at least a second: rate limits are mostly counted by the
// second), so that a rate far past the site's limit — the start, or a
// step of the slow start — is not kept up for a whole window.

// The slow start, and the stretch and early end of a window.
const (
	TuneStartShare = 0.1 // the share of max_message_rate a site starts at
	TuneSlowStart  = 0.5 // the climb per good window before the first pushback
	TuneStretch    = 4   // a window short of MinAttempts lasts at most this many windows
	TuneEarlyShare = 0.1 // a window with more of its attempts deferred ends early
)

// tuneStartRate returns the rate a path's site starts tuning at: a tenth
// of its ceiling (not under Tuning.MinRate); 0 without a ceiling (the
// site starts unlimited, and its first pushback sets the rate).
func tuneStartRate(p *path) float64 {
	ceil := p.base.MessageRate
	if ceil <= 0 {
		return 0
	}
	return min(ceil, max(p.tuning.MinRate, ceil*TuneStartShare))
}

// newSiteTune returns the tuning state of a site that has learned
// nothing yet: at its slow start rate.
func newSiteTune(p *path, now time.Time) *siteTune {
	t := &siteTune{TuneState: TuneState{Site: p.site.String()}}
	if r := tuneStartRate(p); r > 0 && r < p.base.MessageRate {
		t.Rate, t.slow, t.Changed = r, true, now
		t.Reason = fmt.Sprintf("slow start at %.0f%% of max_message_rate", TuneStartShare*100)
	}
	return t
}

// tuneWindowDone reports whether a window that began elapsed ago and
// holds attempts, deferred of them (burst: in a burst), is over.
func tuneWindowDone(tc Tuning, elapsed time.Duration, attempts, deferred int, burst bool) bool {
	if elapsed < tc.Window {
		return attempts >= tc.MinAttempts && float64(deferred) > TuneEarlyShare*float64(attempts) &&
			elapsed >= max(time.Second, tc.Window/5) && !burst
	}
	return attempts >= tc.MinAttempts || elapsed >= TuneStretch*tc.Window
}
