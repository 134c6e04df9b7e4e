package lua

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// The hook budget. gopher-lua stops a state whose context is done, so
// each pool state runs its calls under a context of its own that lives as
// long as the state; a call marks its deadline on the state, and one
// watchdog goroutine per Hooks cancels the context of a state past its
// deadline, within a tick. A call then costs two atomic stores instead of
// a context.WithTimeout with its timer. A cancelled state is never used
// again (run discards it). Calls after Close, when the watchdog has
// stopped, take a context.WithTimeout each.

// budgetState is the part of a pool state the watchdog sees.
type budgetState struct {
	ctx      context.Context
	cancel   context.CancelFunc
	deadline atomic.Int64 // Unix nanoseconds; 0 between calls
}

// watchdog cancels the states past their deadline.
type watchdog struct {
	tick time.Duration

	mu     sync.Mutex
	states map[*budgetState]struct{}
	stop   chan struct{}
	once   sync.Once
}

// newWatchdog returns the watchdog of hooks whose calls have budget.
func newWatchdog(budget time.Duration) *watchdog {
	return &watchdog{
		tick:   min(max(budget/10, time.Millisecond), 10*time.Millisecond),
		states: map[*budgetState]struct{}{},
		stop:   make(chan struct{}),
	}
}

// track returns a budget for a new pool state, and starts the watchdog
// with the first.
func (w *watchdog) track() *budgetState {
	b := &budgetState{}
	b.ctx, b.cancel = context.WithCancel(context.Background())
	w.mu.Lock()
	w.states[b] = struct{}{}
	w.mu.Unlock()
	w.once.Do(func() { go w.run() })
	return b
}

// forget drops a state that is closed.
func (w *watchdog) forget(b *budgetState) {
	b.cancel()
	w.mu.Lock()
	delete(w.states, b)
	w.mu.Unlock()
}

func (w *watchdog) run() {
	t := time.NewTicker(w.tick)
	defer t.Stop()
	for {
		select {
		case <-w.stop:
			return
		case now := <-t.C:
			n := now.UnixNano()
			w.mu.Lock()
			for b := range w.states {
				if d := b.deadline.Load(); d != 0 && n >= d {
					b.cancel()
				}
			}
			w.mu.Unlock()
		}
	}
}

// close stops the watchdog.
func (w *watchdog) close() {
	w.once.Do(func() {}) // a watchdog never started stays stopped
	select {
	case <-w.stop:
	default:
		close(w.stop)
	}
}
