package events

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"gannet/engine/logrec"
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

// sink is one [[event_sink]] at run time.
type sink struct {
	opts  SinkOptions
	sh    *Options
	j     *journal
	t     transport
	types map[string]bool
	log   *slog.Logger

	// Records taken by enqueue, not yet in the journal.
	mu       sync.Mutex
	pending  []byte
	npending int
	closed   bool
	wake     chan struct{}

	cancel   context.CancelFunc
	ctx      context.Context
	wg       sync.WaitGroup
	started  bool
	stopOnce sync.Once
	stopErr  error

	st struct {
		sync.Mutex
		shipped, rejected, expired, dropped uint64
		lastSuccess, lastErrorAt            time.Time
		lastError                           string
	}
}

func newSink(o SinkOptions, j *journal, sh *Options) *sink {
	k := &sink{opts: o, sh: sh, j: j, wake: make(chan struct{}, 1),
		log: sh.Logger.With("part", "events", "sink", o.Name)}
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

// takes reports whether the sink wants r (types, tenant).
func (k *sink) takes(r *logrec.Record) bool {
	if k.types != nil && !k.types[string(r.Type)] {
		return false
	}
	return k.opts.Tenant == "" || k.opts.Tenant == r.Tenant
}

// enqueue hands a journal line to the writer goroutine, or drops it when
// the writer is Options.Pending records behind.
func (k *sink) enqueue(line []byte) {
	k.mu.Lock()
	if k.closed || k.npending >= k.sh.Pending {
		k.mu.Unlock()
		k.count(ResultDropped, 1)
		return
	}
	k.pending = append(k.pending, line...)
	k.npending++
	first := k.npending == 1
	k.mu.Unlock()
	if first {
		select {
		case k.wake <- struct{}{}:
		default:
		}
	}
}

func (k *sink) take(spare []byte) ([]byte, int, bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	b, n := k.pending, k.npending
	k.pending, k.npending = spare[:0], 0
	return b, n, k.closed
}

func (k *sink) start() {
	k.started = true
	k.wg.Add(2)
	go k.writeLoop()
	go k.shipLoop()
}

// close stops both goroutines (the writer after writing what is pending)
// and closes the journal.
func (k *sink) close() error {
	k.stopOnce.Do(func() {
		k.mu.Lock()
		k.closed = true
		k.mu.Unlock()
		k.cancel()
		select {
		case k.wake <- struct{}{}:
		default:
		}
		if k.started {
			k.wg.Wait()
		} else {
			b, n, _ := k.take(nil)
			k.write(b, n)
		}
		k.t.close()
		k.stopErr = k.j.close()
	})
	return k.stopErr
}

// writeLoop moves the pending records into the journal, syncs it every
// syncEvery, and trims it to max_backlog.
func (k *sink) writeLoop() {
	defer k.wg.Done()
	tick := time.NewTicker(syncEvery)
	defer tick.Stop()
	save := time.NewTicker(cursorEvery)
	defer save.Stop()
	var spare []byte
	for {
		select {
		case <-k.wake:
			b, n, closed := k.take(spare)
			k.write(b, n)
			spare = b
			if cap(spare) > 4<<20 {
				spare = nil
			}
			if closed {
				return
			}
		case <-tick.C:
			if err := k.j.sync(); err != nil {
				k.failed(fmt.Errorf("journal sync: %w", err))
			}
		case <-save.C:
			if err := k.j.saveCursor(); err != nil {
				k.failed(fmt.Errorf("journal cursor: %w", err))
			}
		}
	}
}

func (k *sink) write(b []byte, n int) {
	if n == 0 {
		return
	}
	if err := k.j.append(b, n); err != nil {
		k.count(ResultDropped, n)
		k.failed(fmt.Errorf("journal: %w (%d records dropped)", err, n))
		return
	}
	if dropped := k.j.trim(uint64(k.opts.MaxBacklog)); dropped > 0 {
		k.count(ResultDropped, int(dropped))
		k.log.Warn("event backlog full: oldest records dropped", "dropped", dropped, "max_backlog", k.opts.MaxBacklog)
	}
}

// shipLoop ships the journal from its cursor, one batch at a time, until
// the sink closes.
func (k *sink) shipLoop() {
	defer k.wg.Done()
	rd := &reader{j: k.j}
	defer rd.close()
	ctx := k.ctx
	for ctx.Err() == nil {
		next, head, batchEnd, changed := k.j.positions()
		if next == head {
			select {
			case <-changed:
			case <-ctx.Done():
			}
			continue
		}
		end := batchEnd
		if end <= next {
			end = k.fill(ctx, next, head, changed)
			if ctx.Err() != nil {
				return
			}
			if end <= next {
				continue // the backlog limit dropped them meanwhile
			}
		}
		b, err := k.read(rd, next, end)
		if err != nil {
			if n, _, _, _ := k.j.positions(); n != next {
				continue // dropped meanwhile (max_backlog)
			}
			k.failed(fmt.Errorf("journal read: %w", err))
			// An unreadable journal cannot be shipped: skip the batch
			// rather than stop the sink.
			k.count(ResultDropped, int(end-next))
			k.j.done(end)
			continue
		}
		if ok, err := k.j.startBatch(next, end); err != nil {
			k.failed(fmt.Errorf("journal cursor: %w", err))
		} else if !ok {
			continue
		}
		k.deliver(ctx, next, end, b)
	}
}

// fill decides the end of the next batch: up to MaxBatch records from
// next, waiting up to MaxDelay for more when there are fewer.
func (k *sink) fill(ctx context.Context, next, head uint64, changed <-chan struct{}) uint64 {
	max := uint64(k.opts.MaxBatch)
	if head-next < max && max > 1 && k.opts.MaxDelay > 0 {
		timer := time.NewTimer(k.opts.MaxDelay)
		defer timer.Stop()
	wait:
		for head-next < max {
			select {
			case <-changed:
				var n uint64
				n, head, _, changed = k.j.positions()
				if n != next {
					return next // dropped meanwhile: start again
				}
			case <-timer.C:
				break wait
			case <-ctx.Done():
				return next
			}
		}
	}
	return next + min(head-next, max)
}

// read reads records [from, end).
func (k *sink) read(rd *reader, from, end uint64) (*batch, error) {
	b := &batch{entries: make([]entry, 0, end-from)}
	for seq := from; seq < end; seq++ {
		line, err := rd.read(seq)
		if err != nil {
			return nil, err
		}
		e, err := parseLine(line)
		if err != nil {
			return nil, fmt.Errorf("record %d: %w", seq, err)
		}
		b.entries = append(b.entries, e)
	}
	if len(b.entries) == 1 {
		b.key = b.entries[0].uuid
	} else {
		b.key = batchKey(b.entries)
	}
	return b, nil
}

// deliver ships b ([from, end) of the journal) until it is taken, refused
// for good, too old, dropped from the backlog, or the sink closes.
func (k *sink) deliver(ctx context.Context, from, end uint64, b *batch) {
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
			k.finish(end)
			return
		case errors.As(err, &perm):
			k.st.Lock()
			k.st.rejected += uint64(n)
			k.st.Unlock()
			k.count(ResultRejected, n)
			k.failed(fmt.Errorf("%d records refused for good, dropped: %w", n, err))
			k.finish(end)
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
			k.finish(end)
			return
		}
		// Exponential back-off with jitter (±25%), stopped early when the
		// backlog limit drops this batch.
		wait := delay - delay/4 + rand.N(delay/2+1)
		delay = min(2*delay, k.sh.RetryMax)
		timer := time.NewTimer(wait)
		for waiting := true; waiting; {
			_, _, _, changed := k.j.positions()
			select {
			case <-timer.C:
				waiting = false
			case <-ctx.Done():
				timer.Stop()
				return
			case <-changed:
				if next, _, _, _ := k.j.positions(); next != from {
					timer.Stop()
					return
				}
			}
		}
	}
}

func (k *sink) finish(end uint64) { k.j.done(end) }

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
	s := SinkStatus{Name: k.opts.Name, Kind: k.opts.Kind, URL: redactURL(k.opts.URL), Backlog: k.j.backlog()}
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
