package inbound

import (
	"context"
	"encoding/base64"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"gannet/smtpwire"
)

// failOnce is one failed AUTH from ip at now, the way a connection makes
// it: reserve, check, fail. It reports the verdict and whether the failure
// blocked the address.
func failOnce(g *authGuard, ip netip.Addr, now time.Time) (authVerdict, time.Duration, bool) {
	v, a, delay := g.reserve(ip, now, func() {})
	if v != authCheck {
		return v, 0, false
	}
	return v, delay, a.fail(now)
}

func TestAuthGuardCounts(t *testing.T) {
	cfg := ListenerConfig{AuthFailDelayAfter: 3, AuthFailDelay: time.Second, AuthFailBlockAfter: 5, AuthFailWindow: time.Minute}
	g := newAuthGuard(cfg)
	t0 := time.Unix(1_700_000_000, 0)
	ip := netip.MustParseAddr("192.0.2.7")
	other := netip.MustParseAddr("192.0.2.8")
	for i := 1; i <= 5; i++ {
		wantDelay := time.Duration(0)
		if i > 3 {
			wantDelay = time.Second
		}
		v, d, blocked := failOnce(g, ip, t0)
		if v != authCheck || d != wantDelay {
			t.Fatalf("attempt %d: verdict %v, delay %v, want a check delayed %v", i, v, d, wantDelay)
		}
		if blocked != (i == 5) {
			t.Fatalf("failure %d: blocked=%v", i, blocked)
		}
	}
	if v, _, _ := failOnce(g, ip, t0.Add(time.Second)); v != authBlocked {
		t.Fatalf("attempt 6: verdict %v, want blocked", v)
	}
	if v, _, blk := failOnce(g, other, t0); !g.blocked(ip, t0.Add(59*time.Second)) || g.blocked(other, t0) || v != authCheck || blk {
		t.Fatal("block not per address")
	}
	// A success is not counted.
	v, a, _ := g.reserve(other, t0, func() {})
	a.release()
	if v != authCheck || g.blocked(other, t0) {
		t.Fatal("a success counted")
	}
	// The block lasts one window, then everything is forgotten.
	if g.blocked(ip, t0.Add(61*time.Second)) || g.tracked() != 1 {
		t.Fatalf("still blocked, or %d addresses tracked after the window", g.tracked())
	}
	if _, d, _ := failOnce(g, ip, t0.Add(61*time.Second)); d != 0 {
		t.Fatalf("delay %v after the window", d)
	}
	// Failures spread wider than the window never add up.
	for i := 0; i < 20; i++ {
		if _, _, blocked := failOnce(g, ip, t0.Add(2*time.Minute+time.Duration(i)*31*time.Second)); blocked {
			t.Fatalf("blocked at failure %d although they are 31s apart", i)
		}
	}
	// IPv6 clients are counted per /64.
	a6, b6 := netip.MustParseAddr("2001:db8:1:2::1"), netip.MustParseAddr("2001:db8:1:2:ffff::9")
	for i := 0; i < 5; i++ {
		failOnce(g, a6, t0)
	}
	if !g.blocked(b6, t0) || g.blocked(netip.MustParseAddr("2001:db8:1:3::1"), t0) {
		t.Fatal("IPv6 not counted per /64")
	}
	// The map is pruned.
	g.prune(t0.Add(time.Hour))
	if g.tracked() != 0 {
		t.Fatalf("%d entries after prune", g.tracked())
	}
	if newAuthGuard(ListenerConfig{AuthFailWindow: -1, AuthFailDelayAfter: 3, AuthFailBlockAfter: 3}) != nil {
		t.Fatal("negative window does not turn the guard off")
	}
	var off *authGuard
	if v, d, blocked := failOnce(off, ip, t0); v != authCheck || d != 0 || blocked || off.blocked(ip, t0) {
		t.Fatal("nil guard acts")
	}
}

// TestAuthGuardParallel is the lockout race of issue #15 on the guard
// alone: 300 goroutines each try one wrong password from the same address
// at once, the way 300 parallel connections do. An attempt is counted when
// it is reserved, before its check, so exactly AuthFailBlockAfter passwords
// are checked, never more than maxAuthInFlight at once; every other
// attempt is refused as blocked. A right password among them is checked
// only if it is reserved before the block, and a success does not count.
func TestAuthGuardParallel(t *testing.T) {
	for _, right := range []int{-1, 0, 150} { // which attempt has the right password
		g := newAuthGuard(ListenerConfig{AuthFailDelayAfter: -1, AuthFailBlockAfter: 10, AuthFailWindow: time.Minute})
		ip := netip.MustParseAddr("192.0.2.9")
		now := time.Unix(1_700_000_000, 0)
		var checks, inFlight, maxInFlight, blocked, accepted atomic.Int64
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := 0; i < 300; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				wake := make(chan struct{}, 1)
				for {
					v, a, _ := g.reserve(ip, now, func() { wake <- struct{}{} })
					switch v {
					case authBlocked:
						blocked.Add(1)
						return
					case authWait:
						<-wake
						continue
					}
					checks.Add(1)
					n := inFlight.Add(1)
					for m := maxInFlight.Load(); n > m && !maxInFlight.CompareAndSwap(m, n); m = maxInFlight.Load() {
					}
					time.Sleep(time.Millisecond) // the password check
					inFlight.Add(-1)
					if i == right {
						accepted.Add(1)
						a.release()
					} else {
						a.fail(now)
					}
					return
				}
			}()
		}
		close(start)
		wg.Wait()
		wantChecks := int64(10)
		if accepted.Load() == 1 {
			wantChecks = 11 // the success did not count against the block
		}
		if checks.Load() != wantChecks || checks.Load()+blocked.Load() != 300 {
			t.Errorf("right=%d: %d password checks (want %d), %d blocked, %d accepted",
				right, checks.Load(), wantChecks, blocked.Load(), accepted.Load())
		}
		if m := maxInFlight.Load(); m > maxAuthInFlight {
			t.Errorf("right=%d: %d checks in flight at once, at most %d allowed", right, m, maxAuthInFlight)
		}
		if !g.blocked(ip, now) {
			t.Errorf("right=%d: the address is not blocked", right)
		}
	}
}

// TestAuthFailuresSlowThenBlock drives the guard through the listener: a
// client outside relay_hosts fails AUTH over several connections; from the
// third failure its answers are delayed (while the event loop keeps serving
// others), at the fifth it gets 421 4.7.0 and is disconnected, then it is
// refused at connect.
func TestAuthFailuresSlowThenBlock(t *testing.T) {
	cfg := testListener()
	cfg.AuthMechs = []string{"PLAIN", "LOGIN"}
	cfg.AuthFailDelayAfter = 2
	cfg.AuthFailDelay = 400 * time.Millisecond
	cfg.AuthFailBlockAfter = 4
	cfg.AuthFailWindow = time.Minute
	acc := &memAcceptor{}
	auth := &fakeAuth{}
	srv, addr := startServer(t, cfg, acc, Options{Authenticator: auth, EventLoops: 1})
	bad := authPlain("app1", "wrong")

	// Failures 1 and 2: immediate 535, on separate connections.
	for i := 1; i <= 2; i++ {
		c := dialRawFrom(t, addr, "127.0.0.9")
		c.hello()
		start := time.Now()
		c.send(bad)
		c.expect(535, "5.7.8")
		if d := time.Since(start); d > 300*time.Millisecond {
			t.Errorf("failure %d answered after %v", i, d)
		}
		c.conn.Close()
	}
	// Failure 3: delayed; meanwhile another client on the same (single)
	// event loop is served at once.
	c := dialRawFrom(t, addr, "127.0.0.9")
	c.hello()
	other := dialRawFrom(t, addr, "127.0.0.5")
	other.hello()
	start := time.Now()
	c.send(bad)
	time.Sleep(50 * time.Millisecond)
	t0 := time.Now()
	other.send("NOOP\r\n")
	other.expect(250, "2.0.0")
	if d := time.Since(t0); d > 200*time.Millisecond {
		t.Errorf("event loop blocked by the AUTH delay: NOOP took %v", d)
	}
	c.expect(535, "5.7.8")
	if d := time.Since(start); d < 380*time.Millisecond {
		t.Errorf("failure 3 answered after %v, want >= 400ms", d)
	}
	// Failure 4: 421 4.7.0 and the connection closes.
	c.send("AUTH LOGIN " + base64.StdEncoding.EncodeToString([]byte("app1")) + "\r\n")
	c.expect(334, "")
	c.send(base64.StdEncoding.EncodeToString([]byte("nope")) + "\r\n")
	c.expect(421, "4.7.0")
	c.expectClosed()
	// Now refused at connect.
	d := dialRawFrom(t, addr, "127.0.0.9")
	d.expect(421, "4.7.0")
	d.expectClosed()
	if n := auth.calls.Load(); n != 4 {
		t.Errorf("authenticator called %d times, want 4", n)
	}
	if len(acc.messages()) != 0 {
		t.Errorf("messages accepted")
	}
	waitFor(t, 2*time.Second, "connections closed", func() bool { return srv.OpenConnections() == 1 })
}

// authPlain is an AUTH PLAIN command line with an initial response.
func authPlain(user, pass string) string {
	return "AUTH PLAIN " + base64.StdEncoding.EncodeToString([]byte("\x00"+user+"\x00"+pass)) + "\r\n"
}

// blockingListener is testListener offering AUTH PLAIN, its guard blocking
// an address at blockAfter failures a minute, without delays.
func blockingListener(blockAfter int) ListenerConfig {
	cfg := testListener()
	cfg.AuthMechs = []string{"PLAIN"}
	cfg.AuthFailDelayAfter = -1
	cfg.AuthFailBlockAfter = blockAfter
	cfg.AuthFailWindow = time.Minute
	return cfg
}

// TestAuthBlockRelayHost: a blocked address inside relay_hosts may still
// connect and relay without AUTH, but its AUTH gets 421 4.7.0.
func TestAuthBlockRelayHost(t *testing.T) {
	cfg := blockingListener(2)
	acc := &memAcceptor{}
	_, addr := startServer(t, cfg, acc, Options{Authenticator: &fakeAuth{}})
	bad, good := authPlain("app1", "wrong"), authPlain("app1", "secret")
	c := dialRaw(t, addr) // 127.0.0.1 is a relay host in testListener
	c.hello()
	c.send(bad)
	c.expect(535, "5.7.8")
	c.send(bad)
	c.expect(421, "4.7.0")
	c.expectClosed()
	c = dialRaw(t, addr)
	c.hello()
	c.send(good)
	c.expect(421, "4.7.0")
	c.expectClosed()
	c = dialRaw(t, addr)
	c.hello()
	c.send("MAIL FROM:<a@example.test>\r\nRCPT TO:<b@example.test>\r\nDATA\r\n")
	c.expect(250, "")
	c.expect(250, "")
	c.expect(354, "")
	c.send("Subject: x\r\n\r\nhi\r\n.\r\n")
	c.expect(250, "2.0.0")
	if len(acc.messages()) != 1 {
		t.Fatal("relay host could not relay while blocked for AUTH")
	}
}

// slowAuth is fakeAuth taking as long as a bcrypt comparison.
type slowAuth struct{ fakeAuth }

func (a *slowAuth) Authenticate(ctx context.Context, cred smtpwire.AuthCredentials) (string, string, bool) {
	time.Sleep(20 * time.Millisecond)
	return a.fakeAuth.Authenticate(ctx, cred)
}

// TestAuthParallelConnections is the lockout race of issue #15 through the
// listener: 100 connections from one address send a wrong AUTH PLAIN at
// once, to an authenticator as slow as bcrypt. Exactly AuthFailBlockAfter
// passwords are checked; the last of those failures and every other AUTH
// get 421 4.7.0; and the right password, tried afterwards, is refused at
// connect without being looked at.
func TestAuthParallelConnections(t *testing.T) {
	cfg := blockingListener(10)
	auth := &slowAuth{}
	_, addr := startServer(t, cfg, &memAcceptor{}, Options{Authenticator: auth})
	const n = 100
	clients := make([]*rawClient, n)
	for i := range clients {
		clients[i] = dialRawFrom(t, addr, "127.0.0.9") // not a relay host
		clients[i].hello()
	}
	bad := authPlain("app1", "wrong")
	replies := make([]string, n)
	var wg sync.WaitGroup
	for i, c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = c.conn.SetDeadline(time.Now().Add(10 * time.Second))
			if _, err := c.conn.Write([]byte(bad)); err != nil {
				replies[i] = err.Error()
				return
			}
			line, err := c.r.ReadString('\n')
			if err != nil {
				line = err.Error()
			}
			replies[i] = strings.TrimSpace(line)
		}()
	}
	wg.Wait()
	count := map[string]int{}
	for _, r := range replies {
		count[strings.Join(strings.Fields(r)[:min(2, len(strings.Fields(r)))], " ")]++
	}
	if calls := auth.calls.Load(); calls != 10 || count["535 5.7.8"] != 9 || count["421 4.7.0"] != n-9 {
		t.Errorf("%d passwords checked, want 10; replies %v", calls, count)
	}
	c := dialRawFrom(t, addr, "127.0.0.9")
	c.expect(421, "4.7.0")
	c.expectClosed()
	if calls := auth.calls.Load(); calls != 10 {
		t.Errorf("%d passwords checked after the block", calls)
	}
}
