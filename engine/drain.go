package engine

import "time"

// Draining reports whether the node refuses new mail (gannet drain).
func (e *Engine) Draining() bool { return e.draining.Load() }

// SetDraining makes the node refuse new mail — SMTP 421 4.3.2 to new
// connections and at the next command boundary of open sessions, HTTP
// inject 503 with Retry-After, liveness 503 {"status":"draining"} — while
// it goes on delivering what it holds; off takes mail again.
func (e *Engine) SetDraining(on bool) {
	e.draining.Store(on)
	if e.inbound != nil {
		e.inbound.SetDraining(on)
	}
}

// DrainTimeout is how long a stop waits for sessions in progress
// ([server] drain_timeout, as reloaded).
func (e *Engine) DrainTimeout() time.Duration { return e.conf().Server.DrainTimeout.Duration }
