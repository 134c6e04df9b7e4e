package delivery

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	bsink "gannet/bench/smtpsink/sink"
	"gannet/engine/logrec"
	"gannet/engine/outbound"
	"gannet/engine/shaping"
	"gannet/queue"
	"gannet/resolver"
	"gannet/resolver/dnstest"
)

// countRecorder counts Delivery records and wakes a waiter.
type countRecorder struct {
	n    atomic.Int64
	mu   sync.Mutex
	cond *sync.Cond
}

func (r *countRecorder) Write(rec *logrec.Record) bool {
	if rec.Type == logrec.Delivery {
		r.n.Add(1)
		r.mu.Lock()
		r.cond.Broadcast()
		r.mu.Unlock()
	}
	return true
}

// BenchmarkDeliverySites measures end-to-end delivery from a real spool:
// DNS (a real resolver asking an in-process server), per-site ready queues,
// outbound pools, bench/smtpsink receivers, spool Remove and records, over
// 1, 10 and 100 sites (domains dN.test with MX hosts on distinct
// 127.0.0.x addresses). The messages are spooled before the clock starts.
//
//	go test ./engine/delivery/ -run '^$' -bench DeliverySites -benchtime 5000x
func BenchmarkDeliverySites(b *testing.B) {
	for _, sites := range []int{1, 10, 100} {
		b.Run(fmt.Sprintf("sites=%d", sites), func(b *testing.B) { benchSites(b, sites) })
	}
}

func benchSites(b *testing.B, sites int) {
	ips := make([]string, sites)
	var zone strings.Builder
	for i := range ips {
		ips[i] = fmt.Sprintf("127.0.0.%d", 10+i)
		fmt.Fprintf(&zone, "$ORIGIN d%d.test.\n@ 300 IN SOA ns hostmaster 1 3600 600 86400 60\n@ 300 IN MX 10 mx\nmx 300 IN A %s\n", i, ips[i])
	}
	port := freePortOn(b, ips...)
	listen := make([]string, sites)
	for i, ip := range ips {
		listen[i] = netip.AddrPortFrom(netip.MustParseAddr(ip), port).String()
	}
	snk := startBenchSink(b, bsink.Config{Listen: listen})
	dns := dnstest.NewServer(b, zone.String())
	res, err := resolver.New(resolver.Config{Nameservers: []string{dns.Addr}, Timeout: 2 * time.Second})
	if err != nil {
		b.Fatal(err)
	}
	sp, err := queue.Open(queue.Options{Dir: b.TempDir(), Compression: "zstd", MinFreeBytes: -1})
	if err != nil {
		b.Fatal(err)
	}
	defer sp.Close()
	sh := shaping.New(shaping.Config{Base: func(string, []string) outbound.Limits {
		return outbound.Limits{Connections: 10, MaxDeliveriesPerConn: 1000}
	}})
	mgr := outbound.New(outbound.Options{EHLOName: "relay.gannet.test", SMTPPort: int(port),
		TLS: outbound.TLSPolicy{Mode: outbound.TLSDisabled}, Limits: sh.Limits})
	rec := &countRecorder{}
	rec.cond = sync.NewCond(&rec.mu)
	l := New(Options{Store: sp, Router: res, Transport: mgr, Shaper: sh, Record: rec,
		Retry: queue.RetryPolicy{Initial: time.Second, Max: time.Second, MaxAge: time.Hour}})

	body := []byte("From: s@src.test\r\nSubject: bench\r\n\r\n" + strings.Repeat("Lorem ipsum dolor sit amet.\r\n", 60))
	msgs := make([]*queue.Message, b.N)
	var wg sync.WaitGroup
	const appenders = 32
	for w := 0; w < appenders; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < b.N; i += appenders {
				m := &queue.Message{ID: fmt.Sprintf("m%08d", i), From: "s@src.test", Created: time.Now(),
					Recipients: []queue.Recipient{{Addr: fmt.Sprintf("r%d@d%d.test", i, i%sites)}}}
				if err := sp.Append(m, body); err != nil {
					b.Error(err)
					return
				}
				msgs[i] = m
			}
		}()
	}
	wg.Wait()
	b.SetBytes(int64(len(body)))
	b.ResetTimer()
	start := time.Now()
	for _, m := range msgs {
		l.Enqueue(m)
	}
	l.Start()
	rec.mu.Lock()
	for rec.n.Load() < int64(b.N) {
		rec.cond.Wait()
	}
	rec.mu.Unlock()
	el := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(b.N)/el.Seconds(), "msg/s")
	l.Stop(context.Background())
	if got := snk.Stats().Messages; got < uint64(b.N) {
		b.Errorf("sink got %d of %d", got, b.N)
	}
}
