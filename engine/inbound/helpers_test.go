package inbound

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"gannet/smtpwire"
)

// memAcceptor is an in-memory fake of the engine side: it keeps every
// accepted message. Block, when set, holds Accept until it is closed.
type memAcceptor struct {
	mu       sync.Mutex
	msgs     []*Incoming
	n        atomic.Int64
	block    chan struct{}
	entered  chan struct{} // receives once per Accept call when not nil
	reply    *smtpwire.Reply
	mailDeny *smtpwire.Reply
}

func (a *memAcceptor) Accept(ctx context.Context, in *Incoming) smtpwire.Reply {
	if a.entered != nil {
		a.entered <- struct{}{}
	}
	if a.block != nil {
		<-a.block
	}
	if a.reply != nil {
		return *a.reply
	}
	id := a.n.Add(1)
	a.mu.Lock()
	a.msgs = append(a.msgs, in)
	a.mu.Unlock()
	return smtpwire.Reply{Code: 250, Enhanced: "2.0.0", Lines: []string{fmt.Sprintf("OK id=m%d", id)}}
}

func (a *memAcceptor) CheckMail(in *Incoming) *smtpwire.Reply { return a.mailDeny }

func (a *memAcceptor) messages() []*Incoming {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]*Incoming(nil), a.msgs...)
}

// testListener is a listener config with short limits for tests.
func testListener() ListenerConfig {
	return ListenerConfig{
		Name:           "test-in",
		Listen:         "127.0.0.1:0",
		Hostname:       "mx.gannet.test",
		RelayHosts:     mustPrefixes("127.0.0.1/32", "::1/128"),
		MaxMessageSize: 1 << 20,
		MaxRecipients:  50,
		MaxBadCommands: 5,
		CommandTimeout: 10 * time.Second,
		DataTimeout:    10 * time.Second,
		IdleTimeout:    10 * time.Second,
	}
}

// startServer starts a server with one listener and stops it at cleanup.
func startServer(t testing.TB, cfg ListenerConfig, acc Acceptor, opts Options) (*Server, string) {
	t.Helper()
	if opts.EventLoops == 0 {
		opts.EventLoops = 2
	}
	s, err := New([]ListenerConfig{cfg}, acc, opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := s.Stop(ctx); err != nil {
			t.Errorf("Stop: %v", err)
		}
	})
	return s, s.Addrs()[0].String()
}

// rawClient speaks SMTP by hand over one TCP connection.
type rawClient struct {
	t    testing.TB
	conn net.Conn
	r    *bufio.Reader
}

func dialRaw(t testing.TB, addr string) *rawClient {
	t.Helper()
	return dialRawFrom(t, addr, "")
}

// dialRawFrom dials from a chosen loopback source address (127.0.0.0/8 works
// without setup).
func dialRawFrom(t testing.TB, addr, from string) *rawClient {
	t.Helper()
	d := net.Dialer{Timeout: 5 * time.Second}
	if from != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(from)}
	}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &rawClient{t: t, conn: c, r: bufio.NewReader(c)}
}

func (c *rawClient) send(s string) {
	c.t.Helper()
	_ = c.conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.conn.Write([]byte(s)); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

// reply reads one whole (multi-line) reply.
func (c *rawClient) reply() smtpwire.Reply {
	c.t.Helper()
	_ = c.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	var raw []byte
	for {
		line, err := c.r.ReadBytes('\n')
		raw = append(raw, line...)
		if err != nil {
			c.t.Fatalf("read reply: %v (have %q)", err, raw)
		}
		if len(line) < 4 || line[3] == ' ' {
			break
		}
	}
	r, _, err := smtpwire.ParseReply(raw)
	if err != nil {
		c.t.Fatalf("parse reply %q: %v", raw, err)
	}
	return r
}

// expect reads one reply and checks its code (and enhanced code when given).
func (c *rawClient) expect(code int, enhanced string) smtpwire.Reply {
	c.t.Helper()
	r := c.reply()
	if r.Code != code || (enhanced != "" && r.Enhanced != enhanced) {
		c.t.Fatalf("got %q, want %d %s", r.String(), code, enhanced)
	}
	return r
}

// expectClosed checks that the server closes the connection.
func (c *rawClient) expectClosed() {
	c.t.Helper()
	_ = c.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	b, err := c.r.ReadByte()
	if err == nil {
		rest, _ := c.r.Peek(c.r.Buffered())
		c.t.Fatalf("connection still open, read %q", append([]byte{b}, rest...))
	}
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		c.t.Fatalf("connection still open after 5s")
	}
}

// hello reads the greeting and sends EHLO.
func (c *rawClient) hello() smtpwire.Reply {
	c.t.Helper()
	c.expect(220, "")
	c.send("EHLO client.example.test\r\n")
	return c.expect(250, "")
}

func mustPrefixes(ss ...string) []netip.Prefix {
	out := make([]netip.Prefix, len(ss))
	for i, s := range ss {
		out[i] = netip.MustParsePrefix(s)
	}
	return out
}

// waitFor polls cond for up to d.
func waitFor(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func hasLine(r smtpwire.Reply, prefix string) bool {
	for _, l := range r.Lines {
		if strings.HasPrefix(strings.ToUpper(l), strings.ToUpper(prefix)) {
			return true
		}
	}
	return false
}
