package delivery

import (
	"gannet/engine/outbound"
	"gannet/engine/shaping"
)

// allGreylisted reports whether every recipient an attempt deferred was
// greylisted (shaping.Greylisting: "451 4.7.1 Greylisted, try again
// later"): then, on a first attempt, they are retried after [queue]
// greylist_retry (RetryPolicy.Greylist), when the receiver lets the
// retry through (RFC 6647), rather than after the retry schedule.
func allGreylisted(results []outbound.Result) bool {
	n := 0
	for i := range results {
		r := &results[i]
		if r.Status != outbound.Transient {
			continue
		}
		if r.Local || !shaping.Greylisting(r.Reply) {
			return false
		}
		n++
	}
	return n > 0
}
