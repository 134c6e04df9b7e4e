package httpapi

import (
	"testing"
	"time"
)

func TestRateLimiter(t *testing.T) {
	now := time.Unix(1000, 0)
	l := newRateLimiter(2, 3, func() time.Time { return now })
	for i := 0; i < 3; i++ {
		if ok, _ := l.allow("k"); !ok {
			t.Fatalf("burst request %d refused", i)
		}
	}
	ok, wait := l.allow("k")
	if ok || wait <= 0 || wait > 500*time.Millisecond {
		t.Fatalf("4th: ok=%v wait=%v", ok, wait)
	}
	if ok, _ := l.allow("other"); !ok {
		t.Fatal("another key shares the bucket")
	}
	now = now.Add(500 * time.Millisecond) // one token back at 2/s
	if ok, _ := l.allow("k"); !ok {
		t.Fatal("refill")
	}
	if ok, _ := l.allow("k"); ok {
		t.Fatal("only one token came back")
	}
	now = now.Add(time.Hour) // capped at the burst
	for i := 0; i < 3; i++ {
		if ok, _ := l.allow("k"); !ok {
			t.Fatalf("after idle %d refused", i)
		}
	}
	if ok, _ := l.allow("k"); ok {
		t.Fatal("bucket grew past the burst")
	}
	if ok, _ := (*rateLimiter)(nil).allow("k"); !ok {
		t.Fatal("nil limiter limits")
	}
}
