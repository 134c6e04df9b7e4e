package inbound

import (
	"bufio"
	"crypto/tls"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"gannet/proxyproto"
)

// proxyListener is a listener behind a proxy at 127.0.0.2 whose relay
// hosts are one client (127.0.0.10) and the proxy itself, so that a
// relay decision shows which address the listener went by.
func proxyListener() ListenerConfig {
	cfg := testListener()
	cfg.ProxyProtocol = true
	cfg.TrustedProxies = mustPrefixes("127.0.0.2/32")
	cfg.RelayHosts = mustPrefixes("127.0.0.10/32", "127.0.0.2/32")
	return cfg
}

func header(v int, src, dst string) []byte {
	var s, d netip.AddrPort
	if src != "" {
		s, d = netip.MustParseAddrPort(src), netip.MustParseAddrPort(dst)
	}
	if v == 1 {
		return proxyproto.AppendV1(nil, s, d)
	}
	return proxyproto.AppendV2(nil, s, d, nil)
}

// TestProxyHeaderGivesClientAddress: through a trusted proxy, the header's
// source address is the client's for relay_hosts, the message's peer and
// its Received field; a client outside relay_hosts is refused although the
// proxy is inside them.
func TestProxyHeaderGivesClientAddress(t *testing.T) {
	for _, v := range []int{1, 2} {
		acc := &memAcceptor{}
		gr := &scriptGreeter{}
		_, addr := startServer(t, proxyListener(), acc, Options{Greeter: gr})
		c := dialRawFrom(t, addr, "127.0.0.2")
		c.send(string(header(v, "127.0.0.10:4000", "127.0.0.1:25")))
		c.hello()
		c.send("MAIL FROM:<a@sender.test>\r\nRCPT TO:<b@rcpt.test>\r\nDATA\r\n")
		c.expect(250, "")
		c.expect(250, "")
		c.expect(354, "")
		c.send("Subject: hi\r\n\r\nbody\r\n.\r\n")
		c.expect(250, "")
		msgs := acc.messages()
		if len(msgs) != 1 || msgs[0].Peer != netip.MustParseAddrPort("127.0.0.10:4000") {
			t.Fatalf("v%d: messages %v, want one from 127.0.0.10:4000", v, msgs)
		}
		if rec := string(msgs[0].ReceivedHeader("x", time.Unix(0, 0))); !strings.Contains(rec, "[127.0.0.10]") || strings.Contains(rec, "127.0.0.2") {
			t.Errorf("v%d: Received %q, want the client's address only", v, rec)
		}
		// The policy hook's connection metadata names the client too.
		gr.mu.Lock()
		calls := append([]Greeting(nil), gr.calls...)
		gr.mu.Unlock()
		if len(calls) != 1 || calls[0].Peer != netip.MustParseAddrPort("127.0.0.10:4000") {
			t.Errorf("v%d: greeter calls %+v, want one with the client's address", v, calls)
		}

		d := dialRawFrom(t, addr, "127.0.0.2")
		d.send(string(header(v, "127.0.0.11:4001", "127.0.0.1:25")))
		d.hello()
		d.send("MAIL FROM:<a@sender.test>\r\nRCPT TO:<b@rcpt.test>\r\n")
		d.expect(250, "")
		d.expect(554, "5.7.1")
	}
}

// TestProxyHeaderSplit: a header that arrives in pieces is waited for;
// until it is whole the connection is not opened (no session, no
// greeting), and the header, the greeting and the commands then follow in
// order.
func TestProxyHeaderSplit(t *testing.T) {
	m := &countingMetrics{}
	acc := &memAcceptor{}
	srv, addr := startServer(t, proxyListener(), acc, Options{Metrics: m})
	h := header(2, "127.0.0.10:4000", "127.0.0.1:25")
	c := dialRawFrom(t, addr, "127.0.0.2")
	c.send(string(h[:10]))
	waitFor(t, 5*time.Second, "the connection", func() bool { return srv.OpenConnections() == 1 })
	c.send(string(h[10:20]))
	// The server has the connection but has not opened a session for it.
	if n := m.opened.Load(); n != 0 {
		t.Fatalf("%d connections opened before the header was complete", n)
	}
	c.send(string(h[20:]))
	c.hello()
	if n := m.opened.Load(); n != 1 {
		t.Fatalf("%d connections opened, want 1", n)
	}
}

// TestProxyLocalKeepsProxyAddress: a v2 LOCAL or a v1 UNKNOWN header (the
// proxy's health check) is accepted with the proxy's own address.
func TestProxyLocalKeepsProxyAddress(t *testing.T) {
	for _, v := range []int{1, 2} {
		acc := &memAcceptor{}
		_, addr := startServer(t, proxyListener(), acc, Options{})
		c := dialRawFrom(t, addr, "127.0.0.2")
		c.send(string(header(v, "", "")))
		c.hello()
		c.send("MAIL FROM:<a@sender.test>\r\nRCPT TO:<b@rcpt.test>\r\nDATA\r\n")
		c.expect(250, "")
		c.expect(250, "")
		c.expect(354, "")
		c.send("\r\nbody\r\n.\r\n")
		c.expect(250, "")
		if msgs := acc.messages(); len(msgs) != 1 || msgs[0].Peer.Addr() != netip.MustParseAddr("127.0.0.2") {
			t.Fatalf("v%d: messages %v, want one from the proxy 127.0.0.2", v, msgs)
		}
	}
}

// TestProxyRefusals: a connection from outside trusted_proxies (with or
// without a header), no header, a malformed or oversized header, or a
// header that never completes, gets "421" as its first and last line (no
// greeting) and is closed; each is counted by reason and reported as a
// Rejection with the TCP peer's address.
func TestProxyRefusals(t *testing.T) {
	m := &countingMetrics{}
	rl := &rejectionLog{}
	cfg := proxyListener()
	cfg.ProxyHeaderTimeout = 200 * time.Millisecond
	srv, addr := startServer(t, cfg, &memAcceptor{}, Options{Metrics: m, OnRejection: rl.add})
	tooLong := append(header(2, "127.0.0.10:1", "127.0.0.1:25")[:14], 0xFF, 0xFF)
	cases := []struct {
		name, from, send, reason, enhanced string
	}{
		{"untrusted, no header", "127.0.0.3", "", ProxyUntrusted, "4.7.0"},
		{"untrusted with a header", "127.0.0.3", string(header(1, "127.0.0.10:1", "127.0.0.1:25")), ProxyUntrusted, "4.7.0"},
		{"SMTP instead of a header", "127.0.0.2", "EHLO client.test\r\n", ProxyMalformed, "4.7.0"},
		{"malformed v1", "127.0.0.2", "PROXY TCP4 127.0.0.010 127.0.0.1 1 25\r\n", ProxyMalformed, "4.7.0"},
		{"v2 length past the bound", "127.0.0.2", string(tooLong), ProxyMalformed, "4.7.0"},
		{"v1 without CRLF", "127.0.0.2", "PROXY TCP4 " + strings.Repeat("1", 120), ProxyMalformed, "4.7.0"},
		{"partial header then silence", "127.0.0.2", "PROXY TCP4 127.0.0.10", ProxyTimeout, "4.4.2"},
		{"nothing", "127.0.0.2", "", ProxyTimeout, "4.4.2"},
	}
	for i, tc := range cases {
		c := dialRawFrom(t, addr, tc.from)
		if tc.send != "" {
			c.send(tc.send)
		}
		c.expect(421, tc.enhanced)
		c.expectClosed()
		if got := m.refusedFor(tc.reason); got == 0 {
			t.Errorf("%s: not counted as %s", tc.name, tc.reason)
		}
		rs := rl.get()
		if len(rs) != i+1 {
			t.Fatalf("%s: %d rejections reported, want %d", tc.name, len(rs), i+1)
		}
		if r := rs[i]; r.Command != "PROXY" || r.Peer.Addr().String() != tc.from {
			t.Errorf("%s: rejection %+v", tc.name, r)
		}
	}
	if m.refusedFor(ProxyUntrusted) != 2 || m.refusedFor(ProxyMalformed) != 4 || m.refusedFor(ProxyTimeout) != 2 {
		t.Errorf("counts %v", m.proxyRefused)
	}
	if n := m.opened.Load(); n != 0 {
		t.Errorf("%d refused connections were opened", n)
	}
	waitFor(t, 5*time.Second, "connections to be forgotten", func() bool { return srv.OpenConnections() == 0 })
	// The listener still serves.
	c := dialRawFrom(t, addr, "127.0.0.2")
	c.send(string(header(2, "127.0.0.10:4000", "127.0.0.1:25")))
	c.hello()
}

// TestProxyLimitsPerClient: max_connections_per_ip counts the clients the
// headers name, not the proxy that carries them all.
func TestProxyLimitsPerClient(t *testing.T) {
	cfg := proxyListener()
	cfg.MaxConnectionsPerIP = 1
	_, addr := startServer(t, cfg, &memAcceptor{}, Options{})
	a := dialRawFrom(t, addr, "127.0.0.2")
	a.send(string(header(2, "127.0.0.10:1", "127.0.0.1:25")))
	a.hello()
	b := dialRawFrom(t, addr, "127.0.0.2")
	b.send(string(header(1, "127.0.0.10:2", "127.0.0.1:25")))
	b.expect(421, "4.3.2")
	b.expectClosed()
	c := dialRawFrom(t, addr, "127.0.0.2")
	c.send(string(header(2, "127.0.0.11:3", "127.0.0.1:25")))
	c.hello()
}

// TestProxyAuthBlockPerClient: AUTH failures block the client the header
// names; another client behind the same proxy is not blocked.
func TestProxyAuthBlockPerClient(t *testing.T) {
	cfg := proxyListener()
	cfg.RelayHosts = nil
	cfg.AuthMechs = []string{"PLAIN"}
	cfg.AuthFailDelayAfter = -1
	cfg.AuthFailBlockAfter = 2
	_, addr := startServer(t, cfg, &memAcceptor{}, Options{Authenticator: &fakeAuth{}})
	bad := "AUTH PLAIN AGFwcDEAd3Jvbmc=\r\n" // app1 / wrong
	c := dialRawFrom(t, addr, "127.0.0.2")
	c.send(string(header(2, "127.0.0.10:1", "127.0.0.1:25")))
	c.hello()
	c.send(bad)
	c.expect(535, "5.7.8")
	c.send(bad)
	c.expect(421, "4.7.0")
	// The blocked client is refused at connect, through the proxy.
	d := dialRawFrom(t, addr, "127.0.0.2")
	d.send(string(header(1, "127.0.0.10:2", "127.0.0.1:25")))
	d.expect(421, "4.7.0")
	// Another client of the same proxy is served.
	e := dialRawFrom(t, addr, "127.0.0.2")
	e.send(string(header(2, "127.0.0.11:3", "127.0.0.1:25")))
	e.hello()
}

// prefixConn sends pre in the same write as the first bytes written
// through it, as a proxy does with the header and the client's first
// packet.
type prefixConn struct {
	net.Conn
	pre []byte
}

func (p *prefixConn) Write(b []byte) (int, error) {
	if p.pre != nil {
		all := append(p.pre, b...)
		p.pre = nil
		if _, err := p.Conn.Write(all); err != nil {
			return 0, err
		}
		return len(b), nil
	}
	return p.Conn.Write(b)
}

// TestProxyImplicitTLS: on an implicit-TLS listener the ClientHello comes
// right behind the header, in the same segment; the handshake and the
// session go on from there with the client's address.
func TestProxyImplicitTLS(t *testing.T) {
	srvTLS, cliTLS := testCert(t)
	cfg := proxyListener()
	cfg.TLSConfig, cfg.ImplicitTLS = srvTLS, true
	acc := &memAcceptor{}
	_, addr := startServer(t, cfg, acc, Options{})
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.2")}, Timeout: 5 * time.Second}
	raw, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	tc := tls.Client(&prefixConn{Conn: raw, pre: header(2, "127.0.0.10:4000", "127.0.0.1:465")}, cliTLS)
	c := &rawClient{t: t, conn: tc, r: bufio.NewReader(tc)}
	c.hello()
	c.send("MAIL FROM:<a@sender.test>\r\nRCPT TO:<b@rcpt.test>\r\nDATA\r\n")
	c.expect(250, "")
	c.expect(250, "")
	c.expect(354, "")
	c.send("\r\nbody\r\n.\r\n")
	c.expect(250, "")
	if msgs := acc.messages(); len(msgs) != 1 || msgs[0].Peer.Addr() != netip.MustParseAddr("127.0.0.10") || msgs[0].TLS == nil {
		t.Fatalf("messages %v, want one over TLS from 127.0.0.10", msgs)
	}
	// Refused on an implicit-TLS listener: closed without a plaintext word.
	u := dialRawFrom(t, addr, "127.0.0.3")
	u.expectClosed()
}

// TestProxyReconfigure: a reload that turns proxy_protocol on makes new
// connections need a header; one that trusts another proxy follows.
func TestProxyReconfigure(t *testing.T) {
	cfg := testListener()
	srv, addr := startServer(t, cfg, &memAcceptor{}, Options{})
	dialRawFrom(t, addr, "127.0.0.2").hello()
	on := cfg
	on.ProxyProtocol, on.TrustedProxies = true, mustPrefixes("127.0.0.2/32")
	if _, err := srv.Reconfigure([]ListenerConfig{on}, time.Second); err != nil {
		t.Fatal(err)
	}
	c := dialRawFrom(t, addr, "127.0.0.3")
	c.expect(421, "4.7.0")
	p := dialRawFrom(t, addr, "127.0.0.2")
	p.send(string(header(1, "127.0.0.10:1", "127.0.0.1:25")))
	p.hello()
	other := on
	other.TrustedProxies = mustPrefixes("127.0.0.3/32")
	if _, err := srv.Reconfigure([]ListenerConfig{other}, time.Second); err != nil {
		t.Fatal(err)
	}
	q := dialRawFrom(t, addr, "127.0.0.3")
	q.send(string(header(2, "127.0.0.10:1", "127.0.0.1:25")))
	q.hello()
	r := dialRawFrom(t, addr, "127.0.0.2")
	r.expect(421, "4.7.0")
}

// TestProxyConfigNeedsTrustedProxies: proxy_protocol without
// trusted_proxies is refused when the server is built.
func TestProxyConfigNeedsTrustedProxies(t *testing.T) {
	cfg := testListener()
	cfg.ProxyProtocol = true
	if _, err := New([]ListenerConfig{cfg}, &memAcceptor{}, Options{}); err == nil || !strings.Contains(err.Error(), "trusted_proxies") {
		t.Fatalf("New: %v", err)
	}
}
