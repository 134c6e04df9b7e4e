package shaping

import (
	"fmt"
	"regexp"
	"slices"
	"time"

	"gannet/engine/outbound"
)

// Connection-count tuning is the other half of self-tuning (tune.go): per
// site, the connection limit of each path is searched for between 1 and
// the configured connection_limit (the ceiling, never passed), in the same
// windows as the message rate.
//
//   - It starts low: TuneConnStart (2) connections, or a quarter of the
//     ceiling when that is more.
//   - A window in which the site refused more than Tuning.TargetDeferral
//     of the sessions asked of it — a 421 greeting (RFC 5321 §3.8: the
//     server is closing), a 4xx session reply saying "too many
//     connections", or a refused TCP connection — undoes the climb that
//     led to it; without one (the site lowered its limit, or the search
//     started above it) it steps the count back by a quarter (at least
//     one), and to the connections the pool held while the site took them
//     when that is fewer. The count it refused at is remembered.
//   - A window right after a climb whose median transaction time (first
//     command to last reply, Outcome.Elapsed) rose more than
//     TuneConnLatencyRise (and at least TuneConnLatencyFloor) over the
//     window before undoes the climb: the extra connection made the site
//     slower, not faster.
//   - Otherwise, when the limit held the traffic back (the pool held as
//     many connections as it allows), the count climbs by one. Just under
//     the count the site last refused at, it stays there, and tries that
//     count again once every TuneConnProbeAfter such windows, so a site
//     that raised its limit is found again without a steady stream of
//     refusals.
//
// A window with fewer than Tuning.MinAttempts sessions teaches nothing.
// The learned count is kept and restored with the learned rate.

// The steps of the connection-count search.
const (
	TuneConnStart       = 2   // the least starting count
	TuneConnLatencyRise = 0.5 // the rise of the median transaction time that undoes a climb ...
	// TuneConnLatencyFloor is the least rise that counts: a site that
	// answers in a millisecond varies by more than half of it.
	TuneConnLatencyFloor = 20 * time.Millisecond
	TuneConnProbeAfter   = 10  // windows just under the refused count before it is tried again
	tuneConnSamples      = 512 // transaction times kept per window for the median
)

// tooManyConns matches the wording of a reply refusing one more
// connection (bench/smtpsink's -max-conns: "421 4.7.0 Too many
// connections, try again later"; Postfix's "too many connections from").
var tooManyConns = regexp.MustCompile(`(?i)too many (concurrent |simultaneous )?(connections|sessions)`)

// connWindow is what one window holds for connection-count tuning, and
// what the search carries from one window to the next.
type connWindow struct {
	txns    int // transactions (and sessions refused) in the window
	refused int // sessions the site refused
	maxOpen int // the most connections the pool held
	took    []time.Duration

	climbed  bool          // the last window climbed
	baseTook time.Duration // the median transaction time before that climb
	atEdge   int           // windows spent just under ConnsThrottled
}

// connPushback reports whether an outcome is the site refusing a session:
// a refused connection, a 421 greeting or a session reply about too many
// connections.
func connPushback(out *outbound.Outcome) bool {
	if out.ConnRefused {
		return true
	}
	r := out.SessionReply
	return r.Code == 421 || (r.Code/100 == 4 && tooManyConns.MatchString(r.String()))
}

// observeConns takes one transaction into the window.
func (w *connWindow) observeConns(out *outbound.Outcome) {
	w.txns++
	if connPushback(out) {
		w.refused++
		return
	}
	w.maxOpen = max(w.maxOpen, out.PoolOpen)
	if out.Elapsed > 0 && len(w.took) < tuneConnSamples {
		w.took = append(w.took, out.Elapsed)
	}
}

// median returns the median transaction time of the window (0: none);
// it sorts w.took.
func (w *connWindow) median() time.Duration {
	if len(w.took) == 0 {
		return 0
	}
	slices.Sort(w.took)
	return w.took[len(w.took)/2]
}

// connStart is the count a site's search starts from under ceiling.
func connStart(ceiling int) int {
	return min(ceiling, max(TuneConnStart, (ceiling+3)/4))
}

// tunedConns returns the tuned connection limit of a path: 0 when it does
// not tune (or has no configured limit), else the learned count or the
// starting one, never above the configured limit. Under s.mu.
func tunedConns(p *path) int {
	ceiling := p.base.Connections
	if !p.tuning.Enabled || ceiling <= 0 {
		return 0
	}
	n := 0
	if p.sm != nil && p.sm.tune != nil {
		n = p.sm.tune.Conns
	}
	if n <= 0 {
		n = connStart(ceiling)
	}
	return min(n, ceiling)
}

// stepConns is the connection count's step at the end of a window of
// elapsed under a configured limit of ceiling; it reports whether the
// tuned count moved.
func (t *siteTune) stepConns(tc Tuning, ceiling int, elapsed time.Duration) bool {
	if ceiling <= 0 {
		return false
	}
	cur := t.Conns
	if cur <= 0 {
		cur = connStart(ceiling)
	}
	cur = min(cur, ceiling)
	climbed := t.climbed
	t.climbed = false
	if t.txns < tc.MinAttempts {
		return false
	}
	med := t.median()
	if t.refused == 0 && t.ConnsThrottled > 0 && cur >= t.ConnsThrottled {
		t.ConnsThrottled = 0 // the site takes more than it did: search on
	}
	var next int
	var why string
	switch {
	case float64(t.refused) > tc.TargetDeferral*float64(t.txns):
		t.ConnsThrottled = cur
		next = max(1, min(cur-1, (3*cur+3)/4))
		if climbed {
			next = max(1, cur-1) // the climb found the limit: undo it
		} else if t.maxOpen > 0 && t.maxOpen < next {
			next = t.maxOpen
		}
		why = fmt.Sprintf("refused %d of %d sessions at %d connections: down to %d", t.refused, t.txns, cur, next)
	case climbed && t.baseTook > 0 && med > time.Duration(float64(t.baseTook)*(1+TuneConnLatencyRise)) &&
		med-t.baseTook >= TuneConnLatencyFloor:
		t.ConnsThrottled = cur
		next = max(1, cur-1)
		why = fmt.Sprintf("transaction time %s, up %.0f%% from %s, at %d connections: back to %d",
			shortMillis(med), (float64(med)/float64(t.baseTook)-1)*100, shortMillis(t.baseTook), cur, next)
	case t.maxOpen < cur || cur >= ceiling:
		return false // the limit held nothing back, or it is the ceiling
	case t.ConnsThrottled > 0 && cur+1 >= t.ConnsThrottled:
		// Just under the count the site refused: stay, and now and then
		// try it again.
		if t.atEdge++; t.atEdge < TuneConnProbeAfter {
			return false
		}
		next = cur + 1
		why = fmt.Sprintf("%d quiet windows at %d connections: trying %d again", t.atEdge, cur, next)
		t.climbed, t.baseTook = true, med
	default:
		next = cur + 1
		why = fmt.Sprintf("no refusals over %s at %d connections (transactions %s): up to %d",
			shortDuration(elapsed), cur, shortMillis(med), next)
		t.climbed, t.baseTook = true, med
	}
	t.atEdge = 0
	next = min(next, ceiling)
	if next == cur && t.Conns == cur {
		return false
	}
	t.Conns, t.ConnsReason = next, why
	return true
}

// shortMillis writes a transaction time to the millisecond ("112ms"),
// or to 10µs under one ("350µs").
func shortMillis(d time.Duration) string {
	if d < time.Millisecond {
		return d.Round(10 * time.Microsecond).String()
	}
	return d.Round(time.Millisecond).String()
}
