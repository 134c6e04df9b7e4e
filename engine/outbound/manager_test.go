package outbound

import (
	"bytes"
	"context"
	"crypto/tls"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"gannet/resolver"
	"gannet/smtpwire"
)

const testBody = "From: a@src.test\r\nTo: b@dst.test\r\nSubject: hi\r\n\r\nHello.\r\n"

// newTestManager returns a Manager that sends to port on MX hosts, with
// short timeouts, closed at cleanup.
func newTestManager(t testing.TB, port uint16, mod func(*Options)) *Manager {
	t.Helper()
	o := Options{
		EHLOName:       "relay.gannet.test",
		SMTPPort:       int(port),
		ConnectTimeout: 2 * time.Second,
		CommandTimeout: 5 * time.Second,
		DataTimeout:    5 * time.Second,
		IdleTimeout:    5 * time.Second,
		TLS:            TLSPolicy{Mode: TLSDisabled},
	}
	if mod != nil {
		mod(&o)
	}
	m := New(o)
	t.Cleanup(func() { m.Close() })
	return m
}

// routeTo is a route whose MX hosts are the given loopback addresses, in
// preference order, named mx1.dst.test, mx2.dst.test, ...
func routeTo(domain string, ips ...string) *resolver.Route {
	r := &resolver.Route{Domain: domain}
	var names []string
	for i, ip := range ips {
		name := "mx" + itoa(i+1) + "." + domain
		r.Hosts = append(r.Hosts, resolver.Host{Name: name, Pref: uint16(10 * (i + 1)), Addrs: []netip.Addr{netip.MustParseAddr(ip)}})
		names = append(names, name)
	}
	r.Site = resolver.MXSite(names)
	return r
}

func env(body string, rcpts ...string) *Envelope {
	return &Envelope{From: "sender@src.test", Rcpts: rcpts, Body: []byte(body)}
}

func wantStatuses(t *testing.T, o Outcome, want ...Status) {
	t.Helper()
	if len(o.Results) != len(want) {
		t.Fatalf("%d results, want %d: %+v", len(o.Results), len(want), o.Results)
	}
	for i, w := range want {
		if o.Results[i].Status != w {
			t.Errorf("recipient %s: %v (%s), want %v", o.Results[i].Rcpt, o.Results[i].Status, o.Results[i].Reply, w)
		}
	}
}

func TestDeliverPipelinedPartialFailure(t *testing.T) {
	rx := newTestReceiver(t, "127.0.0.1")
	rx.OnRcpt = func(a string) string {
		switch {
		case strings.HasPrefix(a, "unknown"):
			return "550 5.1.1 no such user"
		case strings.HasPrefix(a, "full"):
			return "452 4.2.2 mailbox full"
		}
		return "250 2.1.5 ok"
	}
	rx.Start()
	m := newTestManager(t, rx.Addr.Port(), nil)
	o := m.Deliver(context.Background(), routeTo("dst.test", "127.0.0.1"),
		env(testBody, "a@dst.test", "unknown@dst.test", "full@dst.test", "b@dst.test"))
	wantStatuses(t, o, Delivered, Bounced, Transient, Delivered)
	if r := o.Results[1].Reply; r.Code != 550 || r.Enhanced != "5.1.1" {
		t.Errorf("bounced recipient's reply = %s, want the server's 550 5.1.1", r)
	}
	if r := o.Results[0].Reply; r.Code != 250 || !strings.Contains(r.String(), "queued") {
		t.Errorf("delivered recipient's reply = %s, want the final 250", r)
	}
	if o.Peer != rx.Addr || o.Host != "mx1.dst.test" {
		t.Errorf("outcome peer %v host %q, want %v mx1.dst.test", o.Peer, o.Host, rx.Addr)
	}
	txs := rx.Txs()
	if len(txs) != 1 {
		t.Fatalf("receiver got %d transactions, want 1", len(txs))
	}
	if !txs[0].Pipelined {
		t.Error("MAIL, RCPT and DATA were not sent in one pipelined group (RFC 2920)")
	}
	if got := strings.Join(txs[0].Rcpts, ","); got != "a@dst.test,b@dst.test" {
		t.Errorf("accepted recipients %q", got)
	}
	if string(txs[0].Body) != testBody {
		t.Errorf("body %q, want %q", txs[0].Body, testBody)
	}
}

func TestDeliverWithoutPipelining(t *testing.T) {
	rx := newTestReceiver(t, "127.0.0.1")
	rx.Pipelining = false
	rx.OnRcpt = func(a string) string {
		if strings.HasPrefix(a, "unknown") {
			return "550 5.1.1 no such user"
		}
		return "250 2.1.5 ok"
	}
	rx.Start()
	m := newTestManager(t, rx.Addr.Port(), nil)
	o := m.Deliver(context.Background(), routeTo("dst.test", "127.0.0.1"), env(testBody, "a@dst.test", "unknown@dst.test"))
	wantStatuses(t, o, Delivered, Bounced)
	txs := rx.Txs()
	if len(txs) != 1 || txs[0].Pipelined {
		t.Fatalf("want one transaction, not pipelined; got %+v", txs)
	}
}

func TestDotStuffingOnTheWire(t *testing.T) {
	rx := newTestReceiver(t, "127.0.0.1").Start()
	m := newTestManager(t, rx.Addr.Port(), nil)
	cases := []struct{ body, wire, received string }{
		{
			body:     ".first\r\nmid\r\n.\r\n..two\r\nend\r\n",
			wire:     "..first\r\nmid\r\n..\r\n...two\r\nend\r\n.\r\n",
			received: ".first\r\nmid\r\n.\r\n..two\r\nend\r\n",
		},
		{ // bare LF and no final line end: normalised, still stuffed
			body:     "a\n.b\nc",
			wire:     "a\r\n..b\r\nc\r\n.\r\n",
			received: "a\r\n.b\r\nc\r\n",
		},
		{body: "", wire: ".\r\n", received: ""},
	}
	for _, c := range cases {
		o := m.Deliver(context.Background(), routeTo("dst.test", "127.0.0.1"), env(c.body, "a@dst.test"))
		wantStatuses(t, o, Delivered)
	}
	txs := rx.Txs()
	if len(txs) != len(cases) {
		t.Fatalf("got %d transactions, want %d", len(txs), len(cases))
	}
	for i, c := range cases {
		if string(txs[i].Raw) != c.wire {
			t.Errorf("body %q: on the wire %q, want %q", c.body, txs[i].Raw, c.wire)
		}
		if string(txs[i].Body) != c.received {
			t.Errorf("body %q: received %q, want %q", c.body, txs[i].Body, c.received)
		}
	}
}

func TestAllRecipientsRefusedNoBody(t *testing.T) {
	for _, pipelining := range []bool{true, false} {
		rx := newTestReceiver(t, "127.0.0.1")
		rx.Pipelining = pipelining
		rx.OnRcpt = func(string) string { return "550 5.1.1 no such user" }
		rx.Start()
		m := newTestManager(t, rx.Addr.Port(), nil)
		o := m.Deliver(context.Background(), routeTo("dst.test", "127.0.0.1"), env(testBody, "a@dst.test", "b@dst.test"))
		wantStatuses(t, o, Bounced, Bounced)
		// The connection stays usable: the next transaction on it starts
		// with RSET and succeeds.
		rx.OnRcpt = nil
		o = m.Deliver(context.Background(), routeTo("dst.test", "127.0.0.1"), env(testBody, "c@dst.test"))
		wantStatuses(t, o, Delivered)
		if s, _ := rx.stats(); s != 1 {
			t.Errorf("pipelining=%v: %d sessions, want 1 (reused)", pipelining, s)
		}
		cmds := strings.Join(rx.Commands(), "|")
		if !strings.Contains(cmds, "RSET|MAIL FROM:<sender@src.test>") {
			t.Errorf("pipelining=%v: no RSET before the second transaction: %s", pipelining, cmds)
		}
		if pipelining == false && strings.Count(cmds, "DATA") != 1 {
			t.Errorf("without pipelining DATA was sent with no accepted recipient: %s", cmds)
		}
		if len(rx.Txs()) != 1 {
			t.Errorf("pipelining=%v: %d messages received, want 1", pipelining, len(rx.Txs()))
		}
	}
}

// A server that answers DATA with 354 although every RCPT failed gets a lone
// "." (RFC 2920 §3.1), not the message.
func TestAllRecipientsRefusedButDATAAccepted(t *testing.T) {
	rx := newTestReceiver(t, "127.0.0.1")
	rx.OnRcpt = func(string) string { return "550 5.1.1 no such user" }
	rx.OnData = func() string { return "354 go ahead anyway" }
	rx.Start()
	m := newTestManager(t, rx.Addr.Port(), nil)
	o := m.Deliver(context.Background(), routeTo("dst.test", "127.0.0.1"), env(testBody, "a@dst.test"))
	wantStatuses(t, o, Bounced)
	rx.OnRcpt = nil
	o = m.Deliver(context.Background(), routeTo("dst.test", "127.0.0.1"), env(testBody, "c@dst.test"))
	wantStatuses(t, o, Delivered)
	if txs := rx.Txs(); len(txs) != 1 || txs[0].Rcpts[0] != "c@dst.test" {
		t.Fatalf("received %+v, want only the second message", txs)
	}
	if s, _ := rx.stats(); s != 1 {
		t.Errorf("%d sessions, want 1", s)
	}
}

func TestMailAndDataReplies(t *testing.T) {
	cases := []struct {
		name            string
		mail, data, dot string
		want            Status
		code            int
	}{
		{name: "MAIL 550", mail: "550 5.7.1 sender blocked", want: Bounced, code: 550},
		{name: "MAIL 451", mail: "451 4.7.1 greylisted", want: Transient, code: 451},
		{name: "DATA 554", data: "554 5.7.1 no", want: Bounced, code: 554},
		{name: "dot 452", dot: "452 4.3.1 disk full", want: Transient, code: 452},
		{name: "dot 554", dot: "554 5.7.1 spam", want: Bounced, code: 554},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rx := newTestReceiver(t, "127.0.0.1")
			if c.mail != "" {
				rx.OnMail = func(string) string { return c.mail }
			}
			if c.data != "" {
				rx.OnData = func() string { return c.data }
			}
			if c.dot != "" {
				rx.OnDot = func([]byte) string { return c.dot }
			}
			rx.Start()
			m := newTestManager(t, rx.Addr.Port(), nil)
			o := m.Deliver(context.Background(), routeTo("dst.test", "127.0.0.1"), env(testBody, "a@dst.test", "b@dst.test"))
			wantStatuses(t, o, c.want, c.want)
			for _, r := range o.Results {
				if r.Reply.Code != c.code {
					t.Errorf("%s: reply %s, want code %d", r.Rcpt, r.Reply, c.code)
				}
			}
		})
	}
}

// A 421 to a RCPT ends the session (RFC 5321 §3.8). Pipelined, the replies
// still outstanding count as that 421; without PIPELINING the recipients
// never sent get a local 451 4.4.2. Either way the 421 reaches
// OnErrorReply once and the connection is not reused.
func TestServerClosingMidTransaction(t *testing.T) {
	for _, pipelining := range []bool{true, false} {
		rx := newTestReceiver(t, "127.0.0.1")
		rx.Pipelining = pipelining
		rx.OnRcpt = func(a string) string {
			if strings.HasPrefix(a, "b@") {
				return "421 4.3.2 shutting down"
			}
			return "250 2.1.5 ok"
		}
		rx.Start()
		var errorReplies atomic.Int32
		m := newTestManager(t, rx.Addr.Port(), func(o *Options) {
			o.OnErrorReply = func(smtpwire.Reply) { errorReplies.Add(1) }
		})
		o := m.Deliver(context.Background(), routeTo("dst.test", "127.0.0.1"), env(testBody, "a@dst.test", "b@dst.test", "c@dst.test"))
		wantStatuses(t, o, Transient, Transient, Transient)
		want := []string{"421 4.3.2 shutting down", "421 4.3.2 shutting down", "421 4.3.2 shutting down"}
		if !pipelining {
			want[2] = "451 4.4.2 mx1.dst.test [" + rx.Addr.String() + "] closed the session"
		}
		for i, r := range o.Results {
			if r.Reply.String() != want[i] || r.Local != (want[i][:3] == "451") {
				t.Errorf("pipelining=%v: %s: %s (local %v), want %s", pipelining, r.Rcpt, r.Reply, r.Local, want[i])
			}
		}
		if n := errorReplies.Load(); n != 1 {
			t.Errorf("pipelining=%v: %d error replies reported, want 1 (the 421)", pipelining, n)
		}
		rx.OnRcpt = nil
		wantStatuses(t, m.Deliver(context.Background(), routeTo("dst.test", "127.0.0.1"), env(testBody, "d@dst.test")), Delivered)
		if s, _ := rx.stats(); s != 2 {
			t.Errorf("pipelining=%v: %d sessions, want 2 (no reuse after 421)", pipelining, s)
		}
	}
}

func TestConnectionLostMidTransaction(t *testing.T) {
	rx := newTestReceiver(t, "127.0.0.1")
	rx.DropAtDot = true
	rx.Start()
	m := newTestManager(t, rx.Addr.Port(), nil)
	o := m.Deliver(context.Background(), routeTo("dst.test", "127.0.0.1"), env(testBody, "a@dst.test", "b@dst.test"))
	wantStatuses(t, o, Transient, Transient)
	if r := o.Results[0].Reply; r.Code != 451 || r.Enhanced != "4.4.2" {
		t.Errorf("reply %s, want 451 4.4.2", r)
	}
	if s, _ := rx.stats(); s != 1 {
		t.Errorf("%d sessions: a transaction that reached the body must not be retried at once", s)
	}
}

func TestFailoverToSecondHost(t *testing.T) {
	rx := newTestReceiver(t, "127.0.0.3").Start()
	// Nothing listens on 127.0.0.2 at that port: connection refused.
	m := newTestManager(t, rx.Addr.Port(), func(o *Options) {
		o.HostBackoff = time.Minute
		// One transaction per connection, so that every delivery dials.
		o.Limits = func(Path) Limits { return Limits{Connections: 1, MaxDeliveriesPerConn: 1} }
	})
	route := routeTo("dst.test", "127.0.0.2", "127.0.0.3")
	for i := 0; i < 3; i++ {
		o := m.Deliver(context.Background(), route, env(testBody, "a@dst.test"))
		wantStatuses(t, o, Delivered)
		if o.Host != "mx2.dst.test" || o.Peer != rx.Addr {
			t.Fatalf("delivery %d went to %q %v, want mx2.dst.test %v", i, o.Host, o.Peer, rx.Addr)
		}
		// Deliveries 1 and 2 dial mx1 and fail; after two failures in a
		// row mx1 is skipped for HostBackoff.
		mentioned := strings.Contains(o.Note, "mx1.dst.test")
		if want := i < 2; mentioned != want {
			t.Errorf("delivery %d: note %q mentions mx1 = %v, want %v", i, o.Note, mentioned, want)
		}
	}
	if s, _ := rx.stats(); s != 3 {
		t.Errorf("%d sessions on mx2, want 3", s)
	}
}

func TestAllHostsDown(t *testing.T) {
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	port := netip.MustParseAddrPort(ln.Addr().String()).Port()
	ln.Close()
	m := newTestManager(t, port, nil)
	o := m.Deliver(context.Background(), routeTo("dst.test", "127.0.0.2", "127.0.0.3"), env(testBody, "a@dst.test"))
	wantStatuses(t, o, Transient)
	if r := o.Results[0].Reply; r.Code != 451 || r.Enhanced != "4.4.1" {
		t.Errorf("reply %s, want 451 4.4.1", r)
	}
	if m.OpenConnections() != 0 {
		t.Errorf("%d connections open", m.OpenConnections())
	}
}

func TestGreetingRefusedTriesNextHost(t *testing.T) {
	bad := newTestReceiver(t, "127.0.0.2")
	bad.Greeting = "554 5.7.1 go away"
	bad.Start()
	good := newTestReceiver(t, "127.0.0.3")
	// Same port on both addresses, as with smtp_port.
	good.ln.Close()
	ln, err := net.Listen("tcp", "127.0.0.3:"+itoa(int(bad.Addr.Port())))
	if err != nil {
		t.Skip("port taken on 127.0.0.3:", err)
	}
	good.ln = ln
	good.Start()
	m := newTestManager(t, bad.Addr.Port(), nil)
	o := m.Deliver(context.Background(), routeTo("dst.test", "127.0.0.2", "127.0.0.3"), env(testBody, "a@dst.test"))
	wantStatuses(t, o, Delivered)
	if o.Host != "mx2.dst.test" || !strings.Contains(o.Note, "554 5.7.1 go away") {
		t.Errorf("host %q note %q", o.Host, o.Note)
	}
}

func TestConnectionLimitAndReuse(t *testing.T) {
	rx := newTestReceiver(t, "127.0.0.1").Start()
	m := newTestManager(t, rx.Addr.Port(), func(o *Options) {
		o.Limits = func(Path) Limits { return Limits{Connections: 2, MaxDeliveriesPerConn: 3} }
	})
	route := routeTo("dst.test", "127.0.0.1")
	if n := deliverAtOnce(route, 24, m); n != 24 {
		t.Fatalf("%d of 24 delivered", n)
	}
	sessions, maxOpen := rx.stats()
	if maxOpen > 2 {
		t.Errorf("receiver saw %d connections at once, limit 2", maxOpen)
	}
	if sessions < 8 {
		t.Errorf("%d sessions for 24 transactions with 3 per connection: a connection was used more than 3 times", sessions)
	}

	// Sequential: exactly ceil(6/3) = 2 more sessions, each reused 3 times.
	m2 := newTestManager(t, rx.Addr.Port(), func(o *Options) {
		o.Limits = func(Path) Limits { return Limits{Connections: 2, MaxDeliveriesPerConn: 3} }
	})
	before, _ := rx.stats()
	for i := 0; i < 6; i++ {
		wantStatuses(t, m2.Deliver(context.Background(), route, env(testBody, "a@dst.test")), Delivered)
	}
	if after, _ := rx.stats(); after-before != 2 {
		t.Errorf("6 sequential transactions used %d sessions, want 2", after-before)
	}
}

func TestIdleConnectionsClosed(t *testing.T) {
	rx := newTestReceiver(t, "127.0.0.1").Start()
	m := newTestManager(t, rx.Addr.Port(), func(o *Options) { o.IdleTimeout = 100 * time.Millisecond })
	wantStatuses(t, m.Deliver(context.Background(), routeTo("dst.test", "127.0.0.1"), env(testBody, "a@dst.test")), Delivered)
	if m.OpenConnections() != 1 {
		t.Fatalf("%d open connections after a delivery, want 1 (pooled)", m.OpenConnections())
	}
	deadline := time.Now().Add(3 * time.Second)
	for m.OpenConnections() != 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if m.OpenConnections() != 0 {
		t.Fatal("idle connection not closed")
	}
	rx.mu.Lock()
	q := rx.quitCount
	rx.mu.Unlock()
	if q != 1 {
		t.Errorf("QUIT sent %d times, want 1", q)
	}
}

func TestStalePooledConnectionRetried(t *testing.T) {
	rx := newTestReceiver(t, "127.0.0.1")
	rx.CloseAfterTx = 1 // hangs up after each transaction, without warning
	rx.Start()
	m := newTestManager(t, rx.Addr.Port(), nil)
	route := routeTo("dst.test", "127.0.0.1")
	wantStatuses(t, m.Deliver(context.Background(), route, env(testBody, "a@dst.test")), Delivered)
	time.Sleep(50 * time.Millisecond)
	wantStatuses(t, m.Deliver(context.Background(), route, env(testBody, "b@dst.test")), Delivered)
	if s, _ := rx.stats(); s != 2 {
		t.Errorf("%d sessions, want 2", s)
	}
	if n := len(rx.Txs()); n != 2 {
		t.Errorf("%d messages received, want 2", n)
	}
}

func TestSTARTTLS(t *testing.T) {
	cert, pool, _, _ := testCert(t, "mx1.dst.test")
	rx := newTestReceiver(t, "127.0.0.1")
	rx.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	rx.Start()
	var tlsFailures atomic.Int32
	for _, mode := range []TLSMode{TLSOpportunistic, TLSRequired} {
		m := newTestManager(t, rx.Addr.Port(), func(o *Options) {
			o.TLS = TLSPolicy{Mode: mode, RootCAs: pool}
			o.OnTLSFailure = func(string, string, string, netip.AddrPort, error) { tlsFailures.Add(1) }
		})
		o := m.Deliver(context.Background(), routeTo("dst.test", "127.0.0.1"), env(testBody, "a@dst.test"))
		wantStatuses(t, o, Delivered)
		if o.TLSVersion != "TLSv1.3" || o.TLSCipher == "" {
			t.Errorf("%v: TLS %q %q, want TLSv1.3 and a cipher", mode, o.TLSVersion, o.TLSCipher)
		}
	}
	for _, tx := range rx.Txs() {
		if !tx.TLS {
			t.Error("a message was sent in the clear")
		}
	}
	if tlsFailures.Load() != 0 {
		t.Errorf("%d TLS failures reported", tlsFailures.Load())
	}
}

func TestSTARTTLSUntrustedCertificate(t *testing.T) {
	cert, _, _, _ := testCert(t, "mx1.dst.test")
	rx := newTestReceiver(t, "127.0.0.1")
	rx.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	rx.Start()
	cases := []struct {
		mode     TLSMode
		fallback bool // [tls] fallback_plaintext
		status   Status
		withTLS  bool
		note     string
	}{
		{TLSOpportunistic, true, Delivered, false, "delivering in the clear"},
		{TLSOpportunistic, false, Transient, false, "TLS handshake"},
		{TLSOpportunisticInsecure, true, Delivered, true, ""},
		{TLSRequired, true, Transient, false, "TLS handshake"},
		{TLSDisabled, false, Delivered, false, ""},
	}
	for _, c := range cases {
		before := len(rx.Txs())
		var failures atomic.Int32
		m := newTestManager(t, rx.Addr.Port(), func(o *Options) {
			// System roots: the test CA is unknown.
			o.TLS = TLSPolicy{Mode: c.mode, FallbackPlaintext: c.fallback}
			o.OnTLSFailure = func(string, string, string, netip.AddrPort, error) { failures.Add(1) }
		})
		o := m.Deliver(context.Background(), routeTo("dst.test", "127.0.0.1"), env(testBody, "a@dst.test"))
		wantStatuses(t, o, c.status)
		if !strings.Contains(o.Note, c.note) {
			t.Errorf("%v: note %q, want it to contain %q", c.mode, o.Note, c.note)
		}
		if (o.TLSVersion != "") != c.withTLS {
			t.Errorf("%v: TLS version %q", c.mode, o.TLSVersion)
		}
		if c.status == Delivered && rx.Txs()[before].TLS != c.withTLS {
			t.Errorf("%v: received with TLS = %v", c.mode, rx.Txs()[before].TLS)
		}
		if c.status == Transient && o.Results[0].Reply.Enhanced != "4.7.10" {
			t.Errorf("%v: reply %s, want 4.7.10", c.mode, o.Results[0].Reply)
		}
		if wantFail := c.mode != TLSOpportunisticInsecure && c.mode != TLSDisabled; (failures.Load() > 0) != wantFail {
			t.Errorf("%v: %d TLS failures reported", c.mode, failures.Load())
		}
	}
}

func TestTLSRequiredNotOffered(t *testing.T) {
	rx := newTestReceiver(t, "127.0.0.1").Start()
	m := newTestManager(t, rx.Addr.Port(), func(o *Options) { o.TLS = TLSPolicy{Mode: TLSRequired} })
	o := m.Deliver(context.Background(), routeTo("dst.test", "127.0.0.1"), env(testBody, "a@dst.test"))
	wantStatuses(t, o, Transient)
	if r := o.Results[0].Reply; r.Code != 451 || r.Enhanced != "4.7.10" {
		t.Errorf("reply %s, want 451 4.7.10", r)
	}
	if len(rx.Txs()) != 0 {
		t.Error("message sent in the clear under TLS required")
	}
}

func TestHELOFallback(t *testing.T) {
	rx := newTestReceiver(t, "127.0.0.1")
	rx.EHLOReply = "502 5.5.1 EHLO not implemented"
	rx.Start()
	m := newTestManager(t, rx.Addr.Port(), nil)
	o := m.Deliver(context.Background(), routeTo("dst.test", "127.0.0.1"), env(testBody, "a@dst.test"))
	wantStatuses(t, o, Delivered)
	txs := rx.Txs()
	if !rx.heloUsed || len(txs) != 1 || txs[0].Pipelined {
		t.Fatalf("HELO used %v, transactions %+v", rx.heloUsed, txs)
	}
	if txs[0].MailLine != "MAIL FROM:<sender@src.test>" {
		t.Errorf("MAIL line %q has ESMTP parameters after HELO", txs[0].MailLine)
	}
}

func TestSMTPUTF8And8BITMIME(t *testing.T) {
	utf8Body := "Subject: caf\u00e9\r\n\r\nna\u00efve\r\n"
	for _, offered := range []bool{true, false} {
		rx := newTestReceiver(t, "127.0.0.1")
		rx.UTF8 = offered
		rx.EightBit = offered
		rx.Start()
		m := newTestManager(t, rx.Addr.Port(), nil)
		route := routeTo("dst.test", "127.0.0.1")
		o := m.Deliver(context.Background(), route, env(utf8Body, "\u7528\u6237@dst.test"))
		if offered {
			wantStatuses(t, o, Delivered)
			ml := rx.Txs()[0].MailLine
			if !strings.Contains(ml, "SMTPUTF8") || !strings.Contains(ml, "BODY=8BITMIME") {
				t.Errorf("MAIL line %q lacks SMTPUTF8 or BODY=8BITMIME", ml)
			}
		} else {
			wantStatuses(t, o, Bounced)
			if r := o.Results[0].Reply; r.Enhanced != "5.6.7" {
				t.Errorf("reply %s, want 5.6.7 (RFC 6531)", r)
			}
			// An ASCII envelope with an 8-bit body still goes, without parameters.
			o = m.Deliver(context.Background(), route, env(utf8Body, "a@dst.test"))
			wantStatuses(t, o, Delivered)
			if ml := rx.Txs()[0].MailLine; ml != "MAIL FROM:<sender@src.test>" {
				t.Errorf("MAIL line %q to a server without 8BITMIME/SMTPUTF8", ml)
			}
		}
	}
}

func TestSizeLimit(t *testing.T) {
	rx := newTestReceiver(t, "127.0.0.1")
	rx.Size = 20
	rx.Start()
	m := newTestManager(t, rx.Addr.Port(), nil)
	o := m.Deliver(context.Background(), routeTo("dst.test", "127.0.0.1"), env(testBody, "a@dst.test"))
	wantStatuses(t, o, Bounced)
	if r := o.Results[0].Reply; r.Code != 552 || r.Enhanced != "5.3.4" {
		t.Errorf("reply %s, want 552 5.3.4", r)
	}
	o = m.Deliver(context.Background(), routeTo("dst.test", "127.0.0.1"), env("x\r\n", "a@dst.test"))
	wantStatuses(t, o, Delivered)
	if ml := rx.Txs()[0].MailLine; !strings.Contains(ml, "SIZE=3") {
		t.Errorf("MAIL line %q lacks SIZE=3", ml)
	}
}

func TestMessageRate(t *testing.T) {
	rx := newTestReceiver(t, "127.0.0.1").Start()
	m := newTestManager(t, rx.Addr.Port(), func(o *Options) {
		o.Limits = func(Path) Limits { return Limits{Connections: 3, MessageRate: 20} }
	})
	start := time.Now()
	var wg sync.WaitGroup
	for i := 0; i < 6; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			m.Deliver(context.Background(), routeTo("dst.test", "127.0.0.1"), env(testBody, "a@dst.test"))
		}()
	}
	wg.Wait()
	if el := time.Since(start); el < 250*time.Millisecond {
		t.Errorf("6 transactions at 20/s took %v, want >= 250ms", el)
	}
	if len(rx.Txs()) != 6 {
		t.Errorf("%d delivered", len(rx.Txs()))
	}
}

func TestRelayTo(t *testing.T) {
	rx := newTestReceiver(t, "127.0.0.1").Start()
	m := newTestManager(t, 1, func(o *Options) { o.RelayTo = rx.Addr.String() })
	o := m.Deliver(context.Background(), nil, env(testBody, "a@anywhere.test"))
	wantStatuses(t, o, Delivered)
	// A route is ignored too: everything goes to the smarthost.
	o = m.Deliver(context.Background(), routeTo("other.test", "127.0.0.9"), env(testBody, "b@other.test"))
	wantStatuses(t, o, Delivered)
	if o.Peer != rx.Addr {
		t.Errorf("peer %v, want the smarthost %v", o.Peer, rx.Addr)
	}
}

func TestDeliverCancelled(t *testing.T) {
	rx := newTestReceiver(t, "127.0.0.1")
	rx.OnDot = func([]byte) string { time.Sleep(time.Second); return "250 ok" }
	rx.Start()
	m := newTestManager(t, rx.Addr.Port(), nil)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	o := m.Deliver(ctx, routeTo("dst.test", "127.0.0.1"), env(testBody, "a@dst.test"))
	wantStatuses(t, o, Transient)
	if el := time.Since(start); el > time.Second {
		t.Errorf("cancelled delivery took %v", el)
	}
}

func TestCloseWaitsAndRefuses(t *testing.T) {
	rx := newTestReceiver(t, "127.0.0.1").Start()
	m := newTestManager(t, rx.Addr.Port(), nil)
	wantStatuses(t, m.Deliver(context.Background(), routeTo("dst.test", "127.0.0.1"), env(testBody, "a@dst.test")), Delivered)
	m.Close()
	if n := m.OpenConnections(); n != 0 {
		t.Errorf("%d connections open after Close", n)
	}
	o := m.Deliver(context.Background(), routeTo("dst.test", "127.0.0.1"), env(testBody, "a@dst.test"))
	wantStatuses(t, o, Transient)
}

func TestWriteBodyMatchesAppendDotStuffed(t *testing.T) {
	bodies := []string{"", "a\r\n", ".\r\n", "..\r\n.a\r\n", "x\r\n.\r\n.\r\n", "a\nb\r\n", "no end", "\r\n.\r\n"}
	for _, b := range bodies {
		var buf bytes.Buffer
		w := newBufWriter(&buf)
		var scratch []byte
		if err := writeBody(w, []byte(b), cleanCRLF([]byte(b)), &scratch); err != nil {
			t.Fatal(err)
		}
		w.Flush()
		want := appendDotStuffedRef([]byte(b))
		if buf.String() != string(want) {
			t.Errorf("body %q: wrote %q, smtpwire gives %q", b, buf.String(), want)
		}
	}
}

// A single-MX destination whose host was down long enough to be backed off
// takes mail at the next attempt once it is back: back-off never leaves a
// route without an address to try.
func TestSingleMXBackAfterOutage(t *testing.T) {
	rx := newTestReceiver(t, "127.0.0.2")
	rx.ln.Close() // down: connection refused
	m := newTestManager(t, rx.Addr.Port(), func(o *Options) {
		o.HostBackoff = time.Hour
		o.HostBackoffMax = time.Hour
		o.Limits = func(Path) Limits { return Limits{Connections: 1, MaxDeliveriesPerConn: 1} }
	})
	route := routeTo("dst.test", "127.0.0.2")
	for range 4 {
		o := m.Deliver(context.Background(), route, env(testBody, "a@dst.test"))
		wantStatuses(t, o, Transient)
	}
	if !m.health.skip(rx.Addr.String()) {
		t.Fatal("the host is not in back-off after four failures")
	}
	ln, err := net.Listen("tcp", rx.Addr.String())
	if err != nil {
		t.Skip("port taken again:", err)
	}
	rx.ln = ln
	rx.Start()
	o := m.Deliver(context.Background(), route, env(testBody, "a@dst.test"))
	wantStatuses(t, o, Delivered)
	if m.health.skip(rx.Addr.String()) {
		t.Error("a successful session did not clear the back-off")
	}
}

// deliverAtOnce runs n deliveries of one message to route at once on each
// Manager and returns how many were delivered.
func deliverAtOnce(route *resolver.Route, n int, managers ...*Manager) int {
	var wg sync.WaitGroup
	var delivered atomic.Int32
	for _, m := range managers {
		for range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				o := m.Deliver(context.Background(), route, env(testBody, "a@dst.test"))
				if o.Results[0].Status == Delivered {
					delivered.Add(1)
				}
			}()
		}
	}
	wg.Wait()
	return int(delivered.Load())
}
