package resolver

import (
	"context"
	"sync"
	"testing"
	"time"
)

// BenchmarkResolveCached measures the hot path of delivery: a domain whose
// route is cached. It costs a copy of the route for the caller.
func BenchmarkResolveCached(b *testing.B) {
	srv := newTestServer(b)
	r, _ := newTestResolver(b, srv)
	ctx := context.Background()
	if _, err := r.Resolve(ctx, "equal.test"); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := r.Resolve(ctx, "equal.test"); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkResolveCachedParallel is the same with every core asking.
func BenchmarkResolveCachedParallel(b *testing.B) {
	srv := newTestServer(b)
	r, _ := newTestResolver(b, srv)
	ctx := context.Background()
	if _, err := r.Resolve(ctx, "sorted.test"); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := r.Resolve(ctx, "sorted.test"); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkResolveUncached measures a full resolution against the
// in-process server over loopback UDP: one MX query and an A and an AAAA
// query for each of the three MX hosts. The clock jumps past every TTL
// before each call, so nothing is served from the cache.
func BenchmarkResolveUncached(b *testing.B) {
	srv := newTestServer(b)
	var mu sync.Mutex
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	clock := func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		return now
	}
	r, _ := newTestResolver(b, srv, func(c *Config) { c.Now = clock })
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		mu.Lock()
		now = now.Add(2 * time.Hour)
		mu.Unlock()
		if _, err := r.Resolve(ctx, "sorted.test"); err != nil {
			b.Fatal(err)
		}
	}
}
