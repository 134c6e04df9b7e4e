package delivery

import (
	"time"

	"gannet/engine/outbound"
)

// WarmupGate is the IP warm-up of the egress sources: each message a
// warming source sends counts against its daily allowance to the
// destination's provider.
type WarmupGate interface {
	// Take counts one message of tenant on path p. It reports false when
	// p's source has used up its allowance for p's destination today; then
	// alt is a source of the same pool that may still send there (zero
	// Name: none), and until is when the allowance comes back.
	Take(tenant string, p outbound.Path) (alt outbound.Source, until time.Time, ok bool)
}

// warmupHold applies the warm-up allowance of the item's egress source
// and reports whether the item was moved: to another source of its pool
// (overflow), or, with none left, back to the scheduled queue until the
// allowance comes back the next day (no attempt counted, nothing bounced).
// It runs after every other hold (rules, tenant rate, the cluster's shared
// rate), so that only a transaction about to start counts; an item moved
// has spent its tenant's slot (not booked again) and a shared token of the
// warming path.
func (l *Loop) warmupHold(it *workItem, now time.Time) bool {
	g := l.opts.Warmup
	if g == nil || it.source.Name == "" {
		return false
	}
	alt, until, ok := g.Take(it.ms.env.tenant, it.path())
	if ok {
		return false
	}
	if alt.Name != "" {
		it.source = alt
		it.qkey = it.path().Key()
		if l.opts.TenantRate != nil {
			it.slot = now // its tenant's slot is spent: not booked again
		}
		l.requeue(it, now, now) // to the ready queue of the other source
		return true
	}
	l.log.Debug("delivery: egress source past its warm-up allowance for today; the message waits", "egress_source", it.source.Name, "site", it.site().String(), "until", until)
	l.requeue(it, until, now)
	return true
}
