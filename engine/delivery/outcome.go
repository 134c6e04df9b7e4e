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
// max_retry_interval) or, past max_retry_age, expire. settle makes the
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
		case outbound.Bounced:
			v.kind = kindBounce
		default:
			deferred = append(deferred, i)
			lastAttempts = max(lastAttempts, rc.Attempts)
		}
		vs = append(vs, v)
	}
	if len(deferred) > 0 {
		if due, ok := l.retryFor(ms.env, it.domain).Next(m.Created, now, lastAttempts); ok {
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
	if l.opts.SendBounce != nil && m.From != "" {
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
	if dsn != nil {
		if err := l.opts.SendBounce(dsn.from, buildDSN(dsn)); err != nil {
			l.log.Error("delivery: spooling a bounce message", "id", m.ID, "to", dsn.from, "err", err)
		}
	}
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

// dsnFor collects the recipients of this outcome that bounced or expired
// for a bounce message to the sender, and reads the original header
// section while the message is still in the spool. Nil when there are
// none. Runs under the message lock.
func (l *Loop) dsnFor(m *queue.Message, vs []verdict, out *outbound.Outcome, now time.Time) *dsnInfo {
	var d *dsnInfo
	for _, v := range vs {
		if v.kind != kindBounce && v.kind != kindExpiration && v.kind != kindAdminBounce {
			continue
		}
		if d == nil {
			d = &dsnInfo{id: m.ID, from: m.From, arrival: m.Created, now: now, reportingMTA: l.opts.ReportingMTA}
		}
		d.rcpts = append(d.rcpts, dsnRecipient{addr: m.Recipients[v.rcpt].Addr, reply: v.reply,
			expired: v.kind == kindExpiration, remote: out.Host})
	}
	if d != nil {
		if body, err := l.opts.Store.Body(m); err == nil {
			d.headers = append([]byte(nil), headerOf(body)...)
		}
	}
	return d
}

// requireTLSBounce is the permanent form of a REQUIRETLS failure (451
// 4.7.10, engine/outbound): 550 5.7.10 with the same text.
func requireTLSBounce(r smtpwire.Reply) smtpwire.Reply {
	return smtpwire.Reply{Code: 550, Enhanced: "5.7.10", Lines: r.Lines}
}
