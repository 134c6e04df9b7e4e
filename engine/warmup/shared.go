package warmup

import (
	"time"
)

// Warm-up shared by a cluster (Tracker.Share): the nodes send from the
// same warming sources, so the allowance of a day is the fleet's. The
// cluster keeps each source's count of the day per provider, and its start
// date (the earliest any node offered; a configured warmup_start is the
// node's own and is not taken from the cluster). A node takes a batch of
// its allowance at a time — a twentieth of it, the granularity at which
// the spool keeps the counts — by adding the batch to the cluster's count:
// it may spend what of the batch the count leaves under the allowance, so
// the fleet never sends more than the allowance, and at most a batch per
// node goes unspent at the day's end. With the cluster unreachable, a node
// counts on its own against its share of the allowance (1/N, N the live
// nodes last counted) and asks the cluster again a second later.

// Shared is the warm-up state a cluster keeps (engine/cluster's Warmup).
type Shared interface {
	// Add adds n to the count of source's messages to provider on day
	// (midnight UTC), offering start as the source's day 1 (zero: none
	// offered); it returns the cluster's count after the addition and
	// the cluster's start (zero: none).
	Add(source, provider string, day, start time.Time, n int) (count int, clusterStart time.Time, err error)
	// Live is the number of live nodes (at least 1).
	Live() int
}

// sharedRetry is how long a node counts on its own after the cluster did
// not answer.
const sharedRetry = time.Second

// Share makes the allowances the cluster's (see above); call it before
// the tracker is used.
func (t *Tracker) Share(sh Shared) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.shared = sh
}

// takeShared counts one message of s to provider against the cluster's
// allowance allow on today; under t.mu. It reports whether it may go, and
// false for handled when the cluster could not be asked (the caller then
// counts on its own share).
func (t *Tracker) takeShared(s *source, provider string, today time.Time, allow int) (ok, handled bool) {
	if s.leased[provider] > 0 {
		s.leased[provider]--
		return true, true
	}
	now := t.now()
	if now.Before(s.localUntil) {
		return false, false
	}
	batch := max(1, allow/20)
	var offer time.Time
	if s.cfg.Start.IsZero() {
		offer = s.start
	}
	count, start, err := t.shared.Add(s.cfg.Name, providerName(provider), today, offer, batch)
	if err != nil {
		s.localUntil = now.Add(sharedRetry)
		return false, false
	}
	s.fleet[provider] = count
	if s.cfg.Start.IsZero() && !start.IsZero() && !midnight(start).Equal(s.start) {
		s.start = midnight(start) // the cluster's day 1
		t.storeStart(s)
		if allow = s.allowance(today, provider); allow < 0 {
			return true, true
		}
	}
	granted := min(batch, allow-(count-batch))
	if granted <= 0 {
		return false, true
	}
	s.leased[provider] = granted - 1
	return true, true
}

// localShare is what a node may send of allow on its own while the
// cluster cannot be asked.
func (t *Tracker) localShare(allow int) int {
	if t.shared == nil {
		return allow
	}
	n := max(1, t.shared.Live())
	return (allow + n - 1) / n
}

// providerName is the name of provider in the cluster's counts.
func providerName(p string) string {
	if p == "" {
		return "default"
	}
	return p
}
