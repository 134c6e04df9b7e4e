package delivery

import (
	"os"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	bsink "gannet/bench/smtpsink/sink"
	"gannet/engine/logrec"
	"gannet/engine/outbound"
	"gannet/engine/shaping"
)

// latencyRecorder notes when the Delivery record of each high-priority
// message ("high…") is written.
type latencyRecorder struct {
	mu        sync.Mutex
	delivered map[string]time.Time
	bulk      int
}

func (r *latencyRecorder) Write(rec *logrec.Record) bool {
	if rec.Type != logrec.Delivery {
		return true
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if strings.HasPrefix(rec.ID, "high") {
		r.delivered[rec.ID] = time.Now()
	} else {
		r.bulk++
	}
	return true
}

// TestHighPriorityBehindBulk is the test: transactional mail
// injected behind 50,000 bulk messages to the same site is delivered
// within seconds, and bulk mail keeps flowing meanwhile. It logs the
// p50/p99 latency of the high-priority messages under that load.
func TestHighPriorityBehindBulk(t *testing.T) {
	n := 50000
	if testing.Short() {
		n = 5000
	}
	snk := startBenchSink(t, bsink.Config{})
	rec := &latencyRecorder{delivered: map[string]time.Time{}}
	p := startRealPath(t, snk.Addr(), outbound.Limits{Connections: 10, MaxDeliveriesPerConn: 1000},
		func(_ *outbound.Options, o *Options, _ *shaping.Config) { o.Record = rec })
	body := []byte("Subject: bulk\r\n\r\nHello.\r\n")
	p.store.mu.Lock()
	for i := 0; i < n; i++ {
		p.store.bodies["bulk"+itoa(i)] = body
	}
	p.store.mu.Unlock()
	t0 := time.Now()
	for i := 0; i < n; i++ {
		m := newMessage("bulk"+itoa(i), t0, "r@x.test")
		if err := p.loop.Enqueue(m); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("enqueued %d bulk messages in %v", n, time.Since(t0))

	const highs = 20
	injected := map[string]time.Time{}
	for i := 0; i < highs; i++ {
		id := "high" + itoa(i)
		injected[id] = time.Now()
		p.submit(t, id, 1, "vip@x.test")
		time.Sleep(50 * time.Millisecond)
	}
	waitFor(t, 30*time.Second, "every high-priority message delivered", func() bool {
		rec.mu.Lock()
		defer rec.mu.Unlock()
		return len(rec.delivered) == highs
	})
	rec.mu.Lock()
	var lat []time.Duration
	for id, at := range rec.delivered {
		lat = append(lat, at.Sub(injected[id]))
	}
	bulkDone := rec.bulk
	rec.mu.Unlock()
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	p50, p99 := lat[len(lat)/2], lat[len(lat)-1]
	sched, ready := p.loop.QueueDepth()
	t.Logf("high priority behind %d bulk: p50 %v, p99 %v (max of %d); bulk delivered meanwhile %d, still queued %d+%d",
		n, p50, p99, highs, bulkDone, sched, ready)
	if p99 > time.Second {
		t.Errorf("high-priority p99 latency %v behind %d bulk messages, want under a second", p99, n)
	}
	if bulkDone == 0 {
		t.Error("no bulk message was delivered meanwhile: bulk starved")
	}
	if os.Getenv("GANNET_PRIORITY_DRAIN") != "" {
		// For measurements: the time to drain the whole queue.
		waitFor(t, 5*time.Minute, "bulk drained", func() bool { rec.mu.Lock(); defer rec.mu.Unlock(); return rec.bulk == n })
		t.Logf("drained %d in %v: %.0f msg/s", n, time.Since(t0), float64(n)/time.Since(t0).Seconds())
	}
}
