package outbound

import (
	"sync"
	"time"
)

// hostHealth remembers MX addresses that failed to give us a usable session
// (connection refused, connect timeout, 4xx/5xx greeting, broken EHLO) so
// that the next deliveries skip them for a short while instead of waiting for
// the same timeout again. One failure is forgiven (a single refused
// connection may be a restart); from the second consecutive failure on, the
// address is skipped for base, doubling per further failure up to max. A
// success forgets the address.
type hostHealth struct {
	mu    sync.Mutex
	now   func() time.Time
	base  time.Duration
	max   time.Duration
	hosts map[string]*hostState
}

type hostState struct {
	fails int
	until time.Time
}

func newHostHealth(now func() time.Time, base, max time.Duration) *hostHealth {
	return &hostHealth{now: now, base: base, max: max, hosts: make(map[string]*hostState)}
}

// skip reports whether addr is in its back-off period.
func (h *hostHealth) skip(addr string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	s := h.hosts[addr]
	return s != nil && h.now().Before(s.until)
}

// failed records a failure of addr.
func (h *hostHealth) failed(addr string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	s := h.hosts[addr]
	if s == nil {
		s = &hostState{}
		h.hosts[addr] = s
	}
	s.fails++
	if s.fails < 2 {
		return
	}
	d := h.base
	for i := 2; i < s.fails && d < h.max; i++ {
		d *= 2
	}
	if d > h.max {
		d = h.max
	}
	s.until = h.now().Add(d)
}

// succeeded forgets earlier failures of addr.
func (h *hostHealth) succeeded(addr string) {
	h.mu.Lock()
	delete(h.hosts, addr)
	h.mu.Unlock()
}
