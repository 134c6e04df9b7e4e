package queue

import "time"

// RetryPolicy is the retry schedule of transient failures ([queue]
// retry_interval, max_retry_interval, max_retry_age): wait Initial after the
// first failed attempt, doubling after each further one, never more than
// Max; give up (expire, bounce) once the message is older than MaxAge.
type RetryPolicy struct {
	Initial time.Duration
	Max     time.Duration
	MaxAge  time.Duration
	// Greylist is the delay after a first attempt the receiver greylisted
	// (RFC 6647: it accepts a retry after some minutes); 0: Delay's.
	Greylist time.Duration
}

// Delay returns how long to wait before the next attempt, after attempts
// failed attempts: 0 for none (the first attempt is due at once), Initial
// after one, 2×Initial after two, … capped at Max (when Max > 0).
func (p RetryPolicy) Delay(attempts int) time.Duration {
	if attempts <= 0 || p.Initial <= 0 {
		return 0
	}
	d := p.Initial
	for i := 1; i < attempts; i++ {
		if p.Max > 0 && d >= p.Max {
			break
		}
		if d > (1<<62)/2 { // next doubling would overflow
			break
		}
		d *= 2
	}
	if p.Max > 0 && d > p.Max {
		d = p.Max
	}
	return d
}

// Expired reports whether a message created at created is too old to be
// tried again at now. A zero MaxAge never expires.
func (p RetryPolicy) Expired(created, now time.Time) bool {
	return p.MaxAge > 0 && now.Sub(created) >= p.MaxAge
}

// Next returns when the attempt after attempts failed ones is due, and
// false when the message expires before then (RFC 5321 §4.5.4.1: give up
// after a reasonable time, typically 4–5 days; Gannet's MaxAge).
func (p RetryPolicy) Next(created, now time.Time, attempts int) (time.Time, bool) {
	due := now.Add(p.Delay(attempts))
	if p.Expired(created, due) {
		return time.Time{}, false
	}
	return due, true
}
