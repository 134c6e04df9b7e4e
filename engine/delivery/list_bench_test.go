package delivery

import (
	"context"
	"runtime"
	"strconv"
	"testing"
	"time"

	"gannet/queue"
	"gannet/queue/queuetest"
)

// genSource is a Load source that makes n deferred one-recipient messages
// in memory (no spool): 10 tenants, 20 campaigns, 1000 domains.
type genSource struct {
	n   int
	now time.Time
}

func (s genSource) Stats() queue.Stats { return queue.Stats{Live: int64(s.n)} }

func (s genSource) ScanReused(fn func(*queue.Message) error) error {
	tenants := make([]string, 10)
	for i := range tenants {
		tenants[i] = "tenant" + strconv.Itoa(i)
	}
	campaigns := make([]string, 20)
	for i := range campaigns {
		campaigns[i] = "campaign" + strconv.Itoa(i)
	}
	m := &queue.Message{From: "news@src.example", Recipients: make([]queue.Recipient, 1)}
	for i := range s.n {
		m.ID = "m" + strconv.Itoa(10_000_000+i)
		m.Tenant, m.Campaign = tenants[i%len(tenants)], campaigns[i%len(campaigns)]
		m.Created = s.now.Add(-time.Duration(i%7200) * time.Second)
		m.NextDue, m.Attempts = s.now.Add(time.Hour), 1+i%5
		m.Recipients[0] = queue.Recipient{Addr: "user" + strconv.Itoa(i) + "@d" + strconv.Itoa(i%1000) + ".example",
			Attempts: 1 + i%5, LastReply: "451 4.3.0 receiver down"}
		if err := fn(m); err != nil {
			return err
		}
	}
	return nil
}

// BenchmarkQueueList1M measures queue list queries over 1,000,000 queued
// (deferred, packed) messages: a filtered page of 100, a substring search,
// and group-by counts. It reports the Go heap each queued message holds
// after Load (heap-bytes/msg), which the list adds nothing to.
func BenchmarkQueueList1M(b *testing.B) {
	const n = 1_000_000
	clock := queuetest.NewFakeClock(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	l := New(Options{Store: &countingStore{}, Transport: &funcTransport{}, RelayTo: "127.0.0.1:1", Clock: clock,
		Retry: queue.RetryPolicy{Initial: time.Minute, Max: time.Hour, MaxAge: 72 * time.Hour}})
	if got, err := l.Load(genSource{n: n, now: clock.Now()}, nil); err != nil || got != n {
		b.Fatal(got, err)
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	perMsg := float64(after.HeapAlloc-before.HeapAlloc) / n
	ctx := context.Background()
	for _, c := range []struct {
		name string
		f    ListFilter
		want int // matched
	}{
		{"domain-limit100", ListFilter{Domain: "d7.example", Limit: 100}, n / 1000},
		{"tenant-attempts-older-limit100", ListFilter{Tenant: "tenant3", MinAttempts: 4, Older: time.Hour, Limit: 100}, -1},
		{"recipient-substring", ListFilter{Recipient: "user99999"}, 11},
		{"all-limit100", ListFilter{Limit: 100}, n},
		{"group-by-domain", ListFilter{GroupBy: "domain"}, n},
		{"group-by-tenant", ListFilter{GroupBy: "tenant"}, n},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				res := l.List(ctx, c.f.Normalize())
				if c.want >= 0 && res.Matched != c.want {
					b.Fatalf("matched %d, want %d", res.Matched, c.want)
				}
			}
			b.ReportMetric(perMsg, "heap-bytes/msg")
		})
	}
	runtime.KeepAlive(l)
}
