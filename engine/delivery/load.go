package delivery

import (
	"time"

	"gannet/queue"
)

// Source is the spool as Load reads it (*queue.Spool has it).
type Source interface {
	// ScanReused calls fn for every message in the spool, passing the same
	// *queue.Message each time (its strings may be kept).
	ScanReused(fn func(*queue.Message) error) error
	// Stats gives the number of messages (Live), to size the tables.
	Stats() queue.Stats
}

// loadBatch is how many messages Load hands over per lock of the loop and
// of a scheduler.
const loadBatch = 1024

// Load takes over every message of the spool at startup, like Enqueue for
// each but built for a queue of millions: the tables are sized from
// src.Stats().Live up front; each message is kept packed (about 60 bytes
// of metadata, see queue.Packed) with no work item, the scheduler holding
// the message itself until it comes due; and messages are handed over in
// batches, each under one lock of the loop and one of its scheduler. seen,
// when not nil, is called with every message first (the engine counts
// pending recipients per domain); it must not keep the *queue.Message.
//
// Load may run while mail is taken (Enqueue) and before Start. While it
// runs, Messages counts the messages still to load, and the admin views
// (Summary, Inspect, Bounce) wait for it to end, so that they never see a
// half-loaded queue. It returns the number of messages read, and stops
// with ErrStopped once Stop has begun.
func (l *Loop) Load(src Source, seen func(*queue.Message)) (int, error) {
	l.loadMu.Lock()
	defer l.loadMu.Unlock()
	live := int(max(src.Stats().Live, 0))
	l.mu.Lock()
	if l.stopping {
		l.mu.Unlock()
		return 0, ErrStopped
	}
	l.msgs.growLoaded(live)
	l.loadLeft.Store(int64(live))
	l.mu.Unlock()
	defer l.loadLeft.Store(0)
	// Most queued mail is bulk; the high lane grows as needed.
	l.sched[1].Grow(live)

	var (
		batch   = make([]*msgState, 0, loadBatch)
		dues    = make([]time.Time, 0, loadBatch)
		refs    [2][]schedRef
		at      [2][]time.Time
		domains []string
		n       int
	)
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		l.mu.Lock()
		if l.stopping {
			l.mu.Unlock()
			return ErrStopped
		}
		extra := 0
		for i, ms := range batch {
			if l.msgs.byID[ms.id] != nil {
				continue // enqueued meanwhile (taken after the scan began)
			}
			l.msgs.appendLoaded(ms)
			extra += ms.items - 1
			lane := ms.lane()
			refs[lane] = append(refs[lane], schedRef{ms: ms})
			at[lane] = append(at[lane], dues[i])
		}
		l.loadLeft.Add(-int64(len(batch)))
		l.mu.Unlock()
		l.unsplit.Add(int64(extra))
		for lane := range refs {
			l.sched[lane].ScheduleBatch(refs[lane], at[lane])
			clear(refs[lane])
			refs[lane], at[lane] = refs[lane][:0], at[lane][:0]
		}
		clear(batch)
		batch, dues = batch[:0], dues[:0]
		return nil
	}
	err := src.ScanReused(func(m *queue.Message) error {
		n++
		if seen != nil {
			seen(m)
		}
		items := countDomains(m, &domains)
		if items == 0 {
			// Nothing pending: a leftover of an interrupted removal.
			l.loadLeft.Add(-1)
			if err := l.opts.Store.Remove(m.ID); err != nil {
				l.log.Error("delivery: removing finished message", "id", m.ID, "err", err)
			}
			return nil
		}
		batch = append(batch, &msgState{
			id:     m.ID,
			env:    l.envs.get(m.Tenant, m.Campaign),
			high:   m.Priority > 0,
			packed: l.packer.Pack(m),
			items:  items,
			whole:  true,
		})
		dues = append(dues, m.NextDue)
		if len(batch) == loadBatch {
			return flush()
		}
		return nil
	})
	if ferr := flush(); err == nil {
		err = ferr
	}
	return n, err
}

// waitLoaded returns when no Load is running.
func (l *Loop) waitLoaded() {
	l.loadMu.RLock()
	//lint:ignore SA2001 an empty critical section: waiting is the point
	l.loadMu.RUnlock()
}
