package delivery

import (
	"context"
	"strconv"

	"gannet/engine/outbound"
	"gannet/resolver"
	"gannet/smtpwire"
)

// Transfers (gannet xfer): before a node is retired, an operator hands its
// queued mail for a selector to another node over SMTP. An xfer rule names
// a selector and a target ("host:port", the other node's SMTP listener);
// while it is in force, the matching pending recipients are routed to the
// target as to a smarthost (resolver.RelaySite: no MX lookup, STARTTLS as
// the [tls] mode says), with the original envelope and message bytes. The
// rule is kept with the other admin rules (rulestore.go) and is this
// node's own: it is never shared with a cluster (every node would hand the
// mail on, the target too).
//
// Where it acts:
//   - when an item is routed (routeSmarthost, route): a matching rule
//     replaces its destination with the target. A selector naming a Site
//     matches after the DNS lookup, on the site found;
//   - when an item back from a wait (a tenant's rate, a suspension that
//     ended) comes due, or when a site worker takes it: if the rules say
//     otherwise than its route (a rule made since it was routed, or the
//     rule it was routed by cancelled), it is routed again at once;
//   - when the rule is made: the matching deferred mail is due at once
//     (RetryNow). Suspensions, holds and bounces come first: held mail is
//     transferred when its hold ends.
//
// The outcome: a 2xx from the target settles the recipient here with an
// XferOut record (the target its site; not a delivery: not in the
// delivered metrics); a 4xx is retried, to the target while the rule is in
// force; a 5xx is the target refusing the transfer, not the recipient's
// bounce: it is logged and retried like a 4xx, so the mail stays here
// until the target takes it or the rule is cancelled.

// ruleXfer is the kind of a stored xfer rule.
const ruleXfer = "xfer"

// Xfer puts in force a rule that hands the mail sel matches to target
// ("host:port"), and makes the matching deferred mail due now; it returns
// the rule and what was made due. A selector naming a Site finds the site
// of each domain through the Router (cached), so ctx bounds those lookups.
func (l *Loop) Xfer(ctx context.Context, id string, sel Selector, target, reason string) (AdminRule, RetryResult) {
	r := &adminRule{AdminRule: AdminRule{ID: id, Origin: OriginAPI, Selector: sel.Normalize(), Reason: reason,
		Created: l.clock.Now(), Target: target}}
	l.storeLocalRule(ruleXfer, &r.AdminRule)
	l.admin.mu.Lock()
	l.addXferLocked(r)
	snap := r.snapshot()
	l.admin.mu.Unlock()
	return snap, l.RetryNow(ctx, sel)
}

// addXferLocked puts an xfer rule in force.
func (l *Loop) addXferLocked(r *adminRule) {
	if l.admin.xfers == nil {
		l.admin.xfers = make(map[string]*adminRule)
	}
	l.admin.xfers[r.ID] = r
	l.admin.countLocked()
}

// CancelXfer ends an xfer rule: the mail it did not hand over yet goes to
// its own destinations again. False for an unknown id.
func (l *Loop) CancelXfer(id string) (AdminRule, bool) {
	l.admin.mu.Lock()
	r, ok := l.admin.xfers[id]
	if ok {
		delete(l.admin.xfers, id)
		r.ended = true
		l.admin.countLocked()
	}
	l.admin.mu.Unlock()
	if !ok {
		return AdminRule{}, false
	}
	if l.opts.Rules != nil {
		if err := l.opts.Rules.DeleteAdminState(ruleKey(ruleXfer, id)); err != nil {
			l.log.Error("delivery: deleting an ended xfer rule", "id", id, "err", err)
		}
	}
	return r.snapshot(), true
}

// Xfers lists the xfer rules in force, oldest first.
func (l *Loop) Xfers() []AdminRule {
	l.admin.mu.Lock()
	defer l.admin.mu.Unlock()
	out := make([]AdminRule, 0, len(l.admin.xfers))
	for _, r := range l.admin.xfers {
		out = append(out, r.snapshot())
	}
	sortRules(out)
	return out
}

// XferTarget reports whether hostPort is the target of an xfer rule in
// force (the engine gives such a smarthost no login).
func (l *Loop) XferTarget(hostPort string) bool {
	if l.admin.rules.Load() == 0 {
		return false
	}
	l.admin.mu.Lock()
	defer l.admin.mu.Unlock()
	for _, r := range l.admin.xfers {
		if r.Target == hostPort {
			return true
		}
	}
	return false
}

// storeLocalRule writes a rule that is this node's alone (not shared with
// a cluster); a failure to write is logged.
func (l *Loop) storeLocalRule(kind string, r *AdminRule) {
	if l.opts.Rules == nil {
		return
	}
	v, err := encodeRule(kind, r)
	if err == nil {
		err = l.opts.Rules.PutAdminState(ruleKey(kind, r.ID), v)
	}
	if err != nil {
		l.log.Error("delivery: storing an admin rule; it is in force until the next restart only",
			"kind", kind, "id", r.ID, "err", err)
	}
}

// xferMatch returns the first xfer rule (oldest) in force for the item's
// mail at site ("" not known yet: a rule naming a Site does not match).
func (l *Loop) xferMatch(it *workItem, site string) *adminRule {
	if l.admin.rules.Load() == 0 {
		return nil
	}
	env := it.ms.env
	l.admin.mu.Lock()
	defer l.admin.mu.Unlock()
	back := l.xferBackTo(it.ms.id)
	var best *adminRule
	for _, r := range l.admin.xfers {
		if r.Target != back && r.Selector.match(it.domain, env.tenant, env.campaign, site) &&
			(best == nil || r.Created.Before(best.Created) || r.Created.Equal(best.Created) && r.ID < best.ID) {
			best = r
		}
	}
	return best
}

// xferRoute decides where an item being routed to site (its smarthost, its
// MX site; zero: not known yet) goes: the target of a matching xfer rule,
// else site. It notes the rule in the item.
func (l *Loop) xferRoute(it *workItem, site resolver.SiteKey) resolver.SiteKey {
	s := ""
	if !site.IsZero() {
		s = site.String()
	}
	it.xfer = l.xferMatch(it, s)
	if it.xfer != nil {
		return resolver.RelaySite(it.xfer.Target)
	}
	return site
}

// xferStale reports whether a routed item's route no longer agrees with
// the xfer rules: routed to a target whose rule ended, or routed elsewhere
// while a rule now matches. Such an item is routed again.
func (l *Loop) xferStale(it *workItem) bool {
	if it.xfer != nil {
		l.admin.mu.Lock()
		defer l.admin.mu.Unlock()
		return it.xfer.ended
	}
	return it.route != nil && l.xferMatch(it, it.site().String()) != nil
}

// xferReroute is the hook where a site worker takes an item: an item whose
// route the xfer rules changed goes back to the scheduled queue, due now,
// to be routed again. It reports whether it did.
func (l *Loop) xferReroute(it *workItem) bool {
	if it.xfer == nil && l.admin.rules.Load() == 0 || !l.xferStale(it) {
		return false
	}
	l.routeAgain(it)
	return true
}

// routeAgain puts an item back in the scheduled queue, due now, to be
// routed again (unless the loop is stopping).
func (l *Loop) routeAgain(it *workItem) {
	it.route, it.qkey, it.xfer = nil, "", nil
	l.mu.Lock()
	stopping := l.stopping
	l.mu.Unlock()
	if !stopping {
		l.schedule(it, l.clock.Now())
	}
}

// xferOutcome adjusts the outcome of a transaction to an xfer target: a
// permanent refusal is the target's, not the recipient's, so it is
// deferred (and logged) rather than bounced.
func (l *Loop) xferOutcome(it *workItem, out *outbound.Outcome) {
	if it.xfer == nil {
		return
	}
	for k := range out.Results {
		r := &out.Results[k]
		if r.Status != outbound.Bounced {
			continue
		}
		l.log.Warn("xfer: the target refused the transfer; the mail stays queued here",
			"rule", it.xfer.ID, "target", it.xfer.Target, "id", it.ms.id, "rcpt", r.Rcpt,
			"reply", strconv.Itoa(r.Reply.Code)+" "+r.Reply.Enhanced)
		r.Status = outbound.Transient
		if r.Reply.Code >= 500 {
			r.Reply = smtpwire.Reply{Code: 451, Enhanced: "4.4.0",
				Lines: []string{"xfer target " + it.xfer.Target + " refused the transfer: " + r.Reply.String()}}
		}
	}
}
