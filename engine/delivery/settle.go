package delivery

import (
	"time"

	"gannet/engine/logrec"
	"gannet/engine/outbound"
	"gannet/mailaddr"
	"gannet/queue"
	"gannet/smtpwire"
)

// This file is the one place where what became of recipients is made to
// stand: their state in memory, the spool, the metrics and the log
// records, in that order. Every outcome passes through it: a transaction's
// and a DNS failure's (apply, outcome.go) and an operator's bounce
// (bounceItem and sweepOne, admin.go).

// verdict is what one step made of one recipient: the kind of record that
// says so and the reply behind it. Every kind but kindTransient is final.
type verdict struct {
	kind  recordKind
	rcpt  int // index into the message's Recipients
	reply smtpwire.Reply
	// dest is the way the recipient's mail went or was headed: its
	// record's queue (Domain), site and egress source.
	dest outbound.Path
}

// settlement is what settle leaves to do once the message lock is
// released: publish it.
type settlement struct {
	ms      *msgState
	id      string
	removed bool  // no recipient is pending: the message left the spool
	dead    bool  // it left the queue as a dead letter (deadWorthy)
	err     error // the spool write failed
	records []logrec.Record
}

// settle makes the verdicts on recipients of message m stand. A final
// verdict (delivered, bounced, expired, admin-bounced) sets the
// recipient's state; every verdict sets its last reply (a transaction has
// already counted its attempt). Then the spool is written: Remove when no
// recipient is pending any more, else Update (which also saves what the
// caller changed: attempts, the next due time). The records are built
// here, since they read m, and written by publish once the lock is
// released; out is the transaction they report (nil when none ran).
//
// Call it with ms.mu held (m is ms.msg). Records follow the spool write,
// so a crash in between repeats an attempt but never loses one. The spool
// write does not wait for an fsync: the spool makes it durable within a
// few milliseconds (queue: "Delivery outcomes").
func (l *Loop) settle(ms *msgState, m *queue.Message, vs []verdict, out *outbound.Outcome, now time.Time) settlement {
	wasDone := m.Done() // then it left the spool before
	for k := range vs {
		rc := &m.Recipients[vs[k].rcpt]
		rc.State = vs[k].kind.state()
		rc.LastReply = vs[k].reply.String()
	}
	s := settlement{ms: ms, id: m.ID, removed: m.Done()}
	switch {
	case s.removed && l.deadWorthy(m, vs):
		s.dead = true
		s.err = l.opts.DeadLetters.MoveToDead(m, now)
	case s.removed && !wasDone && l.located != nil:
		// These verdicts finish it: the one removal, which knows where
		// the record is.
		s.err = l.located.RemoveLocated(m)
	case s.removed:
		s.err = l.opts.Store.Remove(m.ID)
	default:
		s.err = l.opts.Store.Update(m)
	}
	if len(vs) > 0 {
		s.records = make([]logrec.Record, len(vs))
		for k := range vs {
			s.records[k] = l.newRecord(m, &vs[k], out, now)
		}
	}
	if s.dead && s.err == nil {
		s.records = append(s.records, l.deadRecords(m, vs, now)...)
	}
	return s
}

// deadWorthy reports whether message m, done, is kept as a dead letter: a
// recipient expired, or (KeepBounced) one of these verdicts bounced; never
// when an operator deletes or bounces it, nor when no verdict of this step
// finished it (it was settled, and left the spool, before).
func (l *Loop) deadWorthy(m *queue.Message, vs []verdict) bool {
	if l.opts.DeadLetters == nil || len(vs) == 0 {
		return false
	}
	keepBounced := l.opts.KeepBounced
	if f := l.opts.DeadLetterPolicy; f != nil {
		var keep bool
		if keep, keepBounced = f(); !keep {
			return false
		}
	}
	worthy := false
	for k := range vs {
		switch vs[k].kind {
		case kindAdminDelete, kindAdminBounce:
			return false
		case kindBounce:
			worthy = worthy || keepBounced
		}
	}
	for i := range m.Recipients {
		if m.Recipients[i].State == queue.Expired {
			return true
		}
	}
	return worthy
}

// deadRecords builds the DeadLetter records of a message made a dead
// letter: one per recipient not delivered, with its last reply.
func (l *Loop) deadRecords(m *queue.Message, vs []verdict, now time.Time) []logrec.Record {
	var out []logrec.Record
	for i := range m.Recipients {
		rc := &m.Recipients[i]
		if rc.State == queue.Delivered {
			continue
		}
		v := verdict{kind: kindTransient, rcpt: i, reply: smtpwire.Reply{Lines: []string{rc.LastReply}},
			dest: outbound.Path{Domain: mailaddr.Domain(rc.Addr)}}
		for k := range vs {
			if vs[k].rcpt == i {
				v = vs[k]
			}
		}
		r := l.newRecord(m, &v, nil, now)
		r.Type = logrec.DeadLetter
		out = append(out, r)
	}
	return out
}

// publish finishes a settlement after the message lock: it reports a
// failed spool write (the outcome stands in memory; after a restart the
// spool's older state may repeat an attempt: at-least-once delivery),
// forgets a removed message, and counts and writes the records.
func (l *Loop) publish(s *settlement) {
	if s.err != nil {
		l.log.Error("delivery: persisting message state", "id", s.id, "removed", s.removed, "err", s.err)
	}
	if s.removed {
		l.forget(s.ms)
	}
	for i := range s.records {
		r := &s.records[i]
		switch r.Type {
		case logrec.Delivery:
			l.metrics.Delivered(r.Timestamp.Sub(r.Created))
		case logrec.Bounce, logrec.AdminBounce:
			l.metrics.Bounced()
		case logrec.TransientFailure:
			l.metrics.TransientFailure()
		case logrec.Expiration:
			l.metrics.Expired()
		}
		if l.opts.Record != nil {
			l.opts.Record.Write(r)
		}
	}
}
