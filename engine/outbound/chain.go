package outbound

import (
	"context"
	"errors"

	"gannet/resolver"
	"gannet/smtpwire"
)

// Pipelining the next message behind the last one (RFC 2920 §3.1).
//
// A DATA transaction costs two round trips: the envelope (MAIL, RCPT…,
// DATA) up to the 354, then the body and its "." up to the final reply.
// When the server offers PIPELINING and the caller already has the next
// message for the same connection, its envelope goes in the body's write,
// behind the ".": the server answers the "." first and then the next
// envelope (§3.2), so that in steady state a message costs one round trip.
// A BDAT transaction (RFC 3030) is one write and one round trip already;
// the next one, RSET first, goes as soon as it is written, so that two are
// in flight on the connection. The caller is never made to wait: only a
// message that is ready at that moment follows.

// Chain is what DeliverChain needs of its caller (the delivery loop's
// worker): the next message to put on the connection, and where each
// message's outcome goes.
type Chain interface {
	// Next returns a message ready to go now to the same destination, or
	// nil; it must not wait. Each message it returns comes back once
	// through Done.
	Next() *Chained
	// Done gives the outcome of a message: the first one and each one Next
	// returned, in that order. attempted is false for a message Next gave
	// that was not tried — the connection closed (or answered 421) before
	// any reply to it, or it cannot go on this connection — so that the
	// caller queues it again as it was, with no attempt counted.
	Done(ch *Chained, o Outcome, attempted bool)
}

// Chained is one message of a DeliverChain: the arguments of a Deliver,
// and the caller's own reference.
type Chained struct {
	Route *resolver.Route
	Env   *Envelope
	Ref   any
}

// errWouldWait: a message cannot follow another on its connection without
// a lookup that may wait (poolFor).
var errWouldWait = errors.New("outbound: the message needs a lookup that may wait")

// DeliverChain delivers first as Deliver does and reports its outcome to
// chain.Done; then, on the same connection, each message chain.Next had
// ready when the previous one's body was written (pipelined behind it),
// until Next has none. Messages that cannot go on that connection — another
// pool (TLS or MTA-STS policy, login), the connection's
// MaxDeliveriesPerConn reached, no message-rate slot free now — are given
// back not attempted, as are those the server closed the connection on
// before answering them.
func (m *Manager) DeliverChain(ctx context.Context, first *Chained, chain Chain) {
	f := &follower{m: m, ctx: ctx, chain: chain, first: first}
	o := m.deliver(ctx, first.Route, first.Env, f)
	if !f.reported {
		chain.Done(first, o, true)
	}
}

// follower carries a DeliverChain through the Client's exchange (take)
// and the Manager's runFollowers.
type follower struct {
	m        *Manager
	ctx      context.Context
	chain    Chain
	first    *Chained
	reported bool      // first's outcome went to chain.Done
	p        *sitePool // the pool of the first message
	domain   string    // its destination domain

	// The message pipelined behind the current transaction's body, begun
	// on the session's other ClientTxn; refused when Begin would not send
	// it to this server (its Results say why).
	pending *Chained
	msg     *smtpwire.ClientMessage
	refused []Result
}

// take is called by c.exchange when the next transaction may be written
// now (ClientTxn.Chainable; rset: it begins with RSET): it asks the chain
// for a message, begins its transaction on the session's other ClientTxn
// and returns what to write for it; nothing when none follows.
func (f *follower) take(c *Client, rset bool) followWrite {
	if f.pending != nil || c.broken || !f.p.mayFollow(c) {
		return followWrite{}
	}
	ch := f.chain.Next()
	if ch == nil {
		return followWrite{}
	}
	p, _, err := f.m.poolFor(f.ctx, ch.Route, ch.Env, f.domain)
	if err != nil || p != f.p || len(ch.Env.Rcpts) == 0 || !p.rate.TryReserve() {
		f.chain.Done(ch, Outcome{}, false)
		return followWrite{}
	}
	// After a "." the transaction is over whatever its reply (RFC 5321
	// §4.1.1.4); after BDAT LAST it may not be (rset).
	c.dirty = rset
	f.pending, f.msg, f.refused = ch, newClientMessage(ch.Env), nil
	t := &c.txns[1-c.cur]
	if res, ok := c.begin(t, ch.Env, f.msg); !ok {
		f.refused = res
		return followWrite{}
	}
	cmds, form := t.Send()
	w := followWrite{cmds: cmds, form: form}
	if form == smtpwire.BodyAsIs {
		w.body = ch.Env.Body
	}
	return w
}

// runFollowers reports the outcome o of the transaction just run on c and
// then runs the transactions pipelined behind it, one after the other
// (each may bring the next), reporting each; f nil: nothing to do. It
// runs before c is released.
func (m *Manager) runFollowers(ctx context.Context, c *Client, f *follower, o Outcome) {
	if f == nil {
		return
	}
	f.chain.Done(f.first, o, true)
	f.reported = true
	for f.pending != nil {
		ch, msg, refused := f.pending, f.msg, f.refused
		f.pending, f.msg, f.refused = nil, nil, nil
		c.cur = 1 - c.cur
		if refused != nil {
			f.chain.Done(ch, m.outcome(c, refused, ""), true)
			continue
		}
		t := c.current()
		if c.broken && t.Replayable() {
			// The server closed (or said 421) before it answered anything
			// of this transaction: it was not attempted.
			f.chain.Done(ch, Outcome{}, false)
			continue
		}
		err := c.exchange(ctx, t, ch.Env.Body, msg.CRLFClean, f)
		res, _ := c.settle(ctx, t, ch.Env, err)
		if t.Replayable() {
			// No reply came: nothing of it was processed.
			// (Nothing follows it: it wrote no body.)
			f.chain.Done(ch, Outcome{}, false)
			continue
		}
		f.chain.Done(ch, m.outcome(c, res, ""), true)
	}
}

// mayFollow reports whether another transaction may follow on c now
// without waiting: c has transactions left under MaxDeliveriesPerConn and
// the pool a message-rate slot free.
func (p *sitePool) mayFollow(c *Client) bool {
	p.mu.Lock()
	max := p.limits.MaxDeliveriesPerConn
	closed := p.closed
	p.mu.Unlock()
	return !closed && (max <= 0 || c.uses < max) && p.rate.Ready()
}
