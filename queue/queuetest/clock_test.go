package queuetest

import (
	"testing"
	"time"
)

var t0 = time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)

func TestFakeClockTimers(t *testing.T) {
	c := NewFakeClock(t0)
	a := c.NewTimer(time.Second)
	b := c.NewTimer(time.Minute)
	now := c.NewTimer(0)
	select {
	case <-now.C():
	default:
		t.Fatal("zero-duration timer did not fire at once")
	}
	if c.Timers() != 2 {
		t.Fatalf("Timers = %d, want 2", c.Timers())
	}
	c.Advance(time.Second)
	select {
	case got := <-a.C():
		if !got.Equal(t0.Add(time.Second)) {
			t.Fatalf("fired with %v", got)
		}
	default:
		t.Fatal("timer did not fire at its deadline")
	}
	select {
	case <-b.C():
		t.Fatal("later timer fired early")
	default:
	}
	if !b.Stop() || b.Stop() {
		t.Fatal("Stop should report true once, then false")
	}
	c.Advance(time.Hour)
	select {
	case <-b.C():
		t.Fatal("stopped timer fired")
	default:
	}
	c.Set(t0) // never backwards
	if !c.Now().Equal(t0.Add(time.Hour + time.Second)) {
		t.Fatalf("Now = %v after Set to the past", c.Now())
	}
}
