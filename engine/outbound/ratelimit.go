package outbound

import (
	"context"
	"sync"
	"time"
)

// RateLimiter paces transactions to one site with the generic cell rate
// algorithm (GCRA): it keeps the theoretical arrival time (TAT) of the next
// transaction and makes a caller wait until TAT minus the burst tolerance.
// With a burst of 1 the transactions are spaced exactly 1/rate apart; a
// larger burst lets that many go at once after an idle period.
//
// A rate of 0 (or less) means unlimited. The rate may be changed at any time
// (a config reload); the change applies to the next reservation.
type RateLimiter struct {
	mu    sync.Mutex
	now   func() time.Time
	rate  float64 // transactions per second; <= 0 unlimited
	burst int
	tat   time.Time
}

// NewRateLimiter returns a limiter for rate transactions per second allowing
// bursts of burst transactions (at least 1). now may be nil (time.Now).
func NewRateLimiter(rate float64, burst int, now func() time.Time) *RateLimiter {
	if now == nil {
		now = time.Now
	}
	if burst < 1 {
		burst = 1
	}
	return &RateLimiter{now: now, rate: rate, burst: burst}
}

// SetRate changes the rate (transactions per second, <= 0 unlimited).
func (l *RateLimiter) SetRate(rate float64) {
	l.mu.Lock()
	l.rate = rate
	l.mu.Unlock()
}

// Reserve books the next slot and returns how long the caller must wait
// before using it (0: go now). Every call books a slot, so concurrent callers
// are served in the order they called.
func (l *RateLimiter) Reserve() time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.rate <= 0 {
		return 0
	}
	now := l.now()
	interval := time.Duration(float64(time.Second) / l.rate)
	tolerance := interval * time.Duration(l.burst-1)
	tat := l.tat
	if tat.Before(now) {
		tat = now
	}
	wait := tat.Sub(now) - tolerance
	if wait < 0 {
		wait = 0
	}
	l.tat = tat.Add(interval)
	return wait
}

// Ready reports whether a slot is free now: Reserve would not make the
// caller wait.
func (l *RateLimiter) Ready() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.rate <= 0 || l.waitLocked(l.now()) <= 0
}

// TryReserve books the next slot only when it is free now, and reports
// whether it did.
func (l *RateLimiter) TryReserve() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.rate <= 0 {
		return true
	}
	now := l.now()
	if l.waitLocked(now) > 0 {
		return false
	}
	if l.tat.Before(now) {
		l.tat = now
	}
	l.tat = l.tat.Add(l.interval())
	return true
}

func (l *RateLimiter) interval() time.Duration {
	return time.Duration(float64(time.Second) / l.rate)
}

// waitLocked is how long a reservation made at now would wait.
func (l *RateLimiter) waitLocked(now time.Time) time.Duration {
	return l.tat.Sub(now) - l.interval()*time.Duration(l.burst-1)
}

// Wait reserves a slot and sleeps until it, or returns ctx.Err() when the
// context ends first (the slot is then lost, which only slows the site a
// little).
func (l *RateLimiter) Wait(ctx context.Context) error {
	d := l.Reserve()
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
