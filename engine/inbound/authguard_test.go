package inbound

import (
	"encoding/base64"
	"net/netip"
	"testing"
	"time"
)

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
		if d := g.delayFor(ip, t0); d != wantDelay {
			t.Fatalf("before failure %d: delay %v, want %v", i, d, wantDelay)
		}
		if blocked := g.failed(ip, t0); blocked != (i == 5) {
			t.Fatalf("failure %d: blocked=%v", i, blocked)
		}
	}
	if !g.blocked(ip, t0.Add(59*time.Second)) || g.blocked(other, t0) || g.delayFor(other, t0) != 0 {
		t.Fatal("block not per address")
	}
	// The block lasts one window, then everything is forgotten.
	if g.blocked(ip, t0.Add(61*time.Second)) || g.delayFor(ip, t0.Add(61*time.Second)) != 0 || g.tracked() != 0 {
		t.Fatalf("still blocked or tracked after the window: %d", g.tracked())
	}
	// Failures spread wider than the window never add up.
	for i := 0; i < 20; i++ {
		if g.failed(ip, t0.Add(time.Duration(i)*31*time.Second)) {
			t.Fatalf("blocked at failure %d although they are 31s apart", i)
		}
	}
	// IPv6 clients are counted per /64.
	a, b := netip.MustParseAddr("2001:db8:1:2::1"), netip.MustParseAddr("2001:db8:1:2:ffff::9")
	for i := 0; i < 5; i++ {
		g.failed(a, t0)
	}
	if !g.blocked(b, t0) || g.blocked(netip.MustParseAddr("2001:db8:1:3::1"), t0) {
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
	if off.failed(ip, t0) || off.blocked(ip, t0) || off.delayFor(ip, t0) != 0 {
		t.Fatal("nil guard acts")
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
	bad := "AUTH PLAIN " + base64.StdEncoding.EncodeToString([]byte("\x00app1\x00wrong")) + "\r\n"

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

// TestAuthBlockRelayHost: a blocked address inside relay_hosts may still
// connect and relay without AUTH, but its AUTH gets 421 4.7.0.
func TestAuthBlockRelayHost(t *testing.T) {
	cfg := testListener()
	cfg.AuthMechs = []string{"PLAIN"}
	cfg.AuthFailDelayAfter = -1
	cfg.AuthFailBlockAfter = 2
	cfg.AuthFailWindow = time.Minute
	acc := &memAcceptor{}
	_, addr := startServer(t, cfg, acc, Options{Authenticator: &fakeAuth{}})
	bad := "AUTH PLAIN " + base64.StdEncoding.EncodeToString([]byte("\x00app1\x00wrong")) + "\r\n"
	good := "AUTH PLAIN " + base64.StdEncoding.EncodeToString([]byte("\x00app1\x00secret")) + "\r\n"
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
