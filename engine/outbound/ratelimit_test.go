package outbound

import (
	"context"
	"testing"
	"time"
)

type fakeClock struct{ t time.Time }

func (c *fakeClock) Now() time.Time          { return c.t }
func (c *fakeClock) Advance(d time.Duration) { c.t = c.t.Add(d) }

func TestRateLimiterSpacing(t *testing.T) {
	clk := &fakeClock{t: time.Unix(1000, 0)}
	l := NewRateLimiter(10, 1, clk.Now) // one per 100 ms
	want := []time.Duration{0, 100 * time.Millisecond, 200 * time.Millisecond, 300 * time.Millisecond}
	for i, w := range want {
		if got := l.Reserve(); got != w {
			t.Fatalf("reservation %d: wait %v, want %v", i, got, w)
		}
	}
	// After a long idle period the limiter does not bank credit beyond the burst.
	clk.Advance(time.Hour)
	if got := l.Reserve(); got != 0 {
		t.Fatalf("after idle: wait %v, want 0", got)
	}
	if got := l.Reserve(); got != 100*time.Millisecond {
		t.Fatalf("second after idle: wait %v, want 100ms", got)
	}
}

func TestRateLimiterBurst(t *testing.T) {
	clk := &fakeClock{t: time.Unix(1000, 0)}
	l := NewRateLimiter(1, 3, clk.Now)
	for i := 0; i < 3; i++ {
		if got := l.Reserve(); got != 0 {
			t.Fatalf("burst reservation %d: wait %v, want 0", i, got)
		}
	}
	if got := l.Reserve(); got != time.Second {
		t.Fatalf("past the burst: wait %v, want 1s", got)
	}
}

func TestRateLimiterUnlimitedAndSetRate(t *testing.T) {
	clk := &fakeClock{t: time.Unix(1000, 0)}
	l := NewRateLimiter(0, 1, clk.Now)
	for i := 0; i < 100; i++ {
		if got := l.Reserve(); got != 0 {
			t.Fatalf("unlimited: wait %v", got)
		}
	}
	l.SetRate(2)
	l.Reserve()
	if got := l.Reserve(); got != 500*time.Millisecond {
		t.Fatalf("after SetRate(2): wait %v, want 500ms", got)
	}
}

func TestRateLimiterWaitHonoursRate(t *testing.T) {
	l := NewRateLimiter(50, 1, nil) // 20 ms apart
	start := time.Now()
	for i := 0; i < 6; i++ {
		if err := l.Wait(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if el := time.Since(start); el < 100*time.Millisecond {
		t.Fatalf("6 transactions at 50/s took %v, want >= 100ms", el)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	l.SetRate(0.001)
	l.Reserve()
	if err := l.Wait(ctx); err == nil {
		t.Fatal("Wait with a cancelled context and a long delay returned nil")
	}
}

func BenchmarkRateLimiterReserve(b *testing.B) {
	b.ReportAllocs()
	l := NewRateLimiter(1e9, 1, nil)
	for b.Loop() {
		l.Reserve()
	}
}
