package outbound

import (
	"context"
	"errors"
	"sync"
	"time"
)

// errPoolClosed: the Manager was closed while a delivery waited for a
// connection.
var errPoolClosed = errors.New("outbound connection pool closed")

// sitePool holds the connections to one site (a set of MX hosts shared by
// any number of domains). It never has more than Limits.Connections
// connections open — counting those being dialled, in use and idle — and
// a connection's slot is freed only after it has been closed, so a
// receiver never sees more.
type sitePool struct {
	m        *Manager
	path     Path // the path it was made for (SharedConns)
	site     string
	source   string     // egress source name
	dial     dialConfig // the Manager's, with the source's address and EHLO name and the TLS policy
	rate     *RateLimiter
	connRate *RateLimiter // max_connection_rate

	mu       sync.Mutex
	limits   Limits
	open     int       // connections dialling, in use or idle
	idle     []*Client // most recently used last (reused first)
	waiters  []chan struct{}
	leases   []func() // SharedConns: the releases of the leases the open connections hold
	lastUsed time.Time
	closed   bool
}

func (p *sitePool) connLimit() int {
	if p.limits.Connections <= 0 {
		return 1
	}
	return p.limits.Connections
}

// measured notes on o what connection-count tuning reads of a
// transaction that ran on one of the pool's connections: how long it took
// and how many connections the pool holds.
func (p *sitePool) measured(o *Outcome, took time.Duration) {
	p.mu.Lock()
	o.Elapsed, o.PoolOpen = took, p.open
	p.mu.Unlock()
}

// setLimits applies the current shaping (it may change on reload).
func (p *sitePool) setLimits(l Limits) {
	p.mu.Lock()
	changed := l != p.limits
	p.limits = l
	if changed {
		// More connections may now be allowed.
		for len(p.waiters) > 0 {
			p.wakeOneLocked()
		}
	}
	p.mu.Unlock()
	if changed {
		p.rate.SetRate(l.MessageRate)
		p.connRate.SetRate(l.ConnectionRate)
	}
}

// acquire returns an idle connection, or nil with a slot reserved for the
// caller to dial a new one (the caller must then call release or
// releaseSlot). It waits while the site is at its connection limit.
func (p *sitePool) acquire(ctx context.Context) (*Client, error) {
	for {
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			return nil, errPoolClosed
		}
		p.lastUsed = p.m.now()
		for len(p.idle) > 0 {
			c := p.idle[len(p.idle)-1]
			p.idle = p.idle[:len(p.idle)-1]
			if p.m.now().Sub(c.idleSince) >= p.m.opts.IdleTimeout {
				// Too old: the server has probably timed it out already.
				p.closeLocked(c)
				continue
			}
			p.mu.Unlock()
			return c, nil
		}
		if p.open < p.connLimit() {
			p.open++
			p.mu.Unlock()
			if p.m.opts.SharedConns == nil || p.sharedLease() {
				return nil, nil
			}
			// The cluster has them all: no release here tells when one
			// comes back, so look again shortly.
			p.releaseSlot()
			t := time.NewTimer(sharedConnRetry)
			select {
			case <-t.C:
				continue
			case <-ctx.Done():
				t.Stop()
				return nil, ctx.Err()
			}
		}
		ch := make(chan struct{}, 1)
		p.waiters = append(p.waiters, ch)
		p.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			p.mu.Lock()
			if !p.removeWaiterLocked(ch) {
				// Woken and cancelled at once: hand the wake-up on.
				p.wakeOneLocked()
			}
			p.mu.Unlock()
			return nil, ctx.Err()
		}
	}
}

// release gives back a connection that acquire or a dial produced. A
// reusable one goes to the idle list; others are closed (QUIT unless
// broken) and their slot is freed once the socket is closed.
func (p *sitePool) release(c *Client, reusable bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	max := p.limits.MaxDeliveriesPerConn
	if reusable && !c.broken && !p.closed && p.open <= p.connLimit() && (max <= 0 || c.uses < max) {
		c.idleSince = p.m.now()
		p.idle = append(p.idle, c)
		p.wakeOneLocked()
		return
	}
	p.closeLocked(c)
}

// releaseSlot frees a slot reserved by acquire when no connection came of
// it (every dial failed), or whose connection was closed, and gives back a
// lease of SharedConns.
func (p *sitePool) releaseSlot() {
	p.mu.Lock()
	p.open--
	var release func()
	if n := len(p.leases); n > p.open {
		release = p.leases[n-1]
		p.leases = p.leases[:n-1]
	}
	p.wakeOneLocked()
	p.mu.Unlock()
	if release != nil {
		release()
	}
}

// sharedConnRetry is how long a connection that the cluster's count
// refused waits before it asks again.
const sharedConnRetry = 100 * time.Millisecond

// sharedLease takes a lease of SharedConns for a slot just reserved; it
// reports whether the cluster gave one.
func (p *sitePool) sharedLease() bool {
	release, ok := p.m.opts.SharedConns.Acquire(p.path)
	if ok && release != nil {
		p.mu.Lock()
		p.leases = append(p.leases, release)
		p.mu.Unlock()
	}
	return ok
}

// SharedConns is a connection count shared by the nodes of a cluster.
type SharedConns interface {
	// Acquire takes a lease for one connection of the path: its release
	// (nil: nothing to give back) and true, or false when the cluster has
	// as many connections as its limit allows.
	Acquire(p Path) (release func(), ok bool)
}

// closeLocked closes c in the background and frees its slot afterwards.
func (p *sitePool) closeLocked(c *Client) {
	p.m.closing.Add(1)
	go func() {
		defer p.m.closing.Done()
		c.Close()
		p.m.connClosed()
		p.releaseSlot()
	}()
}

func (p *sitePool) wakeOneLocked() {
	if len(p.waiters) == 0 {
		return
	}
	ch := p.waiters[0]
	p.waiters = p.waiters[1:]
	ch <- struct{}{}
}

func (p *sitePool) removeWaiterLocked(ch chan struct{}) bool {
	for i, w := range p.waiters {
		if w == ch {
			p.waiters = append(p.waiters[:i], p.waiters[i+1:]...)
			return true
		}
	}
	return false
}

// sweep closes connections idle for longer than the idle timeout and
// reports whether the pool is empty and unused since before cutoff (the
// Manager then forgets it).
func (p *sitePool) sweep(now time.Time, cutoff time.Time) (forget bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	keep := p.idle[:0]
	for _, c := range p.idle {
		if now.Sub(c.idleSince) >= p.m.opts.IdleTimeout {
			p.closeLocked(c)
		} else {
			keep = append(keep, c)
		}
	}
	clear(p.idle[len(keep):])
	p.idle = keep
	return p.open == 0 && len(p.waiters) == 0 && p.lastUsed.Before(cutoff)
}

// shutdown closes every idle connection and makes waiters give up; busy
// connections are closed when they are released.
func (p *sitePool) shutdown() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed = true
	for _, c := range p.idle {
		p.closeLocked(c)
	}
	p.idle = nil
	for len(p.waiters) > 0 {
		p.wakeOneLocked()
	}
}
