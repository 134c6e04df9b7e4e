package queue

import (
	"context"
	"math/rand/v2"
	"sort"
	"testing"
	"time"

	"gannet/queue/queuetest"
)

var t0 = time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)

// runScheduler starts Run on a goroutine and returns the channel it
// delivers items on; the test's Cleanup stops it.
func runScheduler[T any](t *testing.T, s *Scheduler[T]) <-chan T {
	t.Helper()
	out := make(chan T, 1<<16)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx, func(it T) { out <- it }) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Error("Run did not return after cancel")
		}
	})
	return out
}

// waitSleeping waits until Run sleeps on a fake timer.
func waitSleeping(t *testing.T, c *queuetest.FakeClock) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); c.Timers() == 0; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("Run never went to sleep")
		}
	}
}

func expectNone[T any](t *testing.T, out <-chan T) {
	t.Helper()
	select {
	case it := <-out:
		t.Fatalf("got %v before it was due", it)
	case <-time.After(20 * time.Millisecond):
	}
}

func expect[T comparable](t *testing.T, out <-chan T, want ...T) {
	t.Helper()
	for _, w := range want {
		select {
		case got := <-out:
			if got != w {
				t.Fatalf("got %v, want %v", got, w)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("timed out waiting for %v", w)
		}
	}
}

func TestSchedulerDueOrder(t *testing.T) {
	c := queuetest.NewFakeClock(t0)
	s := NewScheduler[string](c)
	s.Schedule("c", t0.Add(3*time.Minute))
	s.Schedule("a", t0.Add(1*time.Minute))
	s.Schedule("b", t0.Add(2*time.Minute))
	s.Schedule("b2", t0.Add(2*time.Minute)) // same instant: FIFO
	s.Schedule("now", time.Time{})
	if s.Len() != 5 {
		t.Fatalf("Len = %d", s.Len())
	}
	out := runScheduler(t, s)
	expect(t, out, "now")
	waitSleeping(t, c)
	expectNone(t, out)
	c.Advance(time.Minute)
	expect(t, out, "a")
	expectNone(t, out)
	c.Advance(10 * time.Minute)
	expect(t, out, "b", "b2", "c")
	if s.Len() != 0 {
		t.Fatalf("Len after draining = %d", s.Len())
	}
}

func TestSchedulerEarlierItemWakesRun(t *testing.T) {
	c := queuetest.NewFakeClock(t0)
	s := NewScheduler[int](c)
	s.Schedule(1, t0.Add(time.Hour))
	out := runScheduler(t, s)
	waitSleeping(t, c) // asleep until t0+1h
	s.Schedule(2, t0.Add(time.Second))
	s.Schedule(3, t0) // due right now, while Run sleeps
	expect(t, out, 3)
	c.Advance(time.Second)
	expect(t, out, 2)
	expectNone(t, out)
	c.Advance(time.Hour)
	expect(t, out, 1)
}

func TestScheduler100k(t *testing.T) {
	c := queuetest.NewFakeClock(t0)
	s := NewScheduler[int](c)
	const n = 100_000
	r := rand.New(rand.NewPCG(1, 2))
	dues := make([]time.Duration, n)
	for i := range dues {
		dues[i] = time.Duration(r.IntN(3600)) * time.Second
		s.Schedule(i, t0.Add(dues[i]))
	}
	if s.Len() != n {
		t.Fatalf("Len = %d", s.Len())
	}
	// Half an hour in, exactly the items due by then come out, in order.
	var got []int
	c.Advance(30 * time.Minute)
	got = s.PopDue(c.Now(), got, 0)
	want := 0
	for _, d := range dues {
		if d <= 30*time.Minute {
			want++
		}
	}
	if len(got) != want {
		t.Fatalf("PopDue at 30m returned %d items, want %d", len(got), want)
	}
	c.Advance(time.Hour)
	got = s.PopDue(c.Now(), got, 0)
	if len(got) != n || s.Len() != 0 {
		t.Fatalf("popped %d of %d, %d left", len(got), n, s.Len())
	}
	if !sort.SliceIsSorted(got, func(i, j int) bool {
		return dues[got[i]] < dues[got[j]] || dues[got[i]] == dues[got[j]] && got[i] < got[j]
	}) {
		t.Fatal("items not in (due, scheduling) order")
	}
}

func TestSchedulerConcurrentSchedule(t *testing.T) {
	c := queuetest.NewFakeClock(t0)
	s := NewScheduler[int](c)
	out := runScheduler(t, s)
	const writers, each = 8, 500
	done := make(chan struct{})
	for w := range writers {
		go func() {
			for i := range each {
				s.Schedule(w*each+i, t0.Add(time.Duration(i%10)*time.Second))
			}
			done <- struct{}{}
		}()
	}
	for range writers {
		<-done
	}
	c.Advance(time.Minute)
	seen := map[int]bool{}
	for len(seen) < writers*each {
		select {
		case it := <-out:
			if seen[it] {
				t.Fatalf("item %d handed out twice", it)
			}
			seen[it] = true
		case <-time.After(5 * time.Second):
			t.Fatalf("only %d of %d items came out", len(seen), writers*each)
		}
	}
}

func TestSchedulerRealClock(t *testing.T) {
	s := NewScheduler[string](nil)
	out := runScheduler(t, s)
	start := time.Now()
	s.Schedule("later", start.Add(30*time.Millisecond))
	expect(t, out, "later")
	if el := time.Since(start); el < 30*time.Millisecond {
		t.Fatalf("item came out after %v, before it was due", el)
	}
}

func BenchmarkScheduler(b *testing.B) {
	// Steady state with 1M items waiting: schedule one, pop one.
	s := NewScheduler[uint64](queuetest.NewFakeClock(t0))
	r := rand.New(rand.NewPCG(3, 4))
	const n = 1_000_000
	for i := range n {
		s.Schedule(uint64(i), t0.Add(time.Duration(r.IntN(3600))*time.Second))
	}
	buf := make([]uint64, 0, 1)
	now := t0.Add(2 * time.Hour)
	b.ReportAllocs()
	b.ResetTimer()
	i := uint64(n)
	for b.Loop() {
		s.Schedule(i, t0.Add(time.Duration(r.IntN(3600))*time.Second))
		buf = s.PopDue(now, buf[:0], 1)
		i++
	}
}

// TestSchedulerBatchOrder: items loaded in batches (the first rebuilt
// bottom-up, later smaller ones sifted up, some mixed with single
// Schedules) come out exactly as if each had been scheduled alone: by due
// time, then in scheduling order.
func TestSchedulerBatchOrder(t *testing.T) {
	c := queuetest.NewFakeClock(t0)
	s := NewScheduler[int](c)
	s.Grow(50_000)
	r := rand.New(rand.NewPCG(5, 6))
	const n = 50_000
	dues := make([]time.Duration, n)
	var items []int
	var at []time.Time
	flush := func() {
		s.ScheduleBatch(items, at)
		items, at = items[:0], at[:0]
	}
	for i := range n {
		dues[i] = time.Duration(r.IntN(600)) * time.Second
		if i%1000 == 999 {
			flush()
			s.Schedule(i, t0.Add(dues[i]))
			continue
		}
		items = append(items, i)
		at = append(at, t0.Add(dues[i]))
		if i == 30_000 || len(items) == 700 {
			flush()
		}
	}
	flush()
	if s.Len() != n {
		t.Fatalf("Len = %d, want %d", s.Len(), n)
	}
	got := s.PopDue(t0.Add(time.Hour), nil, 0)
	if len(got) != n {
		t.Fatalf("popped %d of %d", len(got), n)
	}
	if !sort.SliceIsSorted(got, func(i, j int) bool {
		return dues[got[i]] < dues[got[j]] || dues[got[i]] == dues[got[j]] && got[i] < got[j]
	}) {
		t.Fatal("items not in (due, scheduling) order")
	}
}

// TestSchedulerBatchWakesRun: a batch with an item earlier than what Run
// sleeps for wakes it.
func TestSchedulerBatchWakesRun(t *testing.T) {
	c := queuetest.NewFakeClock(t0)
	s := NewScheduler[string](c)
	s.Schedule("late", t0.Add(time.Hour))
	out := runScheduler(t, s)
	waitSleeping(t, c)
	s.ScheduleBatch([]string{"now", "soon"}, []time.Time{{}, t0.Add(time.Second)})
	expect(t, out, "now")
	c.Advance(time.Second)
	expect(t, out, "soon")
	expectNone(t, out)
}

// BenchmarkSchedulerLoad measures loading a queue of 1M items in batches of
// 1024 (as delivery.Loop.Load does at startup), per item.
func BenchmarkSchedulerLoad(b *testing.B) {
	r := rand.New(rand.NewPCG(7, 8))
	const n, batch = 1 << 20, 1024
	at := make([]time.Time, batch)
	items := make([]uint64, batch)
	b.ReportAllocs()
	for b.Loop() {
		s := NewScheduler[uint64](queuetest.NewFakeClock(t0))
		s.Grow(n)
		for i := 0; i < n; i += batch {
			for k := range batch {
				items[k] = uint64(i + k)
				at[k] = t0.Add(time.Duration(r.IntN(3600)) * time.Second)
			}
			s.ScheduleBatch(items, at)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/item")
}
