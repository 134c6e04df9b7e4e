package delivery

import (
	"context"
	"sync"
	"time"

	"gannet/mailaddr"
	"gannet/queue"
	"gannet/resolver"
)

// "Retry now": an operator whose destination is back makes the mail
// waiting for its retry due at once, instead of waiting out the retry
// interval. Only deferred mail is concerned — a destination domain of a
// message with a retry time still to come; the retry counters (attempts per
// message and recipient) are kept, so the next failure waits as long as it
// would have, and max_retry_age counts from the message's creation as
// before. Mail held by a suspension stays held (its retry time has passed:
// it came due and met the suspension); a bounce in force bounces what it
// makes due.
//
// The scheduler cannot move an entry, so a retry schedules new ones due
// now and leaves the old ones to be ignored when they come due:
//
//   - a message waiting whole (packed, the scheduler holding the message):
//     it is unpacked and split into its work items at once — the matching
//     domains due now, the others at the message's next due time as
//     before — and msgState.whole is cleared, so the old reference is
//     stale (dueMessage ignores it);
//   - a work item waiting for its retry: a new item takes its place, due
//     now, and the domain's retry time is forgotten (msgState.due), so the
//     old item, whose retryAt no longer matches, is stale (dueItem ignores
//     it).
//
// Until they come due, stale entries still count in
// gannet_queue_depth{queue="scheduled"}. The new due time is not written
// to the spool: the attempt follows within seconds and its outcome is, and
// a restart before it only restores the old retry time.

// RetryResult counts what a retry made due now.
type RetryResult struct {
	Messages   int // messages with at least one destination made due
	Recipients int // their pending recipients made due
}

// RetryNow makes the deferred mail that sel matches due now (see above). A
// selector naming a Site finds the site of each domain through the Router
// (cached), so ctx bounds those lookups.
func (l *Loop) RetryNow(ctx context.Context, sel Selector) RetryResult {
	sel = sel.Normalize()
	var smu sync.Mutex
	sites := map[string]resolver.SiteKey{}
	siteOf := func(domain string) string {
		if sel.Site == "" {
			return ""
		}
		smu.Lock()
		defer smu.Unlock()
		s, ok := sites[domain]
		if !ok {
			s = l.siteOf(ctx, domain)
			sites[domain] = s
		}
		return s.String()
	}
	l.waitLoaded()
	var res RetryResult
	for _, ms := range l.snapshotMsgs() {
		env := ms.env
		if (sel.Tenant != "" && sel.Tenant != env.tenant) || (sel.Campaign != "" && sel.Campaign != env.campaign) {
			continue
		}
		n := l.retryMessage(ms, func(domain string) bool {
			return (sel.Domain == "" || sel.Domain == domain) && sel.match(domain, env.tenant, env.campaign, siteOf(domain))
		})
		if n > 0 {
			res.Messages++
			res.Recipients += n
		}
	}
	return res
}

// RetryNowIDs makes the deferred mail of the messages ids due now, every
// destination of each. With tenant set, only that tenant's messages count
// as known. It returns the ids not queued (delivered, bounced, unknown, or
// another tenant's); a message that is queued but has nothing deferred
// counts as known and adds nothing to the result.
func (l *Loop) RetryNowIDs(ids []string, tenant string) (res RetryResult, missing []string) {
	l.waitLoaded()
	for _, id := range ids {
		l.mu.Lock()
		ms := l.msgs.get(id)
		l.mu.Unlock()
		if ms == nil || tenant != "" && ms.env.tenant != tenant {
			missing = append(missing, id)
			continue
		}
		if n := l.retryMessage(ms, func(string) bool { return true }); n > 0 {
			res.Messages++
			res.Recipients += n
		}
	}
	return res, missing
}

// Known reports which of ids the loop holds (queued, of tenant when tenant
// is set); the admin API checks a request's ids with it before acting.
func (l *Loop) Known(ids []string, tenant string) (missing []string) {
	l.waitLoaded()
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, id := range ids {
		ms := l.msgs.get(id)
		if ms == nil || tenant != "" && ms.env.tenant != tenant {
			missing = append(missing, id)
		}
	}
	return missing
}

// retryMessage makes the deferred destinations of ms that match due now
// and returns the number of pending recipients made due. The time is read
// under the message's lock: an entry that came due before is being handled
// by the scheduler (or was, and is no longer deferred), and one not yet due
// is found stale when it comes out (staleRetry, dueMessage check under the
// same lock), so an item is never run twice.
func (l *Loop) retryMessage(ms *msgState, match func(domain string) bool) int {
	type sched struct {
		it *workItem
		at time.Time
	}
	var out []sched
	n := 0
	ms.mu.Lock()
	now := l.clock.Now()
	switch {
	case ms.corrupt:
	case ms.whole && ms.m == nil:
		// Waiting whole: split it if a matching domain is deferred.
		next := l.packedDue(ms)
		if !next.After(now) {
			break // due anyway
		}
		var scratch queue.Message
		m := ms.view(l.packer, &scratch)
		any := false
		for i := range m.Recipients {
			if m.Recipients[i].State == queue.Pending && match(mailaddr.Domain(m.Recipients[i].Addr)) {
				any = true
				break
			}
		}
		if !any {
			break
		}
		m = ms.msg(l.packer)
		groups := groupByDomain(m)
		l.unsplit.Add(-int64(max(ms.items-1, 0)))
		ms.items = len(groups)
		ms.whole = false
		for _, it := range groups {
			it.ms, it.high = ms, ms.high
			if match(it.domain) {
				n += len(it.rcpts)
				ms.due.remove(it.domain)
				out = append(out, sched{it: it})
				continue
			}
			it.retryAt = next
			ms.due.set(it.domain, next)
			out = append(out, sched{it: it, at: next})
		}
		m.NextDue = ms.due.earliest()
	case ms.m != nil:
		// Being worked on: replace the items waiting for their retry.
		m := ms.m
		var domains []string
		for _, e := range ms.due {
			if e.at.After(now) && match(e.domain) {
				domains = append(domains, e.domain)
			}
		}
		for _, d := range domains {
			it := &workItem{ms: ms, domain: d, high: ms.high}
			for i := range m.Recipients {
				if m.Recipients[i].State == queue.Pending && mailaddr.Domain(m.Recipients[i].Addr) == d {
					it.rcpts = append(it.rcpts, i)
				}
			}
			ms.due.remove(d)
			n += len(it.rcpts)
			out = append(out, sched{it: it})
		}
		m.NextDue = ms.due.earliest()
	}
	ms.mu.Unlock()
	if len(out) == 0 {
		return 0
	}
	l.mu.Lock()
	stopping := l.stopping
	l.mu.Unlock()
	if stopping {
		return n // the spool keeps the mail; the next start picks it up
	}
	for _, s := range out {
		l.schedule(s.it, s.at)
	}
	return n
}

// staleRetry reports whether an item scheduled for a retry was replaced
// by an operator's retry meanwhile: its domain's retry time is no longer
// the one it was scheduled for.
func (l *Loop) staleRetry(it *workItem) bool {
	ms := it.ms
	ms.mu.Lock()
	defer ms.mu.Unlock()
	for _, e := range ms.due {
		if e.domain == it.domain {
			return !e.at.Equal(it.retryAt)
		}
	}
	return true
}

// packedDue returns the next due time of a packed message. Call with
// ms.mu held.
func (l *Loop) packedDue(ms *msgState) time.Time {
	var scratch queue.Message
	return ms.view(l.packer, &scratch).NextDue
}
