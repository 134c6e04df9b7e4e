package delivery

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"testing"
	"time"

	"gannet/engine/logrec"
	"gannet/engine/outbound"
	"gannet/queue"
	"gannet/queue/queuetest"
	"gannet/resolver"
)

// loadHarness is a loop over a real spool in a temp dir, with a fake
// clock, a table router and a scripted transport.
type loadHarness struct {
	spool *queue.Spool
	loop  *Loop
	tr    *funcTransport
	rec   *recorder
	clock *queuetest.FakeClock
}

func newLoadHarness(t testing.TB, fill func(sp *queue.Spool, now time.Time)) *loadHarness {
	t.Helper()
	sp, err := queue.Open(queue.Options{Dir: t.TempDir(), MinFreeBytes: -1})
	if err != nil {
		t.Fatal(err)
	}
	h := &loadHarness{spool: sp, tr: &funcTransport{}, rec: newRecorder(),
		clock: queuetest.NewFakeClock(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))}
	fill(sp, h.clock.Now())
	h.loop = New(Options{
		Store: sp, Router: &mapRouter{routes: map[string]*resolver.Route{}}, Transport: h.tr, Record: h.rec,
		Clock: h.clock, Retry: queue.RetryPolicy{Initial: 5 * time.Minute, Max: time.Hour, MaxAge: 72 * time.Hour},
	})
	t.Cleanup(func() {
		h.loop.Stop(context.Background())
		sp.Close()
	})
	return h
}

func spoolMessage(t testing.TB, sp *queue.Spool, m *queue.Message) {
	t.Helper()
	if err := sp.Append(m, []byte("Subject: "+m.ID+"\r\n\r\nbody\r\n")); err != nil {
		t.Fatal(err)
	}
}

func (h *loadHarness) inSpool(t *testing.T) map[string]*queue.Message {
	t.Helper()
	out := map[string]*queue.Message{}
	if err := h.spool.Scan(func(m *queue.Message) error { out[m.ID] = m; return nil }); err != nil {
		t.Fatal(err)
	}
	return out
}

func (h *loadHarness) packed(id string) bool {
	h.loop.mu.Lock()
	ms := h.loop.msgs.get(id)
	h.loop.mu.Unlock()
	if ms == nil {
		return false
	}
	ms.mu.Lock()
	defer ms.mu.Unlock()
	return ms.isPacked()
}

// TestLoadDeliversWhenDue: Load takes a spool of deferred, due, multi-domain
// and finished messages; they are counted and inspectable before they are
// split into work items, and each is delivered when due, with its history.
func TestLoadDeliversWhenDue(t *testing.T) {
	h := newLoadHarness(t, func(sp *queue.Spool, now time.Time) {
		a := newMessage("a", now.Add(-time.Hour), "x@later.test")
		a.NextDue, a.Attempts = now.Add(10*time.Minute), 1
		a.Recipients[0].Attempts, a.Recipients[0].LastReply = 1, "451 4.3.0 receiver down"
		b := newMessage("b", now, "p@one.test", "q@two.test", "r@one.test")
		b.Priority = 1
		c := newMessage("c", now, "done@one.test")
		c.Recipients[0].State = queue.Delivered // a removal that was interrupted
		d := newMessage("d", now, "s@two.test")
		for _, m := range []*queue.Message{a, b, c, d} {
			spoolMessage(t, sp, m)
		}
	})
	var seen []string
	n, err := h.loop.Load(h.spool, func(m *queue.Message) { seen = append(seen, m.ID) })
	if err != nil || n != 4 || fmt.Sprint(seen) != "[a b c d]" {
		t.Fatalf("Load = %d, %v; seen %v", n, err, seen)
	}
	if _, ok := h.inSpool(t)["c"]; ok {
		t.Error("the finished message is still in the spool")
	}
	if got := h.loop.Messages(); got != 3 {
		t.Errorf("Messages = %d, want 3", got)
	}
	if s, _ := h.loop.QueueDepth(); s != 4 {
		t.Errorf("scheduled depth %d, want 4 work items (a, b twice, d)", s)
	}
	if !h.packed("a") || !h.packed("b") {
		t.Error("loaded messages are not packed")
	}
	info, ok := h.loop.Inspect(context.Background(), "a")
	if !ok || info.Message.ID != "a" || info.Message.Attempts != 1 || info.Message.Recipients[0].LastReply != "451 4.3.0 receiver down" ||
		info.Message.Tenant != "acme" || info.Message.Segment == 0 {
		t.Errorf("Inspect(a) = %+v, %v", info.Message, ok)
	}
	if sum := h.loop.Summary(""); sum.Messages != 3 || sum.Recipients != 5 || sum.Scheduled != 4 {
		t.Errorf("summary: %d messages, %d recipients, %d scheduled; want 3, 5, 4", sum.Messages, sum.Recipients, sum.Scheduled)
	}

	h.loop.Start()
	recs := h.rec.waitFor(t, 4)
	if len(h.tr.envelopes()) != 3 {
		t.Errorf("%d transactions, want 3 (b at two domains, d)", len(h.tr.envelopes()))
	}
	for _, r := range recs {
		if r.Type != logrec.Delivery || r.ID == "a" {
			t.Errorf("record %s %s %s before a's retry time", r.Type, r.ID, r.Recipient)
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for h.clock.Timers() == 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	h.clock.Advance(10 * time.Minute)
	recs = h.rec.waitFor(t, 5)
	if r := recs[4]; r.ID != "a" || r.Type != logrec.Delivery || r.NumAttempts != 2 {
		t.Errorf("last record %+v, want a delivered on attempt 2", r)
	}
	waitUntil(t, func() bool { return len(h.inSpool(t)) == 0 })
	waitUntil(t, func() bool { return h.loop.Messages() == 0 })
}

// TestRetryWaitsPacked: a message deferred again waits packed, with the
// scheduler holding the message; its retry comes at the right time and
// its state survived packing.
func TestRetryWaitsPacked(t *testing.T) {
	h := newLoadHarness(t, func(sp *queue.Spool, now time.Time) {
		spoolMessage(t, sp, newMessage("m", now, "a@x.test", "b@x.test"))
	})
	var mu sync.Mutex
	attempt := 0
	h.tr.fn = func(_ *resolver.Route, env *outbound.Envelope) outbound.Outcome {
		mu.Lock()
		defer mu.Unlock()
		attempt++
		if attempt == 1 {
			o := outcomeAll(env, outbound.Transient, reply(451, "4.7.1", "greylisted"))
			o.Results[0].Status, o.Results[0].Reply = outbound.Delivered, reply(250, "2.0.0", "OK")
			return o
		}
		return outcomeAll(env, outbound.Delivered, reply(250, "2.0.0", "OK"))
	}
	if _, err := h.loop.Load(h.spool, nil); err != nil {
		t.Fatal(err)
	}
	h.loop.Start()
	h.rec.waitFor(t, 2)
	// Packed under the message lock; scheduled right after.
	waitUntil(t, func() bool {
		s, r := h.loop.QueueDepth()
		return h.packed("m") && s == 1 && r == 0
	})
	info, _ := h.loop.Inspect(context.Background(), "m")
	if rs := info.Message.Recipients; len(rs) != 2 || rs[0].State != queue.Delivered || rs[1].State != queue.Pending ||
		rs[1].LastReply != "451 4.7.1 greylisted" || info.Due["x.test"].IsZero() {
		t.Errorf("waiting message %+v, due %v", rs, info.Due)
	}
	deadline := time.Now().Add(5 * time.Second)
	for h.clock.Timers() == 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	h.clock.Advance(5 * time.Minute)
	recs := h.rec.waitFor(t, 3)
	if r := recs[2]; r.Recipient != "b@x.test" || r.Type != logrec.Delivery || r.NumAttempts != 2 {
		t.Errorf("retry record %+v", r)
	}
	if envs := h.tr.envelopes(); len(envs) != 2 || fmt.Sprint(envs[1].Rcpts) != "[b@x.test]" {
		t.Errorf("transactions %+v, want the retry for b alone", envs)
	}
	waitUntil(t, func() bool { return len(h.inSpool(t)) == 0 })
}

// TestLoadAdminBounceSweepsPacked: an admin bounce reaches loaded
// (packed) messages: the matching ones are bounced and removed, the
// others stay packed and unchanged.
func TestLoadAdminBounceSweepsPacked(t *testing.T) {
	h := newLoadHarness(t, func(sp *queue.Spool, now time.Time) {
		for i, rcpts := range [][]string{{"a@bad.test"}, {"b@bad.test", "c@good.test"}, {"d@good.test"}} {
			m := newMessage(fmt.Sprint("m", i), now, rcpts...)
			m.NextDue = now.Add(time.Hour)
			spoolMessage(t, sp, m)
		}
	})
	if _, err := h.loop.Load(h.spool, nil); err != nil {
		t.Fatal(err)
	}
	rule := h.loop.Bounce(context.Background(), "r1", OriginAPI, Selector{Domain: "bad.test"}, "gone", 0)
	if rule.TotalBounced != 2 {
		t.Errorf("bounced %d recipients, want 2", rule.TotalBounced)
	}
	sp := h.inSpool(t)
	if _, ok := sp["m0"]; ok || len(sp) != 2 {
		t.Errorf("spool holds %v, want m1 and m2", sp)
	}
	if m1 := sp["m1"]; m1 == nil || m1.Recipients[0].State != queue.Bounced || m1.Recipients[1].State != queue.Pending {
		t.Errorf("m1 in the spool: %+v", m1)
	}
	if !h.packed("m1") || !h.packed("m2") || h.loop.Messages() != 2 {
		t.Errorf("after the sweep: m1 packed %v, m2 packed %v, %d messages", h.packed("m1"), h.packed("m2"), h.loop.Messages())
	}
	if sum := h.loop.Summary(""); sum.Recipients != 2 {
		t.Errorf("summary counts %d pending recipients, want 2", sum.Recipients)
	}
}

// TestLoadWhileEnqueue: mail taken while the queue loads is neither lost
// nor counted twice.
func TestLoadWhileEnqueue(t *testing.T) {
	const loaded, fresh = 3000, 200
	h := newLoadHarness(t, func(sp *queue.Spool, now time.Time) {
		var wg sync.WaitGroup
		for w := range 16 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := w; i < loaded; i += 16 {
					m := newMessage(fmt.Sprintf("old%05d", i), now, fmt.Sprintf("u%d@d%d.test", i, i%7))
					m.NextDue = now.Add(time.Hour)
					spoolMessage(t, sp, m)
				}
			}()
		}
		wg.Wait()
	})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range fresh {
			m := newMessage(fmt.Sprintf("new%05d", i), h.clock.Now(), "v@d1.test")
			m.NextDue = h.clock.Now().Add(time.Hour)
			if err := h.loop.Enqueue(m); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	n, err := h.loop.Load(h.spool, nil)
	<-done
	if err != nil || n != loaded {
		t.Fatalf("Load = %d, %v", n, err)
	}
	if got := h.loop.Messages(); got != loaded+fresh {
		t.Errorf("Messages = %d, want %d", got, loaded+fresh)
	}
	if s, _ := h.loop.QueueDepth(); s != loaded+fresh {
		t.Errorf("scheduled %d, want %d", s, loaded+fresh)
	}
}

// BenchmarkLoad measures Load per message from a spool of 20,000 deferred
// one-recipient messages, and the Go heap each loaded message holds.
func BenchmarkLoad(b *testing.B) {
	const n = 20000
	h := newLoadHarness(b, func(sp *queue.Spool, now time.Time) {
		var wg sync.WaitGroup
		for w := range 64 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := w; i < n; i += 64 {
					m := newMessage(fmt.Sprintf("m%06d", i), now, fmt.Sprintf("user%d@d%d.example", i, i%1000))
					m.NextDue, m.Attempts = now.Add(time.Hour), 1
					m.Recipients[0].Attempts, m.Recipients[0].LastReply = 1, "451 4.3.0 receiver down"
					spoolMessage(b, sp, m)
				}
			}()
		}
		wg.Wait()
	})
	var heap uint64
	b.ReportAllocs()
	for b.Loop() {
		b.StopTimer()
		l := New(h.loop.opts)
		runtime.GC()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		b.StartTimer()
		if got, err := l.Load(h.spool, nil); err != nil || got != n {
			b.Fatal(got, err)
		}
		b.StopTimer()
		runtime.GC()
		runtime.ReadMemStats(&after)
		heap = after.HeapAlloc - before.HeapAlloc
		runtime.KeepAlive(l)
		b.StartTimer()
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/msg")
	b.ReportMetric(float64(heap)/n, "heap-bytes/msg")
}
