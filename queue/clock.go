package queue

import "gannet/internal/clock"

// Clock is the time source of a Scheduler: the real clock in production
// (SystemClock), a queuetest.FakeClock in tests. It is declared in
// internal/clock, which the fake imports instead of queue.
type Clock = clock.Clock

// Timer is a one-shot timer of a Clock.
type Timer = clock.Timer

// SystemClock returns the Clock of package time.
func SystemClock() Clock { return clock.System() }
