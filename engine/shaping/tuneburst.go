package shaping

// A deferral burst: a site that refuses every attempt for a few seconds
// (a "421 4.7.0" to everyone while it is busy), then takes mail again at
// the rate it took before. Its window looks like a rate limit far past
// the site's limit (60% deferred), and stepping back to what the site
// took in it (tune.go) would leave the tuned rate at a third of what the
// site takes, climbing back 10% a window. A window is a burst when most
// of its deferrals (TuneBurstShare) came in one run, with no attempt
// accepted in between — a rate limit spreads them over short runs between
// acceptances as its budget refills (each second, for the usual
// one-second buckets). A burst steps the tuned rate back to TuneStepBack
// (85%) of itself only, and leaves the rate throttling began at as it
// was, so that the next good windows climb back at once. (A limit that
// refuses everything to the end of a window looks like a burst too: it is
// then found in steps of 15%, not at once.)

// TuneBurstShare is the share of a window's deferrals one run must hold
// for the window to be a burst.
const TuneBurstShare = 0.8

// tuneBurst follows the runs of deferrals of a window.
type tuneBurst struct {
	run, longest int  // deferrals since the last acceptance, and the most of them
	accepted     bool // an attempt was accepted since the last deferral
}

// deferral counts a deferred attempt.
func (b *tuneBurst) deferral() {
	if b.accepted {
		b.run, b.accepted = 0, false
	}
	b.run++
	b.longest = max(b.longest, b.run)
}

// acceptance counts an attempt the site answered with other than a
// deferral.
func (b *tuneBurst) acceptance() { b.accepted = true }

// isBurst reports whether a window with deferred deferrals was a burst.
func (b *tuneBurst) isBurst(deferred int) bool {
	return deferred > 0 && float64(b.longest) >= TuneBurstShare*float64(deferred)
}
