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

// maxAuthInFlight bounds the password checks one client address may have
// running at once. A check may cost a bcrypt comparison (tens of
// milliseconds of a core); more AUTH from the address wait for a slot.
const maxAuthInFlight = 4

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
// An attempt is counted before its password is checked, under the guard's
// lock (reserve): a check in flight counts as a failure until it is known
// (authAttempt.release on success, authAttempt.fail otherwise), so however
// many AUTH an address sends in parallel, no more than AuthFailBlockAfter
// of its passwords are checked in a window, and a right password guessed
// after that is never looked at. An address has at most maxAuthInFlight
// checks running; the others wait, woken when one ends.
//
// It is safe for concurrent use (event loops and workers).
type authGuard struct {
	delayAfter, blockAfter int           // 0: off
	delay, window          time.Duration // window 0: the guard is off

	mu        sync.Mutex
	ips       map[netip.Addr]*authRecord
	lastPrune time.Time
}

// authRecord is what the guard knows of one address.
type authRecord struct {
	count        int       // failures in the window
	first        time.Time // start of the counting window (the first failure)
	blockedUntil time.Time
	pending      int      // password checks in flight (reserved, not settled)
	waiters      []func() // AUTH waiting for a check to end
}

// authVerdict is the guard's answer to an AUTH.
type authVerdict int

const (
	authCheck   authVerdict = iota // check the password, then settle the attempt
	authWait                       // too many checks in flight: the wake function runs when one ends
	authBlocked                    // the address is blocked: 421 4.7.0
)

// authAttempt is one password check admitted by reserve. Exactly one of
// release or fail must be called when the check is done.
type authAttempt struct {
	g   *authGuard
	key netip.Addr
	r   *authRecord // nil: not tracked (no guard, or its table was full)
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
		ips:        make(map[netip.Addr]*authRecord),
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

// current returns key's record with an expired window reset, or nil when
// nothing about the address is left to remember. A record with checks in
// flight or AUTH waiting is kept: their attempts point at it. Callers hold
// g.mu.
func (g *authGuard) current(key netip.Addr, now time.Time) *authRecord {
	r := g.ips[key]
	if r == nil {
		return nil
	}
	if now.Before(r.blockedUntil) {
		return r
	}
	if r.count > 0 && now.Sub(r.first) >= g.window {
		r.count, r.first = 0, time.Time{}
	}
	if r.count == 0 && r.pending == 0 && len(r.waiters) == 0 {
		delete(g.ips, key)
		return nil
	}
	return r
}

// blocked reports whether ip is shut out now.
func (g *authGuard) blocked(ip netip.Addr, now time.Time) bool {
	if g == nil {
		return false
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	r := g.current(guardKey(ip), now)
	return r != nil && now.Before(r.blockedUntil)
}

// reserve decides an AUTH from ip before its password is checked. With
// authCheck the attempt counts as in flight until it is settled, and the
// answer must wait delay. With authWait, wake is called (from the goroutine
// that settles another attempt) when the AUTH may ask again.
func (g *authGuard) reserve(ip netip.Addr, now time.Time, wake func()) (v authVerdict, a authAttempt, delay time.Duration) {
	if g == nil {
		return authCheck, authAttempt{}, 0
	}
	key := guardKey(ip)
	g.mu.Lock()
	defer g.mu.Unlock()
	r := g.current(key, now)
	if r == nil {
		if len(g.ips) >= maxGuardEntries {
			g.pruneLocked(now)
		}
		if len(g.ips) >= maxGuardEntries {
			return authCheck, authAttempt{}, 0 // fail open rather than grow
		}
		r = &authRecord{}
		g.ips[key] = r
	}
	if now.Before(r.blockedUntil) {
		return authBlocked, authAttempt{}, 0
	}
	// Every check in flight may fail: together with the failures already
	// counted they must stay under the block (not blocked means count <
	// blockAfter, so pending > 0 whenever this waits).
	if r.pending >= maxAuthInFlight || g.blockAfter > 0 && r.count+r.pending >= g.blockAfter {
		r.waiters = append(r.waiters, wake)
		return authWait, authAttempt{}, 0
	}
	r.pending++
	if g.delayAfter > 0 && r.count >= g.delayAfter {
		delay = g.delay
	}
	return authCheck, authAttempt{g: g, key: key, r: r}, delay
}

// release settles a check that succeeded (or never ran): it does not count.
func (a authAttempt) release() {
	a.settle(false, time.Time{})
}

// fail settles a check that failed: it counts, and fail reports whether
// the address is now blocked.
func (a authAttempt) fail(now time.Time) bool {
	return a.settle(true, now)
}

// settle ends the attempt, counts it when it failed, and wakes the AUTH
// that waited for a check to end.
func (a authAttempt) settle(failed bool, now time.Time) (blocked bool) {
	if a.r == nil {
		return false
	}
	g, r := a.g, a.r
	g.mu.Lock()
	r.pending--
	if failed {
		if r.count == 0 {
			r.first = now
		}
		r.count++
		if g.blockAfter > 0 && r.count >= g.blockAfter {
			if !now.Before(r.blockedUntil) {
				r.blockedUntil = now.Add(g.window)
			}
			blocked = true
		}
	}
	waiters := r.waiters
	r.waiters = nil
	if r.count == 0 && r.pending == 0 && g.ips[a.key] == r {
		delete(g.ips, a.key)
	}
	g.mu.Unlock()
	for _, wake := range waiters {
		wake()
	}
	return blocked
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
