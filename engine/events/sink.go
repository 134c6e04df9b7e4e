package events

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"
)

// transport is what a sink's shipping loop needs of a destination: ship
// one batch, answering nil (taken), a *permanentError (refused for good)
// or another error (retry later).
type transport interface {
	ship(ctx context.Context, b *batch) error
	close()
}

// permanentError is a refusal that retrying will not change.
type permanentError struct{ err error }

func (e *permanentError) Error() string { return e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }

// sink is one [[event_sink]] at run time: the sink at position i of the
// configuration ships the journal's records with bit 1<<i from its cursor.
type sink struct {
	opts  SinkOptions
	sh    *Options
	i     int
	j     *journal
	t     transport
	types map[string]bool
	log   *slog.Logger
	// legacy is the sink's own journal of an earlier version (NAME/,
	// one journal per sink), shipped before the shared one; nil once
	// shipped and removed.
	legacy atomic.Pointer[journal]

	cancel context.CancelFunc
	ctx    context.Context
	wg     sync.WaitGroup

	st struct {
		sync.Mutex
		shipped, rejected, expired, dropped uint64
		lastSuccess, lastErrorAt            time.Time
		lastError                           string
	}
}

func newSink(o SinkOptions, i int, sh *Options) *sink {
	k := &sink{opts: o, sh: sh, i: i, log: sh.Logger.With("part", "events", "sink", o.Name)}
	if len(o.Types) > 0 {
		k.types = map[string]bool{}
		for _, t := range o.Types {
			k.types[t] = true
		}
	}
	switch o.Kind {
	case KindWebhook:
		k.t = newWebhook(&k.opts, sh.Now)
	case KindAMQP:
		k.t = newAMQP(&k.opts)
	}
	k.ctx, k.cancel = context.WithCancel(context.Background())
	return k
}

// takes reports whether the sink wants a record of type typ and tenant.
func (k *sink) takes(typ, tenant string) bool {
	if k.types != nil && !k.types[typ] {
		return false
	}
	return k.opts.Tenant == "" || k.opts.Tenant == tenant
}

func (k *sink) start() {
	k.wg.Add(1)
	go k.shipLoop()
}

// stop stops the shipping goroutine (a batch in flight is shipped again
// after the next start), closes the transport and an earlier version's
// journal.
func (k *sink) stop() error {
	k.cancel()
	k.wg.Wait()
	k.t.close()
	if lj := k.legacy.Swap(nil); lj != nil {
		return lj.close()
	}
	return nil
}

// backlog is how many records the sink has not shipped yet.
func (k *sink) backlog() uint64 {
	n := k.j.backlog(k.i)
	if lj := k.legacy.Load(); lj != nil {
		n += lj.backlog(0)
	}
	return n
}

// shipLoop ships an earlier version's journal, if any, then the journal
// from the sink's cursor, one batch at a time, until the sink stops.
func (k *sink) shipLoop() {
	defer k.wg.Done()
	if lj := k.legacy.Load(); lj != nil {
		k.ship(lj, 0, true)
		if k.ctx.Err() != nil {
			return
		}
		k.legacy.Store(nil)
		if err := errors.Join(lj.close(), removeLegacy(lj.dir)); err != nil {
			k.failed(fmt.Errorf("removing the shipped journal of an earlier version: %w", err))
		}
	}
	k.ship(k.j, k.i, false)
}

// ship ships journal j from cursor i until the sink stops, or, with
// untilEmpty, until nothing is left.
func (k *sink) ship(j *journal, i int, untilEmpty bool) {
	rd := &reader{j: j, bit: 1 << i}
	defer rd.close()
	ctx := k.ctx
	for ctx.Err() == nil {
		p := j.position(i)
		if p.owed == 0 {
			if untilEmpty {
				return
			}
			j.skip(i) // records of other sinks only
			select {
			case <-p.changed:
			case <-ctx.Done():
			}
			continue
		}
		end := p.batchEnd
		if end <= p.next {
			end = k.fill(ctx, j, i, p, !untilEmpty)
			if ctx.Err() != nil {
				return
			}
			if end <= p.next {
				continue // the backlog limit dropped them meanwhile
			}
		}
		b, err := rd.read(p.next, end)
		if err != nil {
			if j.position(i).next != p.next {
				continue // dropped meanwhile (max_backlog)
			}
			k.failed(fmt.Errorf("journal read: %w", err))
			// An unreadable journal cannot be shipped: skip the batch
			// rather than stop the sink.
			j.mu.Lock()
			n := j.takenLocked(p.next, end, rd.bit)
			j.mu.Unlock()
			k.count(ResultDropped, int(n))
			j.done(i, end)
			continue
		}
		if len(b.entries) == 0 {
			j.done(i, end)
			continue
		}
		if len(b.entries) == 1 {
			b.key = string(b.entries[0].uuid)
		} else {
			b.key = batchKey(b.entries)
		}
		if ok, err := j.startBatch(i, p.next, end, len(b.entries)); err != nil {
			k.failed(fmt.Errorf("journal cursor: %w", err))
		} else if !ok {
			continue
		}
		k.deliver(ctx, j, i, p.next, end, b)
	}
}

// fill decides the end of the next batch: up to MaxBatch records from
// p.next, waiting (when wait) up to MaxDelay for more when there are
// fewer.
func (k *sink) fill(ctx context.Context, j *journal, i int, p position, wait bool) uint64 {
	max := uint64(k.opts.MaxBatch)
	if wait && p.owed < max && max > 1 && k.opts.MaxDelay > 0 {
		timer := time.NewTimer(k.opts.MaxDelay)
		defer timer.Stop()
		owed, changed := p.owed, p.changed
	waiting:
		for owed < max {
			select {
			case <-changed:
				q := j.position(i)
				if q.next != p.next {
					return p.next // dropped meanwhile: start again
				}
				owed, changed = q.owed, q.changed
			case <-timer.C:
				break waiting
			case <-ctx.Done():
				return p.next
			}
		}
	}
	return j.span(i, p.next, max)
}

// deliver ships b ([from, end) of journal j, cursor i) until it is taken,
// refused for good, too old, dropped from the backlog, or the sink stops.
func (k *sink) deliver(ctx context.Context, j *journal, i int, from, end uint64, b *batch) {
	n := len(b.entries)
	delay := k.sh.RetryMin
	for attempt := 1; ; attempt++ {
		err := k.t.ship(ctx, b)
		var perm *permanentError
		switch {
		case err != nil && ctx.Err() != nil:
			return // shipped again after the next start
		case err == nil:
			k.st.Lock()
			k.st.shipped += uint64(n)
			k.st.lastSuccess = k.sh.Now()
			k.st.Unlock()
			k.count(ResultOK, n)
			j.done(i, end)
			return
		case errors.As(err, &perm):
			k.st.Lock()
			k.st.rejected += uint64(n)
			k.st.Unlock()
			k.count(ResultRejected, n)
			k.failed(fmt.Errorf("%d records refused for good, dropped: %w", n, err))
			j.done(i, end)
			return
		}
		k.count(ResultRetried, n)
		k.failed(err)
		if age := k.sh.Now().Sub(b.oldest()); age > k.opts.MaxRetryAge {
			k.st.Lock()
			k.st.expired += uint64(n)
			k.st.Unlock()
			k.count(ResultExpired, n)
			k.log.Error("event records dropped: not shipped within max_retry_age", "records", n,
				"max_retry_age", k.opts.MaxRetryAge, "attempts", attempt)
			j.done(i, end)
			return
		}
		// Exponential back-off with jitter (±25%), stopped early when the
		// backlog limit drops this batch.
		wait := delay - delay/4 + rand.N(delay/2+1)
		delay = min(2*delay, k.sh.RetryMax)
		timer := time.NewTimer(wait)
		for waiting := true; waiting; {
			changed := j.position(i).changed
			select {
			case <-timer.C:
				waiting = false
			case <-ctx.Done():
				timer.Stop()
				return
			case <-changed:
				if j.position(i).next != from {
					timer.Stop()
					return
				}
			}
		}
	}
}

func (k *sink) count(result string, n int) {
	if result == ResultDropped {
		k.st.Lock()
		k.st.dropped += uint64(n)
		k.st.Unlock()
	}
	k.sh.Count(k.opts.Name, result, n)
}

func (k *sink) failed(err error) {
	k.st.Lock()
	k.st.lastError, k.st.lastErrorAt = err.Error(), k.sh.Now()
	k.st.Unlock()
	k.log.Warn("event sink", "err", err)
}

func (k *sink) status() SinkStatus {
	s := SinkStatus{Name: k.opts.Name, Kind: k.opts.Kind, URL: redactURL(k.opts.URL), Backlog: k.backlog()}
	k.st.Lock()
	defer k.st.Unlock()
	s.Shipped, s.Rejected, s.Expired, s.Dropped = k.st.shipped, k.st.rejected, k.st.expired, k.st.dropped
	if t := k.st.lastSuccess; !t.IsZero() {
		s.LastSuccess = &t
	}
	if t := k.st.lastErrorAt; !t.IsZero() {
		s.LastErrorAt = &t
		s.LastError = k.st.lastError
	}
	return s
}
