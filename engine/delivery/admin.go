package delivery

import (
	"context"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"gannet/engine/logrec"
	"gannet/engine/outbound"
	"gannet/mailaddr"
	"gannet/queue"
	"gannet/resolver"
	"gannet/smtpwire"
)

// This file holds the operator's controls of the loop, which the admin API
// (engine/admin) exposes: administrative bounces and suspensions chosen by
// scheduled queue (destination domain, tenant, campaign) and/or MX site.
//
// The loop consults them at two points, both cheap when no rule exists (one
// atomic load):
//
//   - adminDue, when an item comes due, before its DNS lookup: a matching
//     bounce bounces it (AdminBounce records), a matching suspension holds
//     it. Rules naming a Site match here only if the item was routed before.
//   - adminHold, when a site worker takes an item, before the shaping gate:
//     the same with the item's site known.
//
// A held item leaves the scheduler and waits in its suspension's list
// without counting an attempt; when the suspension ends (Resume, or its
// duration passes) its items are scheduled due now, and meet the rules
// again. Mail waiting for a retry when a suspension starts keeps its retry
// time and is held if it comes due while suspended.
//
// A bounce sweeps the queue at once: every pending recipient that matches
// becomes Bounced, with an AdminBounce record, and a message left with no
// pending recipient is removed from the spool. While the bounce is in force
// (its duration), mail that comes due and matches is bounced the same way:
// new mail on arrival, deferred mail at its retry time. A transaction
// already in flight when the bounce is made finishes; its outcome for the
// bounced recipients is not recorded a second time.
//
// With Options.Rules set, rules are stored durably and RestoreRules puts
// them back in force after a restart (rulestore.go); without it they live
// in memory only (as KumoMTA's do).

// AdminBounceReply is the reply recorded for a recipient an operator
// bounced (the code and enhanced code KumoMTA uses); the reason follows the
// text.
var AdminBounceReply = smtpwire.Reply{Code: 551, Enhanced: "5.7.1", Lines: []string{"Administrator bounced"}}

// Selector chooses queued mail for an administrative action. Every
// non-empty field must match: the destination domain and the site case-
// insensitively, tenant and campaign exactly. The zero Selector matches
// everything; the admin API refuses it.
type Selector struct {
	Domain   string // destination domain (the recipient's)
	Tenant   string
	Campaign string
	Site     string // a site's string form (resolver.SiteKey.String): MX host names joined by ",", or the relay_to host:port
}

// IsZero reports whether the selector names nothing.
func (s Selector) IsZero() bool { return s == Selector{} }

// Normalize lower-cases the domain and site and drops a trailing dot.
func (s Selector) Normalize() Selector {
	s.Domain = mailaddr.CanonicalDomain(strings.TrimSpace(s.Domain))
	s.Site = strings.ToLower(strings.TrimSpace(s.Site))
	s.Tenant = strings.TrimSpace(s.Tenant)
	s.Campaign = strings.TrimSpace(s.Campaign)
	return s
}

// match reports whether mail of (domain, tenant, campaign) at site matches;
// site "" means not known yet, which a selector naming a Site never
// matches.
func (s *Selector) match(domain, tenant, campaign, site string) bool {
	return (s.Domain == "" || s.Domain == domain) &&
		(s.Tenant == "" || s.Tenant == tenant) &&
		(s.Campaign == "" || s.Campaign == campaign) &&
		(s.Site == "" || strings.EqualFold(s.Site, site))
}

// AdminRule is an administrative bounce or suspension, as listed by the
// admin API.
type AdminRule struct {
	ID string
	// Origin says who made it: OriginAPI, OriginPolicy (OriginRule names
	// the shaper's automatic suspensions, which the engine lists beside
	// these).
	Origin   string
	Selector Selector
	Reason   string
	Created  time.Time
	// Expires is when the rule ends by itself; zero: a bounce without a
	// duration (the sweep only), or a suspension until resumed.
	Expires time.Time
	// Bounced counts the recipients a bounce rule bounced, by queue name
	// ("campaign:tenant@domain"); TotalBounced is their sum.
	Bounced      map[string]int
	TotalBounced int
	// Held is the number of work items (one per message and destination
	// domain) a suspension or hold holds now.
	Held int
	// IDs are the messages a hold names (hold.go); empty for a hold by
	// Selector and for every other rule.
	IDs []string
	// Target is the "host:port" an xfer rule hands the mail to (xfer.go);
	// empty for every other rule.
	Target string
}

// adminRule is the state of one rule.
type adminRule struct {
	AdminRule
	held  []*workItem // suspensions: the items held
	ended bool        // removed; later holds schedule the item instead
	stop  chan struct{}
}

// snapshot copies the rule for a caller.
func (r *adminRule) snapshot() AdminRule {
	a := r.AdminRule
	a.Bounced = make(map[string]int, len(r.Bounced))
	for k, v := range r.Bounced {
		a.Bounced[k] = v
	}
	a.Held = len(r.held)
	a.IDs = slices.Clone(r.IDs)
	return a
}

// adminState is the Loop's administrative state. Its zero value is ready.
type adminState struct {
	rules atomic.Int32 // len(bounces) + len(suspends) + len(holds) + len(xfers): the hooks' fast path

	mu       sync.Mutex
	bounces  map[string]*adminRule
	suspends map[string]*adminRule
	holds    map[string]*adminRule // hold.go
	xfers    map[string]*adminRule // xfer.go
	// xferBack names, by message id, the node (its SMTP address) a message
	// that came by a handover must not go back to (handover.go): few
	// entries, only for messages a rule would have sent back.
	xferBack map[string]string

	// expired lists the bounces dropped at their expiry whose stored
	// copies are still to delete (flushExpired).
	expired []string

	fmu      sync.Mutex
	inFlight map[*workItem]struct{} // items a worker has taken
}

// flushExpired deletes the stored copies of the bounces that expired.
func (l *Loop) flushExpired() {
	l.admin.mu.Lock()
	ids := l.admin.expired
	l.admin.expired = nil
	l.admin.mu.Unlock()
	for _, id := range ids {
		l.unstoreRule(ruleBounce, id)
	}
}

func (a *adminState) countLocked() {
	a.rules.Store(int32(len(a.bounces) + len(a.suspends) + len(a.holds) + len(a.xfers)))
}

// matchLocked returns the first bounce, else the first suspension, in force
// for the mail; expired bounces are dropped on the way.
func (a *adminState) matchLocked(domain, tenant, campaign, site string, now time.Time) (bounce, suspend *adminRule) {
	for id, r := range a.bounces {
		if !r.Expires.After(now) {
			delete(a.bounces, id)
			r.ended = true
			a.countLocked()
			a.expired = append(a.expired, id)
			continue
		}
		if r.Selector.match(domain, tenant, campaign, site) {
			return r, nil
		}
	}
	for _, r := range a.suspends {
		if (r.Expires.IsZero() || r.Expires.After(now)) && r.Selector.match(domain, tenant, campaign, site) {
			return nil, r
		}
	}
	return nil, nil
}

// adminDue is the hook in due(): it reports whether an administrative rule
// took the item (bounced or held). Runs on the scheduler goroutine: the
// bounce's spool work runs on its own goroutine.
func (l *Loop) adminDue(it *workItem) bool {
	if l.admin.rules.Load() == 0 {
		return false
	}
	now := l.clock.Now()
	env := it.ms.env // tenant and campaign never change after Enqueue
	l.admin.mu.Lock()
	b, s := l.admin.matchLocked(it.domain, env.tenant, env.campaign, it.site().String(), now)
	if b == nil && s == nil {
		s = l.admin.holdLocked(it.ms.id, it.domain, env.tenant, env.campaign, it.site().String())
	}
	flush := len(l.admin.expired) > 0
	l.admin.mu.Unlock()
	if flush {
		l.flushExpired()
	}
	switch {
	case b != nil:
		l.workers.Add(1) // Stop waits for it like for a worker
		go func() {
			defer l.workers.Done()
			l.bounceItem(it, b, now)
		}()
		return true
	case s != nil:
		l.holdItem(it, s)
		return true
	}
	return false
}

// adminHold is the hook in hold(): the same as adminDue with the item's
// site known.
func (l *Loop) adminHold(it *workItem) bool {
	if l.admin.rules.Load() == 0 {
		return false
	}
	now := l.clock.Now()
	env := it.ms.env
	l.admin.mu.Lock()
	b, s := l.admin.matchLocked(it.domain, env.tenant, env.campaign, it.site().String(), now)
	if b == nil && s == nil {
		s = l.admin.holdLocked(it.ms.id, it.domain, env.tenant, env.campaign, it.site().String())
	}
	flush := len(l.admin.expired) > 0
	l.admin.mu.Unlock()
	if flush {
		l.flushExpired()
	}
	switch {
	case b != nil:
		l.bounceItem(it, b, now)
		return true
	case s != nil:
		l.holdItem(it, s)
		return true
	}
	return false
}

// adminTake and adminDone bracket the time a worker holds an item, for the
// in-flight counts of the queue summary.
func (l *Loop) adminTake(it *workItem) {
	l.admin.fmu.Lock()
	if l.admin.inFlight == nil {
		l.admin.inFlight = make(map[*workItem]struct{})
	}
	l.admin.inFlight[it] = struct{}{}
	l.admin.fmu.Unlock()
}

func (l *Loop) adminDone(it *workItem) {
	l.admin.fmu.Lock()
	delete(l.admin.inFlight, it)
	l.admin.fmu.Unlock()
}

// holdItem puts an item in a suspension's list, or back in the scheduler
// when the suspension has just ended.
func (l *Loop) holdItem(it *workItem, r *adminRule) {
	l.admin.mu.Lock()
	if !r.ended {
		r.held = append(r.held, it)
		l.admin.mu.Unlock()
		return
	}
	l.admin.mu.Unlock()
	l.release([]*workItem{it})
}

// pruneHeldLocked drops from the suspensions' lists the items that have
// nothing left to hold: every recipient they carry was settled while they
// were held (an admin bounce's sweep), or their message was quarantined.
// Such an item is finished here, as it would be if it came due, so that
// the summary, the lists and inspect never count bounced or delivered mail
// as held. Call with l.admin.mu held (it takes each message's lock inside).
func (l *Loop) pruneHeldLocked() {
	var scratch queue.Message
	for _, r := range l.admin.holding() {
		kept := r.held[:0]
		for _, it := range r.held {
			if l.finishIfSettled(it, &scratch) {
				continue
			}
			kept = append(kept, it)
		}
		clear(r.held[len(kept):])
		r.held = kept
	}
}

// finishIfSettled reports whether a waiting item has no pending recipient
// left (or its message was quarantined) and, if so, finishes it: the
// message counts one item less and forgets the item's retry time.
func (l *Loop) finishIfSettled(it *workItem, scratch *queue.Message) bool {
	ms := it.ms
	ms.mu.Lock()
	defer ms.mu.Unlock()
	if !ms.corrupt {
		m := ms.view(l.packer, scratch)
		for _, i := range it.rcpts {
			if m.Recipients[i].State == queue.Pending {
				return false
			}
		}
	}
	ms.items--
	ms.due.remove(it.domain)
	if ms.m != nil {
		ms.m.NextDue = ms.due.earliest()
	}
	return true
}

// release schedules held items due now (they meet the rules again in due).
func (l *Loop) release(items []*workItem) {
	l.mu.Lock()
	stopping := l.stopping
	l.mu.Unlock()
	if stopping {
		return // the spool keeps them; the next start picks them up
	}
	for _, it := range items {
		l.schedule(it, time.Time{})
	}
}

// adminReply is the reply recorded for a recipient bounced by rule r.
func adminReply(reason string) smtpwire.Reply {
	rep := AdminBounceReply
	if reason != "" {
		rep.Lines = []string{AdminBounceReply.Lines[0] + ": " + reason}
	}
	return rep
}

// bounceItem bounces the pending recipients of an item that a bounce rule
// matched (AdminBounce records); the item is finished.
func (l *Loop) bounceItem(it *workItem, r *adminRule, now time.Time) {
	rep := adminReply(r.Reason)
	dest := outbound.Path{Site: it.site(), Domain: it.domain} // no egress source: none was used
	ms := it.ms
	ms.mu.Lock()
	m := ms.msg(l.packer)
	var vs []verdict
	for _, i := range it.rcpts {
		if m.Recipients[i].State == queue.Pending {
			vs = append(vs, verdict{kind: kindAdminBounce, rcpt: i, reply: rep, dest: dest})
		}
	}
	ms.items--
	ms.due.remove(it.domain)
	m.NextDue = ms.due.earliest()
	settled := l.settle(ms, m, vs, nil, now)
	ms.mu.Unlock()
	l.countBounced(r, settled.records)
	l.publish(&settled)
}

// countBounced adds the records of an admin bounce to the rule's counts,
// before they are written, so that a record once written is in the
// rule's counts.
func (l *Loop) countBounced(r *adminRule, recs []logrec.Record) {
	if len(recs) == 0 {
		return
	}
	l.admin.mu.Lock()
	if r.Bounced == nil {
		r.Bounced = make(map[string]int)
	}
	for i := range recs {
		r.Bounced[recs[i].Queue]++
	}
	r.TotalBounced += len(recs)
	l.admin.mu.Unlock()
}

// Bounce bounces every queued recipient that sel matches now (AdminBounce
// records with reason; messages left with nothing pending leave the spool)
// and, when d > 0, keeps bouncing matching mail as it comes due for d. The
// answer carries the counts of the initial sweep. A selector naming a Site
// finds the site of each domain through the Router (cached), so ctx bounds
// those lookups.
func (l *Loop) Bounce(ctx context.Context, id, origin string, sel Selector, reason string, d time.Duration) AdminRule {
	now := l.clock.Now()
	r := &adminRule{AdminRule: AdminRule{ID: id, Origin: validOrigin(origin), Selector: sel.Normalize(), Reason: reason, Created: now}}
	if d > 0 {
		r.Expires = now.Add(d)
		l.storeRule(ruleBounce, &r.AdminRule)
		l.admin.mu.Lock()
		l.addBounceLocked(r)
		l.admin.mu.Unlock()
	}
	l.waitLoaded() // the sweep covers the whole queue, not what is loaded so far
	l.sweep(ctx, r, now)
	l.admin.mu.Lock()
	defer l.admin.mu.Unlock()
	l.pruneHeldLocked() // what the sweep bounced is held no more
	return r.snapshot()
}

// addBounceLocked puts a bounce rule in force.
func (l *Loop) addBounceLocked(r *adminRule) {
	if l.admin.bounces == nil {
		l.admin.bounces = make(map[string]*adminRule)
	}
	l.admin.bounces[r.ID] = r
	l.admin.countLocked()
}

// sweepWorkers bounds the goroutines of a sweep: each spool update is
// synced, and concurrent ones share their syncs.
const sweepWorkers = 32

// sweep bounces the matching pending recipients of every message held.
func (l *Loop) sweep(ctx context.Context, r *adminRule, now time.Time) {
	sel := &r.Selector
	rep := adminReply(r.Reason)
	var smu sync.Mutex
	sites := map[string]resolver.SiteKey{}
	siteOf := func(domain string) resolver.SiteKey {
		if sel.Site == "" {
			return resolver.SiteKey{}
		}
		smu.Lock()
		defer smu.Unlock()
		s, ok := sites[domain]
		if !ok {
			s = l.siteOf(ctx, domain)
			sites[domain] = s
		}
		return s
	}
	msgs := l.snapshotMsgs()
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(sweepWorkers, len(msgs)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= len(msgs) {
					return
				}
				l.sweepOne(msgs[i], r, sel, rep, siteOf, now)
			}
		}()
	}
	wg.Wait()
}

// sweepOne bounces the matching pending recipients of one message.
func (l *Loop) sweepOne(ms *msgState, r *adminRule, sel *Selector, rep smtpwire.Reply, siteOf func(string) resolver.SiteKey, now time.Time) {
	if (sel.Tenant != "" && sel.Tenant != ms.env.tenant) || (sel.Campaign != "" && sel.Campaign != ms.env.campaign) {
		return
	}
	ms.mu.Lock()
	if ms.corrupt { // quarantined: nothing of it is pending any more
		ms.mu.Unlock()
		return
	}
	// A packed message is looked at in scratch first, and unpacked only
	// when something in it matches.
	var scratch queue.Message
	m := ms.view(l.packer, &scratch)
	packed := ms.isPacked()
	var vs []verdict
	for i := range m.Recipients {
		rc := &m.Recipients[i]
		if rc.State != queue.Pending {
			continue
		}
		d := mailaddr.Domain(rc.Addr)
		if sel.Domain != "" && sel.Domain != d {
			continue
		}
		site := siteOf(d)
		if !sel.match(d, m.Tenant, m.Campaign, site.String()) {
			continue
		}
		vs = append(vs, verdict{kind: kindAdminBounce, rcpt: i, reply: rep, dest: outbound.Path{Site: site, Domain: d}})
	}
	if len(vs) == 0 {
		ms.mu.Unlock()
		return
	}
	m = ms.msg(l.packer)
	// The message's work items stay where they are; with no pending
	// recipient left they finish without a transaction (and without a
	// record) when they come due.
	settled := l.settle(ms, m, vs, nil, now)
	if packed && !settled.removed {
		ms.pack(l.packer) // it waits as before
	}
	ms.mu.Unlock()
	l.countBounced(r, settled.records)
	l.publish(&settled)
}

// snapshotMsgs returns the messages held, in no order.
func (l *Loop) snapshotMsgs() []*msgState {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]*msgState, 0, l.msgs.len())
	l.msgs.each(func(ms *msgState) { out = append(out, ms) })
	return out
}

// siteOf returns the site mail to domain goes to: the domain's smarthost
// (RelayFor, without a tenant), relay_to, else the Router's answer (the
// resolver caches it); zero when unknown.
func (l *Loop) siteOf(ctx context.Context, domain string) resolver.SiteKey {
	if f := l.opts.RelayFor; f != nil && domain != "" {
		if r := f("", domain); r != "" {
			return resolver.RelaySite(r)
		}
	}
	if !l.relay.IsZero() {
		return l.relay
	}
	if l.opts.Router == nil || domain == "" {
		return resolver.SiteKey{}
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	rt, err := l.opts.Router.Resolve(ctx, domain)
	if err != nil || rt == nil {
		return resolver.SiteKey{}
	}
	return routeSite(rt, domain)
}

// CancelBounce ends a bounce rule before its time; false for an unknown id.
func (l *Loop) CancelBounce(id string) (AdminRule, bool) {
	l.admin.mu.Lock()
	defer l.admin.mu.Unlock()
	r, ok := l.admin.bounces[id]
	if !ok || !r.Expires.After(l.clock.Now()) {
		return AdminRule{}, false
	}
	delete(l.admin.bounces, id)
	r.ended = true
	l.admin.countLocked()
	l.unstoreRule(ruleBounce, id)
	return r.snapshot(), true
}

// Bounces lists the bounce rules in force, oldest first.
func (l *Loop) Bounces() []AdminRule {
	now := l.clock.Now()
	l.admin.mu.Lock()
	defer l.admin.mu.Unlock()
	var out []AdminRule
	for id, r := range l.admin.bounces {
		if !r.Expires.After(now) {
			delete(l.admin.bounces, id)
			r.ended = true
			l.unstoreRule(ruleBounce, id)
			continue
		}
		out = append(out, r.snapshot())
	}
	l.admin.countLocked()
	sortRules(out)
	return out
}

// Suspend holds the mail sel matches — nothing is attempted, nothing
// expires while held — for d (d <= 0: until resumed). Mail is held when it
// comes due or when a site worker takes it.
func (l *Loop) Suspend(id, origin string, sel Selector, reason string, d time.Duration) AdminRule {
	now := l.clock.Now()
	r := &adminRule{AdminRule: AdminRule{ID: id, Origin: validOrigin(origin), Selector: sel.Normalize(), Reason: reason, Created: now}}
	if d > 0 {
		r.Expires = now.Add(d)
	}
	l.storeRule(ruleSuspend, &r.AdminRule)
	l.admin.mu.Lock()
	l.addSuspendLocked(r, now)
	snap := r.snapshot()
	l.admin.mu.Unlock()
	return snap
}

// addSuspendLocked puts a suspension in force, with a timer that resumes
// it at its expiry (none when Expires is zero).
func (l *Loop) addSuspendLocked(r *adminRule, now time.Time) {
	r.stop = make(chan struct{})
	if l.admin.suspends == nil {
		l.admin.suspends = make(map[string]*adminRule)
	}
	l.admin.suspends[r.ID] = r
	l.admin.countLocked()
	if r.Expires.IsZero() {
		return
	}
	t := l.clock.NewTimer(max(r.Expires.Sub(now), 0))
	id, stop := r.ID, r.stop
	go func() {
		select {
		case <-t.C():
			l.Resume(id)
		case <-stop:
			t.Stop()
		case <-l.runCtx.Done():
			t.Stop()
		}
	}()
}

// Resume ends a suspension: the mail it held is due now. False for an
// unknown id.
func (l *Loop) Resume(id string) (AdminRule, bool) {
	l.admin.mu.Lock()
	r, ok := l.admin.suspends[id]
	if !ok {
		l.admin.mu.Unlock()
		return AdminRule{}, false
	}
	delete(l.admin.suspends, id)
	l.admin.countLocked()
	r.ended = true
	close(r.stop)
	l.unstoreRule(ruleSuspend, id)
	snap := r.snapshot()
	held := r.held
	r.held = nil
	l.admin.mu.Unlock()
	l.release(held)
	return snap, true
}

// Suspensions lists the suspensions in force, oldest first.
func (l *Loop) Suspensions() []AdminRule {
	l.admin.mu.Lock()
	defer l.admin.mu.Unlock()
	l.pruneHeldLocked()
	out := make([]AdminRule, 0, len(l.admin.suspends))
	for _, r := range l.admin.suspends {
		out = append(out, r.snapshot())
	}
	sortRules(out)
	return out
}

func sortRules(rs []AdminRule) {
	sort.Slice(rs, func(i, j int) bool {
		if !rs[i].Created.Equal(rs[j].Created) {
			return rs[i].Created.Before(rs[j].Created)
		}
		return rs[i].ID < rs[j].ID
	})
}
