package outbound

import (
	"sync"
	"time"
)

// hostHealth remembers MX addresses that failed to give us a usable session
// (connection refused, connect timeout, 4xx/5xx greeting, broken EHLO) so
// that the next deliveries try the route's other addresses first instead of
// waiting for the same timeout again. One failure is forgiven (a single
// refused connection may be a restart); from the second consecutive failure
// on, the address is in back-off for base, doubling per further failure up
// to max. A success forgets the address.
//
// Back-off only reorders: it never makes a route undeliverable. When every
// address of a route is in back-off, the one whose back-off ends first is
// tried anyway (see usable), so that a destination with a single MX host is
// retried at each message's own retry time (RFC 5321 §4.5.4.1) and mail
// flows again as soon as the host is back, rather than stalling until the
// back-off of an address that has recovered runs out.
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
	if max < base {
		max = base
	}
	return &hostHealth{now: now, base: base, max: max, hosts: make(map[string]*hostState)}
}

// skip reports whether addr is in its back-off period.
func (h *hostHealth) skip(addr string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	s := h.hosts[addr]
	return s != nil && h.now().Before(s.until)
}

// usable returns the indexes of the addresses to try, in the order given:
// those not in back-off; or, when every address is in back-off, only the
// one whose back-off ends first (the first of them on a tie).
func (h *hostHealth) usable(addrs []string) []int {
	h.mu.Lock()
	defer h.mu.Unlock()
	now := h.now()
	out := make([]int, 0, len(addrs))
	first := -1
	var firstEnd time.Time
	for i, a := range addrs {
		s := h.hosts[a]
		if s == nil || !now.Before(s.until) {
			out = append(out, i)
			continue
		}
		if first < 0 || s.until.Before(firstEnd) {
			first, firstEnd = i, s.until
		}
	}
	if len(out) == 0 && first >= 0 {
		out = append(out, first)
	}
	return out
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
