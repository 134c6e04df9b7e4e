package inbound

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"
)

// TestReconfigureInPlace: changed settings on the same address keep the
// socket: a session in its transaction finishes it under the old settings
// and is then told 421; a new connection gets the new settings; an
// unchanged config changes nothing.
func TestReconfigureInPlace(t *testing.T) {
	acc := &memAcceptor{}
	cfg := testListener()
	s, addr := startServer(t, cfg, acc, Options{})

	old := dialRaw(t, addr)
	old.hello()
	old.send("MAIL FROM:<a@src.test>\r\n")
	old.expect(250, "")
	old.send("RCPT TO:<b@dst.test>\r\n")
	old.expect(250, "")

	// The same listen string as the running socket's ("127.0.0.1:0"):
	// the same socket.
	bigger := testListener()
	bigger.MaxMessageSize = 2 << 20
	ch, err := s.Reconfigure([]ListenerConfig{bigger}, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if len(ch.Changed) != 1 || len(ch.Added)+len(ch.Removed) != 0 {
		t.Fatalf("changes %+v, want test-in changed", ch)
	}
	if got := s.Addrs(); len(got) != 1 || got[0].String() != addr {
		t.Errorf("addresses after an in-place change: %v, want %s", got, addr)
	}
	nc := dialRaw(t, addr)
	if r := nc.hello(); !strings.Contains(r.String(), "SIZE 2097152") {
		t.Errorf("EHLO after the change: %q", r.String())
	}
	old.send("DATA\r\n")
	old.expect(354, "")
	old.send("Subject: x\r\n\r\nbody\r\n.\r\n")
	old.expect(250, "")
	old.expect(421, "4.3.2")
	old.expectClosed()
	if n := len(acc.messages()); n != 1 {
		t.Errorf("messages accepted: %d, want 1", n)
	}

	ch, err = s.Reconfigure([]ListenerConfig{bigger}, time.Minute)
	if err != nil || !ch.Empty() {
		t.Errorf("the same config again: %+v %v, want no change", ch, err)
	}
	nc.send("NOOP\r\n")
	nc.expect(250, "")
}

// TestReconfigureAddRemove: a new address listens at once, a removed one
// stops listening once its sessions are gone; before Start, Reconfigure
// replaces the configs; an address in use is refused with nothing changed.
func TestReconfigureAddRemove(t *testing.T) {
	acc := &memAcceptor{}
	a := testListener()
	s, err := New(nil, acc, Options{EventLoops: 1})
	if err != nil {
		t.Fatal(err)
	}
	if ch, err := s.Reconfigure([]ListenerConfig{a}, time.Minute); err != nil || len(ch.Added) != 1 {
		t.Fatalf("before Start: %+v %v", ch, err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		s.Stop(ctx)
	})
	addrA := s.Addrs()[0].String()
	c := dialRaw(t, addrA)
	c.hello()

	b := testListener()
	b.Name = "b"
	b.Listen = "127.0.0.2:0"
	ch, err := s.Reconfigure([]ListenerConfig{b}, time.Minute)
	if err != nil || len(ch.Added) != 1 || len(ch.Removed) != 1 {
		t.Fatalf("add b, remove a: %+v %v", ch, err)
	}
	addrs := s.Addrs()
	if len(addrs) != 1 || !strings.HasPrefix(addrs[0].String(), "127.0.0.2:") {
		t.Fatalf("addresses %v, want only b's", addrs)
	}
	dialRaw(t, addrs[0].String()).hello()
	c.expect(421, "4.3.2") // idle: told at once
	c.expectClosed()
	waitFor(t, 10*time.Second, "a's socket closed", func() bool {
		conn, err := net.DialTimeout("tcp", addrA, time.Second)
		if err != nil {
			return true
		}
		conn.Close()
		return false
	})

	busy, err := net.Listen("tcp", "127.0.0.3:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	c3 := testListener()
	c3.Name, c3.Listen = "c", busy.Addr().String()
	if _, err := s.Reconfigure([]ListenerConfig{b, c3}, time.Minute); err == nil || !strings.Contains(err.Error(), "already in use") {
		t.Errorf("an address in use: %v", err)
	}
	if got := s.Addrs(); len(got) != 1 {
		t.Errorf("addresses after a refused change: %v", got)
	}
}

// TestReconfigureSameListenString: two listeners on "127.0.0.1:0" are
// matched in turn, so the same configs again change nothing.
func TestReconfigureSameListenString(t *testing.T) {
	a, b := testListener(), testListener()
	b.Name = "second"
	s, err := New([]ListenerConfig{a, b}, &memAcceptor{}, Options{EventLoops: 1})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	defer s.Stop(context.Background())
	before := s.Addrs()
	ch, err := s.Reconfigure([]ListenerConfig{a, b}, time.Minute)
	if err != nil || !ch.Empty() {
		t.Fatalf("the same two listeners: %+v %v", ch, err)
	}
	b.MaxRecipients = 7
	if ch, err = s.Reconfigure([]ListenerConfig{a, b}, time.Minute); err != nil || len(ch.Changed) != 1 || ch.Changed[0] != "second" {
		t.Fatalf("second changed: %+v %v", ch, err)
	}
	if after := s.Addrs(); len(after) != 2 || after[0].String() != before[0].String() || after[1].String() != before[1].String() {
		t.Errorf("addresses %v, then %v", before, after)
	}
}
