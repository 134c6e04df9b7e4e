package delivery

import (
	"context"

	"gannet/engine/outbound"
)

// chainTransport is a Transport that pipelines the next message of a
// worker behind a transaction's body (RFC 2920 §3.1; *outbound.Manager has
// it): one round trip per message instead of two while a site's ready
// queue has mail waiting.
type chainTransport interface {
	// DeliverChain delivers first, then each message chain.Next gives while
	// the connection's last body is written, reporting every outcome to
	// chain.Done (outbound.Manager.DeliverChain).
	DeliverChain(ctx context.Context, first *outbound.Chained, chain outbound.Chain)
}

// workerChain is a worker's side of a DeliverChain: Next takes the next
// item of the worker's ready queue, if one is there now, as work does;
// Done applies each outcome as deliver does, and puts an item the
// transport did not try back in the ready queue, no attempt counted.
type workerChain struct {
	l *Loop
	q *readyQueue
}

// Next returns the attempt of the next item of the queue, or nil when
// there is none now (or the loop stops, or the path has more workers than
// connections allowed). An item held back (hold) or with nothing to send
// (prepare) is handled as work handles it, and no other is looked for:
// the body waits for nothing.
func (w *workerChain) Next() *outbound.Chained {
	l, q := w.l, w.q
	l.mu.Lock()
	var it *workItem
	if !l.stopping && q.workers <= l.connLimit(q) {
		it = q.pop()
	}
	if it == nil {
		l.mu.Unlock()
		return nil
	}
	q.inFlight++
	l.mu.Unlock()
	l.ready.Add(-1)
	l.adminTake(it)
	var a *attempt
	if !l.hold(it) {
		a = l.prepare(it)
	}
	if a == nil {
		w.untake(it)
		return nil
	}
	return &a.ch
}

// untake ends what Next began for an item, as work does after deliver.
func (w *workerChain) untake(it *workItem) {
	w.l.adminDone(it)
	w.l.mu.Lock()
	w.q.inFlight--
	w.l.mu.Unlock()
}

// Done applies the outcome of a message (finish), or, when it was not
// attempted, puts its item back in the ready queue as it was.
func (w *workerChain) Done(ch *outbound.Chained, o outbound.Outcome, attempted bool) {
	a := ch.Ref.(*attempt)
	if attempted {
		w.l.finish(a, o)
	} else {
		w.l.releaseBody(a)
		w.l.ready.Add(1)
		w.l.toReady(a.it)
	}
	if !a.first {
		w.untake(a.it)
	}
}
