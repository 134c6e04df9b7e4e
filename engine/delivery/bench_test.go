package delivery

import (
	"context"
	"strconv"
	"sync"
	"testing"
	"time"

	"gannet/queue"
)

// countingStore is a Store that only counts, for the loop benchmark.
type countingStore struct {
	body    []byte
	mu      sync.Mutex
	removed int
	cond    *sync.Cond
}

func (s *countingStore) Body(*queue.Message) ([]byte, error) { return s.body, nil }
func (s *countingStore) Update(*queue.Message) error         { return nil }
func (s *countingStore) Quarantine(string) error             { return queue.ErrNotCorrupt }
func (s *countingStore) Remove(string) error {
	s.mu.Lock()
	s.removed++
	s.cond.Broadcast()
	s.mu.Unlock()
	return nil
}

// BenchmarkLoop measures the loop's own cost per message (schedule, route,
// ready queue, worker, outcome, records) with an instant transport.
func BenchmarkLoop(b *testing.B) {
	st := &countingStore{body: []byte("x\r\n")}
	st.cond = sync.NewCond(&st.mu)
	rec := newRecorder()
	l := New(Options{
		Store: st, Router: &mapRouter{}, Transport: &funcTransport{}, Record: rec,
		Retry: queue.RetryPolicy{Initial: time.Minute},
	})
	l.Start()
	defer l.Stop(context.Background())
	now := time.Now()
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		m := &queue.Message{ID: "m" + strconv.Itoa(n), From: "s@src.test", Created: now,
			Recipients: []queue.Recipient{{Addr: "a@d" + strconv.Itoa(n%50) + ".test"}}}
		n++
		l.Enqueue(m)
		if n%1000 == 0 {
			rec.mu.Lock()
			rec.recs = rec.recs[:0]
			rec.mu.Unlock()
		}
	}
	st.mu.Lock()
	for st.removed < n {
		st.cond.Wait()
	}
	st.mu.Unlock()
}
