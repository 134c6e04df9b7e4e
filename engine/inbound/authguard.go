package inbound

import (
	"net/netip"
	"sync"
	"time"
)

// maxGuardEntries bounds the client addresses an authGuard remembers. When
// it is full and nothing has expired, new addresses are not tracked (the
// guard fails open rather than growing without bound).
const maxGuardEntries = 100_000

// authGuard counts failed AUTH attempts per client address, across
// connections, for one listener: a password-guessing client is slowed and
// then shut out, whatever connections it opens.
//
// Failures are counted in a fixed window that starts with the first
// failure and lasts AuthFailWindow. From AuthFailDelayAfter failures on,
// every further AUTH answer to that address waits AuthFailDelay (on a
// timer, never on an event loop or a worker). At AuthFailBlockAfter
// failures the address is blocked for AuthFailWindow: AUTH and new
// connections get "421 4.7.0" and are closed. IPv6 clients are counted
// per /64, since one host usually holds a whole /64.
//
// It is safe for concurrent use (event loops and workers).
type authGuard struct {
	delayAfter, blockAfter int           // 0: off
	delay, window          time.Duration // window 0: the guard is off

	mu        sync.Mutex
	ips       map[netip.Addr]*authFailures
	lastPrune time.Time
}

type authFailures struct {
	count        int
	first        time.Time // start of the counting window
	blockedUntil time.Time
}

// newAuthGuard returns nil when cfg turns the guard off.
func newAuthGuard(cfg ListenerConfig) *authGuard {
	if cfg.AuthFailWindow <= 0 || (cfg.AuthFailDelayAfter <= 0 && cfg.AuthFailBlockAfter <= 0) {
		return nil
	}
	g := &authGuard{
		delayAfter: max(cfg.AuthFailDelayAfter, 0),
		blockAfter: max(cfg.AuthFailBlockAfter, 0),
		delay:      max(cfg.AuthFailDelay, 0),
		window:     cfg.AuthFailWindow,
		ips:        make(map[netip.Addr]*authFailures),
	}
	if g.delay == 0 {
		g.delayAfter = 0
	}
	return g
}

// guardKey is the address failures are counted under.
func guardKey(ip netip.Addr) netip.Addr {
	ip = ip.Unmap()
	if ip.Is6() {
		if p, err := ip.Prefix(64); err == nil {
			return p.Addr()
		}
	}
	return ip
}

// current returns ip's record with an expired window reset, or nil.
// Callers hold g.mu.
func (g *authGuard) current(key netip.Addr, now time.Time) *authFailures {
	f := g.ips[key]
	if f == nil {
		return nil
	}
	if now.Before(f.blockedUntil) {
		return f
	}
	if now.Sub(f.first) >= g.window {
		delete(g.ips, key)
		return nil
	}
	return f
}

// blocked reports whether ip is shut out now.
func (g *authGuard) blocked(ip netip.Addr, now time.Time) bool {
	if g == nil {
		return false
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	f := g.current(guardKey(ip), now)
	return f != nil && now.Before(f.blockedUntil)
}

// delayFor returns how long the answer to an AUTH from ip must wait.
func (g *authGuard) delayFor(ip netip.Addr, now time.Time) time.Duration {
	if g == nil || g.delayAfter == 0 {
		return 0
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if f := g.current(guardKey(ip), now); f != nil && f.count >= g.delayAfter {
		return g.delay
	}
	return 0
}

// failed counts a failed AUTH from ip and reports whether ip is now blocked.
func (g *authGuard) failed(ip netip.Addr, now time.Time) bool {
	if g == nil {
		return false
	}
	key := guardKey(ip)
	g.mu.Lock()
	defer g.mu.Unlock()
	f := g.current(key, now)
	if f == nil {
		if len(g.ips) >= maxGuardEntries {
			g.pruneLocked(now)
			if len(g.ips) >= maxGuardEntries {
				return false
			}
		}
		f = &authFailures{first: now}
		g.ips[key] = f
	}
	f.count++
	if g.blockAfter > 0 && f.count >= g.blockAfter {
		if !now.Before(f.blockedUntil) {
			f.blockedUntil = now.Add(g.window)
		}
		return true
	}
	return false
}

// prune forgets expired records, at most once per minute (it walks the
// whole map).
func (g *authGuard) prune(now time.Time) {
	if g == nil {
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if now.Sub(g.lastPrune) < time.Minute {
		return
	}
	g.pruneLocked(now)
}

func (g *authGuard) pruneLocked(now time.Time) {
	g.lastPrune = now
	for key := range g.ips {
		g.current(key, now)
	}
}

// tracked reports how many addresses the guard remembers (for tests).
func (g *authGuard) tracked() int {
	if g == nil {
		return 0
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.ips)
}
