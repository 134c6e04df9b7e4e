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

// apply records the outcome of one attempt of a work item: per recipient
// the new state, attempts and last reply; then either a retry of the
// deferred ones (RetryPolicy: retry_interval doubling up to
// max_retry_interval) or, past max_retry_age, their expiry; then the spool
// (Update, or Remove when every recipient is final) and, once that is
// durable, the log records.
func (l *Loop) apply(it *workItem, idx []int, out outbound.Outcome) {
	now := l.clock.Now()
	ms := it.ms
	var recs []record
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
			continue
		}
		rc.Attempts++
		rc.LastReply = r.Reply.String()
		switch r.Status {
		case outbound.Delivered:
			rc.State = queue.Delivered
			recs = append(recs, record{kind: kindDelivery, rcpt: i, result: r})
		case outbound.Bounced:
			rc.State = queue.Bounced
			recs = append(recs, record{kind: kindBounce, rcpt: i, result: r})
		default:
			deferred = append(deferred, i)
			lastAttempts = max(lastAttempts, rc.Attempts)
			recs = append(recs, record{kind: kindTransient, rcpt: i, result: r})
		}
	}
	if len(deferred) > 0 {
		if due, ok := l.retry.Load().Next(m.Created, now, lastAttempts); ok {
			retry = &workItem{ms: ms, domain: it.domain, rcpts: deferred, high: it.high}
			retryAt = due
			ms.due.set(it.domain, due)
		} else {
			// Too old for another attempt (RFC 5321 §4.5.4.1): expire. The
			// attempt's TransientFailure records are replaced by Expiration.
			kept := recs[:0]
			for _, rc := range recs {
				if rc.kind == kindTransient {
					m.Recipients[rc.rcpt].State = queue.Expired
					rc.kind = kindExpiration
				}
				kept = append(kept, rc)
			}
			recs = kept
		}
	}
	if retry == nil {
		ms.items--
		ms.due.remove(it.domain)
	}
	m.NextDue = ms.due.earliest()
	done := m.Done()
	var dsn *dsnInfo
	if l.opts.SendBounce != nil && m.From != "" {
		dsn = l.dsnFor(m, recs, &out, now)
	}
	var err error
	if done {
		err = l.opts.Store.Remove(m.ID)
	} else {
		err = l.opts.Store.Update(m)
	}
	// The records are made under the lock: they read the message.
	logged := make([]logRecord, 0, len(recs))
	for _, rc := range recs {
		logged = append(logged, l.makeRecord(m, it, rc, &out, now))
	}
	retryWhole := false
	if retry != nil && ms.items == 1 {
		// The message waits for this retry alone: it waits packed, and
		// the scheduler holds the message rather than a work item. (m
		// stays valid for what follows; nothing changes it any more.)
		ms.pack(l.packer)
		retry, retryWhole = nil, true
	}
	ms.mu.Unlock()

	if err != nil {
		// The outcome stands in memory; after a restart the spool's older
		// state may cause a repeat attempt (at-least-once delivery).
		l.log.Error("delivery: persisting message state", "id", m.ID, "removed", done, "err", err)
	}
	if done {
		l.forget(ms)
	}
	for i, rc := range recs {
		switch rc.kind {
		case kindDelivery:
			l.metrics.Delivered(now.Sub(m.Created))
		case kindBounce:
			l.metrics.Bounced()
		case kindTransient:
			l.metrics.TransientFailure()
		case kindExpiration:
			l.metrics.Expired()
		}
		l.emit(logged[i])
	}
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
func (l *Loop) dsnFor(m *queue.Message, recs []record, out *outbound.Outcome, now time.Time) *dsnInfo {
	var d *dsnInfo
	for _, rc := range recs {
		if rc.kind != kindBounce && rc.kind != kindExpiration {
			continue
		}
		if d == nil {
			d = &dsnInfo{id: m.ID, from: m.From, arrival: m.Created, now: now, reportingMTA: l.opts.ReportingMTA}
		}
		d.rcpts = append(d.rcpts, dsnRecipient{addr: m.Recipients[rc.rcpt].Addr, reply: rc.result.Reply,
			expired: rc.kind == kindExpiration, remote: out.Host})
	}
	if d != nil {
		if body, err := l.opts.Store.Body(m); err == nil {
			d.headers = append([]byte(nil), headerOf(body)...)
		}
	}
	return d
}
