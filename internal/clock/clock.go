// Package clock is the time source that can be replaced in tests: the
// Clock and Timer interfaces, and System, the clock of package time.
//
// It is a leaf package so that both the code that takes a Clock (queue's
// Scheduler, engine/delivery's Loop, which know it as queue.Clock) and the
// fake that tests pass instead (queue/queuetest.FakeClock) can import it
// without importing each other.
package clock

import "time"

// Clock is a time source: the real clock in production (System), a
// queuetest.FakeClock in tests.
type Clock interface {
	Now() time.Time
	// NewTimer returns a timer whose channel receives once, d from now.
	NewTimer(d time.Duration) Timer
}

// Timer is a one-shot timer of a Clock.
type Timer interface {
	C() <-chan time.Time
	// Stop prevents the timer from firing; it reports whether it did.
	Stop() bool
}

// System returns the Clock of package time.
func System() Clock { return systemClock{} }

type systemClock struct{}

func (systemClock) Now() time.Time { return time.Now() }
func (systemClock) NewTimer(d time.Duration) Timer {
	return systemTimer{time.NewTimer(d)}
}

type systemTimer struct{ t *time.Timer }

func (t systemTimer) C() <-chan time.Time { return t.t.C }
func (t systemTimer) Stop() bool          { return t.t.Stop() }
