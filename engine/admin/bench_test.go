package admin

import (
	"context"
	"fmt"
	"testing"
	"time"

	"gannet/engine/delivery"
	"gannet/queue"
)

// BenchmarkBounceSweep measures an admin bounce of a queue of 1000
// messages in a real spool: every recipient gets its AdminBounce record
// and every message leaves the spool (a synced index update each).
func BenchmarkBounceSweep(b *testing.B) {
	const n = 1000
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		sp, err := queue.Open(queue.Options{Dir: b.TempDir(), Compression: "none", MinFreeBytes: -1})
		if err != nil {
			b.Fatal(err)
		}
		rec := &records{}
		loop := delivery.New(delivery.Options{Store: sp, Transport: &deferring{}, RelayTo: "127.0.0.1:1", Record: rec})
		ids := queue.NewIDGenerator(time.Now)
		for j := range n {
			m := &queue.Message{ID: ids.Next(), From: "a@src.test", Created: time.Now(), NextDue: time.Now().Add(time.Hour),
				Recipients: []queue.Recipient{{Addr: fmt.Sprintf("r%d@x.test", j)}}}
			if err := sp.Append(m, []byte("Subject: x\r\n\r\nx\r\n")); err != nil {
				b.Fatal(err)
			}
			loop.Enqueue(m)
		}
		b.StartTimer()
		r := loop.Bounce(context.Background(), "b", delivery.OriginAPI, delivery.Selector{Domain: "x.test"}, "bench", 0)
		b.StopTimer()
		if r.TotalBounced != n {
			b.Fatalf("bounced %d", r.TotalBounced)
		}
		loop.Stop(context.Background())
		sp.Close()
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N*n), "µs/msg")
}
