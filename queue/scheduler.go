package queue

import (
	"context"
	"slices"
	"sync"
	"time"
)

// Scheduler holds delivery work items until they are due and hands them out
// in due order (items due at the same instant in the order they were
// scheduled). It is a 4-ary min-heap under one mutex: Schedule and pop are
// O(log₄ n), there is no goroutine or timer per item, and a million items
// cost about 24 bytes each plus the item itself. Schedule may be called
// from any goroutine; one goroutine runs Run.
//
// The engine keeps one Scheduler per scheduled queue or one for all of them;
// an item is typically a message id or a small struct naming the message and
// its queue. To reschedule or cancel, callers keep a generation number in
// the item and ignore stale ones when they come out.
type Scheduler[T any] struct {
	clock Clock
	wake  chan struct{} // a Run waiting should look again

	mu   sync.Mutex
	heap []schedEntry[T]
	seq  uint64
}

type schedEntry[T any] struct {
	due  int64 // Unix nanoseconds
	seq  uint64
	item T
}

func (e *schedEntry[T]) less(o *schedEntry[T]) bool {
	return e.due < o.due || e.due == o.due && e.seq < o.seq
}

// NewScheduler returns an empty scheduler that reads time from clock
// (SystemClock when nil).
func NewScheduler[T any](clock Clock) *Scheduler[T] {
	if clock == nil {
		clock = SystemClock()
	}
	return &Scheduler[T]{clock: clock, wake: make(chan struct{}, 1)}
}

// Schedule adds item, due at due (a zero or past time: due now).
func (s *Scheduler[T]) Schedule(item T, due time.Time) {
	var at int64
	if !due.IsZero() {
		at = due.UnixNano()
	}
	s.mu.Lock()
	s.seq++
	s.heap = append(s.heap, schedEntry[T]{due: at, seq: s.seq, item: item})
	first := s.up(len(s.heap)-1) == 0
	s.mu.Unlock()
	if first {
		// The new item is the earliest: a sleeping Run must re-arm its timer.
		select {
		case s.wake <- struct{}{}:
		default:
		}
	}
}

// Grow makes room for n more items, so that loading a large queue does
// not copy the heap as it grows.
func (s *Scheduler[T]) Grow(n int) {
	s.mu.Lock()
	s.heap = slices.Grow(s.heap, n)
	s.mu.Unlock()
}

// ScheduleBatch adds items[i], due at due[i], for every i, under one lock:
// how a queue is loaded at startup. When the batch is at least as large as
// the heap already is, the heap is rebuilt bottom-up in O(n) (Floyd's
// method) instead of sifting each item up. Items due at the same instant
// keep their batch order. It panics when the slices differ in length.
func (s *Scheduler[T]) ScheduleBatch(items []T, due []time.Time) {
	if len(items) != len(due) {
		panic("queue: ScheduleBatch: items and due differ in length")
	}
	if len(items) == 0 {
		return
	}
	s.mu.Lock()
	var before int64
	if len(s.heap) > 0 {
		before = s.heap[0].due
	}
	old := len(s.heap)
	for i, it := range items {
		var at int64
		if !due[i].IsZero() {
			at = due[i].UnixNano()
		}
		s.seq++
		s.heap = append(s.heap, schedEntry[T]{due: at, seq: s.seq, item: it})
	}
	if len(items) >= old {
		s.heapify()
	} else {
		for i := old; i < len(s.heap); i++ {
			s.up(i)
		}
	}
	first := old == 0 || s.heap[0].due < before
	s.mu.Unlock()
	if first {
		select {
		case s.wake <- struct{}{}:
		default:
		}
	}
}

// heapify restores the heap order of the whole slice, sifting down every
// inner node from the last one to the root.
func (s *Scheduler[T]) heapify() {
	n := len(s.heap)
	for i := (n - 2) / 4; i >= 0; i-- {
		s.down(i, n)
	}
}

// Len returns the number of items waiting.
func (s *Scheduler[T]) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.heap)
}

// NextDue returns the due time of the earliest item, and false when empty.
func (s *Scheduler[T]) NextDue() (time.Time, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.heap) == 0 {
		return time.Time{}, false
	}
	return time.Unix(0, s.heap[0].due), true
}

// PopDue appends to dst, in due order, up to max items (all when max <= 0)
// that are due at now, removes them, and returns dst.
func (s *Scheduler[T]) PopDue(now time.Time, dst []T, max int) []T {
	at := now.UnixNano()
	s.mu.Lock()
	defer s.mu.Unlock()
	for len(s.heap) > 0 && s.heap[0].due <= at && (max <= 0 || len(dst) < max) {
		dst = append(dst, s.pop())
	}
	return dst
}

// runBatch is how many due items Run takes per lock.
const runBatch = 256

// Run calls fn, on the calling goroutine, for every item as it becomes due,
// until ctx is done; it returns ctx.Err(). Items scheduled while Run sleeps
// wake it when they are due earlier than what it waits for.
func (s *Scheduler[T]) Run(ctx context.Context, fn func(T)) error {
	batch := make([]T, 0, runBatch)
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		now := s.clock.Now()
		batch = s.PopDue(now, batch[:0], runBatch)
		if len(batch) > 0 {
			for _, it := range batch {
				fn(it)
			}
			clear(batch) // drop references to handed-out items
			continue
		}
		var timer Timer
		var fire <-chan time.Time
		if next, ok := s.NextDue(); ok {
			timer = s.clock.NewTimer(next.Sub(now))
			fire = timer.C()
		}
		select {
		case <-ctx.Done():
		case <-s.wake:
		case <-fire:
		}
		if timer != nil {
			timer.Stop()
		}
	}
}

// down moves heap[i] towards the leaves of heap[:n].
func (s *Scheduler[T]) down(i, n int) {
	h := s.heap
	e := h[i]
	for {
		c := 4*i + 1
		if c >= n {
			break
		}
		best := c
		for j := c + 1; j < c+4 && j < n; j++ {
			if h[j].less(&h[best]) {
				best = j
			}
		}
		if !h[best].less(&e) {
			break
		}
		h[i] = h[best]
		i = best
	}
	h[i] = e
}

// up moves heap[i] towards the root and returns its final index.
func (s *Scheduler[T]) up(i int) int {
	h := s.heap
	e := h[i]
	for i > 0 {
		p := (i - 1) / 4
		if !e.less(&h[p]) {
			break
		}
		h[i] = h[p]
		i = p
	}
	h[i] = e
	return i
}

// pop removes and returns the root item.
func (s *Scheduler[T]) pop() T {
	h := s.heap
	item := h[0].item
	n := len(h) - 1
	last := h[n]
	var zero schedEntry[T]
	h[n] = zero
	s.heap = h[:n]
	if n == 0 {
		return item
	}
	s.heap[0] = last
	s.down(0, n)
	// Give memory back after a large burst has drained.
	if cap(s.heap) > 1024 && n < cap(s.heap)/4 {
		s.heap = append(make([]schedEntry[T], 0, cap(s.heap)/2), s.heap...)
	}
	return item
}
