package queue

import (
	"testing"
	"time"
)

func TestRetryDelay(t *testing.T) {
	p := RetryPolicy{Initial: 5 * time.Minute, Max: time.Hour, MaxAge: 72 * time.Hour}
	want := []time.Duration{0, 5 * time.Minute, 10 * time.Minute, 20 * time.Minute, 40 * time.Minute, time.Hour, time.Hour}
	for attempts, w := range want {
		if got := p.Delay(attempts); got != w {
			t.Errorf("Delay(%d) = %v, want %v", attempts, got, w)
		}
	}
	if got := p.Delay(1000); got != time.Hour {
		t.Errorf("Delay(1000) = %v, want the cap", got)
	}
	uncapped := RetryPolicy{Initial: time.Second}
	if got := uncapped.Delay(200); got <= 0 {
		t.Errorf("uncapped Delay(200) overflowed to %v", got)
	}
}

func TestRetryExpired(t *testing.T) {
	created := time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)
	p := RetryPolicy{Initial: 5 * time.Minute, Max: time.Hour, MaxAge: 72 * time.Hour}
	if p.Expired(created, created.Add(71*time.Hour)) {
		t.Error("expired after 71h")
	}
	if !p.Expired(created, created.Add(72*time.Hour)) {
		t.Error("not expired after 72h")
	}
	if (RetryPolicy{}).Expired(created, created.Add(1e6*time.Hour)) {
		t.Error("zero MaxAge expired")
	}
	if due, ok := p.Next(created, created.Add(time.Hour), 2); !ok || !due.Equal(created.Add(time.Hour+10*time.Minute)) {
		t.Errorf("Next = %v, %v", due, ok)
	}
	if _, ok := p.Next(created, created.Add(71*time.Hour+30*time.Minute), 8); ok {
		t.Error("Next beyond MaxAge still scheduled")
	}
}
