package delivery

import (
	"time"

	"gannet/engine/outbound"
	"gannet/queue"
	"gannet/smtpwire"
)

// applyAll gives every pending recipient of the item the same status and
// reply (a DNS failure, an address without a domain).
func (l *Loop) applyAll(it *workItem, st outbound.Status, rep smtpwire.Reply) {
	ms := it.ms
	ms.mu.Lock()
	m := ms.msg(l.packer)
	var idx []int
	var out outbound.Outcome
	for _, i := range it.rcpts {
		if m.Recipients[i].State == queue.Pending {
			idx = append(idx, i)
			out.Results = append(out.Results, outbound.Result{Rcpt: m.Recipients[i].Addr, Status: st, Reply: rep})
		}
	}
	ms.mu.Unlock()
	l.apply(it, idx, out)
}

// apply records the outcome of one attempt of a work item: it counts the
// attempt and turns each recipient's result into a verdict; the deferred
// ones are retried (RetryPolicy: retry_interval doubling up to
// max_retry_interval; greylist_retry after a first attempt greylisted) or,
// past max_retry_age, expire. settle makes the
// verdicts stand (state, spool, records).
func (l *Loop) apply(it *workItem, idx []int, out outbound.Outcome) {
	now := l.clock.Now()
	ms := it.ms
	dest := it.path()
	var vs []verdict
	var retry *workItem
	var retryAt time.Time

	ms.mu.Lock()
	if ms.corrupt {
		// Quarantined while this item was on its way: nothing to record.
		ms.items--
		ms.mu.Unlock()
		return
	}
	m := ms.msg(l.packer)
	if len(idx) > 0 {
		m.Attempts++
	}
	var deferred []int
	lastAttempts := 0
	if len(out.Results) != len(idx) {
		// A Transport must answer for every recipient; treat the missing
		// ones as deferred rather than lose them.
		res := make([]outbound.Result, len(idx))
		for k := range res {
			res[k] = outbound.Result{Status: outbound.Transient,
				Reply: smtpwire.Reply{Code: 451, Enhanced: "4.3.0", Lines: []string{"no result for this recipient"}}}
			if k < len(out.Results) {
				res[k] = out.Results[k]
			}
		}
		out.Results = res
	}
	for k, r := range out.Results {
		i := idx[k]
		rc := &m.Recipients[i]
		if rc.State != queue.Pending {
			continue // settled meanwhile (an operator's bounce): not again
		}
		rc.Attempts++
		v := verdict{kind: kindTransient, rcpt: i, reply: r.Reply, dest: dest}
		switch r.Status {
		case outbound.Delivered:
			v.kind = kindDelivery
			if it.xfer != nil {
				v.kind = kindXferOut // handed to another node (xfer.go)
			}
		case outbound.Bounced:
			v.kind = kindBounce
		default:
			deferred = append(deferred, i)
			lastAttempts = max(lastAttempts, rc.Attempts)
		}
		vs = append(vs, v)
	}
	if len(deferred) > 0 {
		policy := l.retryFor(ms.env, it.domain)
		if d := l.retryAfterBackoff(dest); d > 0 {
			policy.Initial, policy.Max = d, d // the site is in backoff: backoff_retry_after
		} else if d := policy.Greylist; d > 0 && lastAttempts == 1 && allGreylisted(out.Results) {
			policy.Initial, policy.Max = d, d // greylisted at a first attempt: greylist_retry
		}
		if due, ok := policy.Next(m.Created, now, lastAttempts); ok {
			retry = &workItem{ms: ms, domain: it.domain, rcpts: deferred, high: it.high, retryAt: due}
			retryAt = due
			ms.due.set(it.domain, due)
		} else {
			// Too old for another attempt (RFC 5321 §4.5.4.1): the
			// deferred recipients expire.
			for k := range vs {
				if vs[k].kind != kindTransient {
					continue
				}
				vs[k].kind = kindExpiration
				if m.RequireTLS && outbound.RequireTLSFailure(vs[k].reply.Enhanced) {
					// RFC 8689 §5: a REQUIRETLS message that found no
					// validated TLS path bounces with 5.7.10, saying why.
					vs[k].kind = kindBounce
					vs[k].reply = requireTLSBounce(vs[k].reply)
				}
			}
		}
	}
	if retry == nil {
		ms.items--
		ms.due.remove(it.domain)
	}
	m.NextDue = ms.due.earliest()
	var dsn *dsnInfo
	if l.sendsDSN(m) {
		dsn = l.dsnFor(m, vs, &out, now) // before settle may remove the body
	}
	settled := l.settle(ms, m, vs, &out, now)
	retryWhole := false
	if retry != nil && ms.items == 1 {
		// The message waits for this retry alone: it waits packed, and
		// the scheduler holds the message rather than a work item. (m
		// stays valid for what follows; nothing changes it any more.)
		ms.pack(l.packer)
		ms.whole = true
		retry, retryWhole = nil, true
	}
	ms.mu.Unlock()

	l.publish(&settled)
	l.sendDSN(dsn)
	if retry != nil || retryWhole {
		l.mu.Lock()
		stopping := l.stopping
		l.mu.Unlock()
		switch {
		case stopping:
		case retryWhole:
			l.sched[ms.lane()].Schedule(schedRef{ms: ms}, retryAt)
		default:
			l.schedule(retry, retryAt)
		}
	}
}

// sendsDSN reports whether a DSN may be owed for message m: never for a
// message from the null sender (RFC 5321 §4.5.5, RFC 3461 §6.2), and only
// with a way to send one.
func (l *Loop) sendsDSN(m *queue.Message) bool {
	return m.From != "" && (l.opts.SendBounce != nil || l.opts.SendDSN != nil)
}

// sendDSN spools the DSN d (nil: none): through SendDSN when a recipient's
// NOTIFY asked for it and SendDSN is set, else through SendBounce.
func (l *Loop) sendDSN(d *dsnInfo) {
	if d == nil {
		return
	}
	send := l.opts.SendBounce
	if d.requested && l.opts.SendDSN != nil || send == nil {
		send = l.opts.SendDSN
	}
	if send == nil {
		return
	}
	if err := send(d.from, buildDSN(d)); err != nil {
		l.log.Error("delivery: spooling a delivery status notification", "id", d.id, "to", d.from, "err", err)
	}
}

// dsnAction says which DSN, if any, a verdict on recipient rc owes the
// sender (RFC 3461 §6.2):
//   - a failure (bounce, expiry, admin bounce): "failed" when NOTIFY has
//     FAILURE, or without NOTIFY when bounces are sent (SendBounce); never
//     with NOTIFY=NEVER or a NOTIFY without FAILURE;
//   - a delivery to a server that did not offer DSN (out.DSN false):
//     "relayed" when NOTIFY has SUCCESS (§6.2.2; a server that offered DSN
//     was given NOTIFY and owes any DSN from there on);
//   - a deferral: "delayed" once (rc.DelayWarned) when NOTIFY has DELAY
//     and the message arrived DelayWarningAfter ago or more.
//
// requested reports an action the sender's NOTIFY asked for.
func (l *Loop) dsnAction(m *queue.Message, rc *queue.Recipient, v *verdict, out *outbound.Outcome, now time.Time) (action string, requested bool) {
	n := rc.Notify
	switch v.kind {
	case kindBounce, kindExpiration, kindAdminBounce:
		switch {
		case n == 0 && l.opts.SendBounce != nil:
			return actionFailed, false
		case n&queue.NotifyNever == 0 && n&queue.NotifyFailure != 0:
			return actionFailed, true
		}
	case kindDelivery, kindXferOut:
		if n&queue.NotifySuccess != 0 && n&queue.NotifyNever == 0 && out != nil && !out.DSN {
			return actionRelayed, true
		}
	case kindTransient:
		if n&queue.NotifyDelay == 0 || n&queue.NotifyNever != 0 || rc.DelayWarned || l.opts.DelayWarningAfter == nil {
			break
		}
		if after := l.opts.DelayWarningAfter(); after > 0 && now.Sub(m.Created) >= after {
			return actionDelayed, true
		}
	}
	return "", false
}

// dsnFor collects the recipients of this outcome that the sender is owed
// a DSN for (dsnAction) and reads what the DSN returns of the original
// message while it is still in the spool: its header section, or all of it
// for a failure under RET=FULL. A recipient reported as delayed is marked
// (DelayWarned), which settle saves. Nil when there is nothing to send.
// Runs under the message lock.
func (l *Loop) dsnFor(m *queue.Message, vs []verdict, out *outbound.Outcome, now time.Time) *dsnInfo {
	var d *dsnInfo
	failed := false
	for k := range vs {
		v := &vs[k]
		rc := &m.Recipients[v.rcpt]
		action, requested := l.dsnAction(m, rc, v, out, now)
		if action == "" {
			continue
		}
		if d == nil {
			d = &dsnInfo{id: m.ID, from: m.From, arrival: m.Created, now: now, reportingMTA: l.opts.ReportingMTA, envid: m.EnvID}
		}
		d.requested = d.requested || requested
		r := dsnRecipient{addr: rc.Addr, reply: v.reply, expired: v.kind == kindExpiration,
			remote: out.Host, action: action, orcpt: rc.ORcpt}
		switch action {
		case actionFailed:
			failed = true
		case actionDelayed:
			rc.DelayWarned = true
			if age := l.retry.Load().MaxAge; age > 0 {
				r.until = m.Created.Add(age)
			}
		}
		d.rcpts = append(d.rcpts, r)
	}
	if d != nil {
		if body, err := l.opts.Store.Body(m); err == nil {
			if failed && m.DSNRet == queue.RetFull {
				d.full = append([]byte(nil), body...)
			} else {
				d.headers = append([]byte(nil), headerOf(body)...)
			}
		}
	}
	return d
}

// requireTLSBounce is the permanent form of a REQUIRETLS failure (451
// 4.7.10, engine/outbound): 550 5.7.10 with the same text.
func requireTLSBounce(r smtpwire.Reply) smtpwire.Reply {
	return smtpwire.Reply{Code: 550, Enhanced: "5.7.10", Lines: r.Lines}
}
