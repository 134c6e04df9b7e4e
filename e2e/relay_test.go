package e2e

import (
	"errors"
	"fmt"
	"net"
	"net/smtp"
	"net/textproto"
	"slices"
	"strings"
	"testing"
	"time"
)

// deliveryMax bounds how long a message may take from "250" to its receiver
// when nothing fails on the way.
const deliveryMax = 30 * time.Second

// settleTime is waited after a delivery before counting copies: longer than
// the tests' retry_interval ("1s"), so a wrong second delivery would show.
const settleTime = 1500 * time.Millisecond

// relayWorld is DNS, the receivers' port and a relay, ready for a test.
type relayWorld struct {
	dns  *testDNS
	port int // [delivery] smtp_port; receivers listen on 127.0.0.x:port
}

// newRelayWorld skips the test when the relay cannot run yet, then starts the
// DNS server and picks the receivers' port. Receivers and gannet are started
// by the test.
func newRelayWorld(t *testing.T) *relayWorld {
	t.Helper()
	gannetBinary(t) // skip early, before any peer starts
	return &relayWorld{dns: startDNS(t), port: receiverPort(t)}
}

// gannet starts a relay delivering through this world.
func (w *relayWorld) gannet(t *testing.T, cfg gannetConfig) *gannet {
	t.Helper()
	cfg.DNS, cfg.DeliveryPort = w.dns.Addr, w.port
	return startGannet(t, cfg)
}

// waitArrivals waits until r has seen n recipients in all and returns its
// transactions.
func waitArrivals(t *testing.T, r receiver, n int, timeout time.Duration) []arrival {
	t.Helper()
	var got []arrival
	waitFor(t, timeout, fmt.Sprintf("%d recipient(s) at %s", n, r.addr()), func() (bool, string) {
		got = r.arrivals(t)
		have := 0
		for _, a := range got {
			have += len(a.Rcpts)
		}
		return have >= n, fmt.Sprintf("have %d", have)
	})
	return got
}

// TestE2EPlainRelay: a message sent with swaks arrives at the MX host of its
// domain once, unchanged but for one Received header, and the log tells its
// story under the id the SMTP reply gave.
func TestE2EPlainRelay(t *testing.T) {
	w := newRelayWorld(t)
	rcv := startAiosmtpd(t, hostPort(mxIP1, w.port), aioOptions{})
	g := w.gannet(t, gannetConfig{})

	rcpt := "user@" + domain1
	msg := simpleMessage(senderAddr, rcpt, "plain relay", "Hello from the e2e test.\nSecond line.\n")
	id := swaksRelay(t, g.SMTPAddr, senderAddr, []string{rcpt}, msg)

	del := g.WaitRecords(recordFilter{Type: "Delivery", ID: id}, 1, deliveryMax)
	time.Sleep(settleTime)
	got := rcv.arrivals(t)
	if len(got) != 1 {
		t.Fatalf("receiver got %d transactions, want 1", len(got))
	}
	a := got[0]
	if a.MailFrom != senderAddr || !slices.Equal(a.Rcpts, []string{rcpt}) {
		t.Errorf("envelope at receiver: from %q to %q, want %q to [%q]", a.MailFrom, a.Rcpts, senderAddr, rcpt)
	}
	assertRelayedExactly(t, "plain message", a.Data, msg)

	recs := g.Records()
	rec := selectRecords(recs, recordFilter{Type: "Reception", ID: id})
	if len(rec) != 1 {
		t.Fatalf("%d Reception records for id %s, want 1:\n%s", len(rec), id, summarize(recs))
	}
	if !sameAddr(rec[0].Sender, senderAddr) || !rec[0].HasRecipient(rcpt) {
		t.Errorf("Reception record: sender %q recipients %v", rec[0].Sender, rec[0].Recipients())
	}
	if len(del) != 1 || !del[0].HasRecipient(rcpt) || del[0].Response.Code != 250 {
		t.Errorf("Delivery records for %s: %v", id, summarize(del))
	}
	if !strings.Contains(string(del[0].PeerAddress), mxIP1) {
		t.Errorf("Delivery peer_address = %s, want the MX host %s", del[0].PeerAddress, mxIP1)
	}
	if n := len(selectRecords(recs, recordFilter{Type: "Bounce"})); n != 0 {
		t.Errorf("%d Bounce records for a message that was delivered", n)
	}
}

// TestE2EEdgeCases: dot-stuffing edges, 8-bit and SMTPUTF8 messages sent
// with Python's smtplib arrive byte for byte. The messages lack Date and
// Message-ID on purpose, so the relay is told not to add them
// ([meta] add_missing_headers = false); TestE2EDKIM checks the additions.
func TestE2EEdgeCases(t *testing.T) {
	w := newRelayWorld(t)
	rcv := startAiosmtpd(t, hostPort(mxIP1, w.port), aioOptions{})
	g := w.gannet(t, gannetConfig{Extra: "[meta]\nadd_missing_headers = false\n"})

	cases := edgeCases()
	var msgs []pyMessage
	for _, c := range cases {
		msgs = append(msgs, pyMessage{From: c.sender(), To: []string{c.rcpt}, MailOptions: c.mailOptions, Data: c.data})
	}
	res := smtplibSend(t, g.SMTPAddr, msgs)
	for i, r := range res {
		if !acceptedRE.MatchString(r.Data) {
			t.Errorf("%s: replies MAIL %q RCPT %q DATA %q, want \"250 2.0.0 OK id=…\"", cases[i].name, r.Mail, r.Rcpt, r.Data)
		}
	}
	if t.Failed() {
		t.FailNow()
	}
	got := waitArrivals(t, rcv, len(cases), deliveryMax)
	for _, c := range cases {
		a := findArrival(got, c.rcpt)
		if a == nil {
			t.Errorf("%s: did not arrive", c.name)
			continue
		}
		if a.MailFrom != c.sender() {
			t.Errorf("%s: MAIL FROM %q at receiver, want %q", c.name, a.MailFrom, c.sender())
		}
		assertRelayedExactly(t, c.name, a.Data, c.want())
		for _, opt := range c.mailOptions {
			// RFC 6152 §3 and RFC 6531 §3.4: a relay passes BODY=8BITMIME and
			// SMTPUTF8 on to a server that offers them (aiosmtpd does).
			if !slices.Contains(a.MailOptions, opt) {
				t.Errorf("%s: MAIL FROM at receiver had options %q, want %s", c.name, a.MailOptions, opt)
			}
		}
	}
}

// TestE2ELargeMessage: a 10 MB message arrives intact.
func TestE2ELargeMessage(t *testing.T) {
	w := newRelayWorld(t)
	rcv := startAiosmtpd(t, hostPort(mxIP1, w.port), aioOptions{})
	g := w.gannet(t, gannetConfig{})

	rcpt := "big@" + domain1
	msg := bigMessage(senderAddr, rcpt, 10<<20)
	c := dialSMTP(t, "", g.SMTPAddr)
	id := acceptedID(t, c.Send(senderAddr, []string{rcpt}, msg))
	c.Quit()

	got := waitArrivals(t, rcv, 1, 60*time.Second)
	if len(got) != 1 {
		t.Fatalf("receiver got %d transactions, want 1", len(got))
	}
	rest, err := stripFirstReceived(got[0].Data)
	if err != nil {
		t.Fatal(err)
	}
	if sha256hex(rest) != sha256hex(msg) {
		t.Errorf("10 MB message altered: %s", firstDifference(rest, msg))
	}
	g.WaitRecords(recordFilter{Type: "Delivery", ID: id}, 1, 10*time.Second)
}

// TestE2EManyRecipients: one message to 100 recipients in three domains goes
// out as one transaction per domain, and reaches every recipient once.
func TestE2EManyRecipients(t *testing.T) {
	w := newRelayWorld(t)
	rcvs := make([]*aioSink, len(zoneMX))
	for i, z := range zoneMX {
		rcvs[i] = startAiosmtpd(t, hostPort(z.ip, w.port), aioOptions{})
	}
	g := w.gannet(t, gannetConfig{})

	var all []string
	perDomain := make([][]string, len(zoneMX))
	for i := range 100 {
		d := i % len(zoneMX)
		r := fmt.Sprintf("r%03d@%s", i, zoneMX[d].domain)
		all = append(all, r)
		perDomain[d] = append(perDomain[d], r)
	}
	msg := simpleMessage(senderAddr, "undisclosed-recipients:;", "hundred recipients", "To many.\n")
	res := smtplibSend(t, g.SMTPAddr, []pyMessage{{From: senderAddr, To: all, Data: msg}})
	id := acceptedID(t, res[0].Data)

	for d, rcv := range rcvs {
		waitArrivals(t, rcv, len(perDomain[d]), deliveryMax)
	}
	time.Sleep(settleTime)
	for d, rcv := range rcvs {
		got := rcv.arrivals(t)
		if len(got) != 1 {
			t.Errorf("%s: %d transactions, want 1", zoneMX[d].domain, len(got))
		}
		var rcpts []string
		for _, a := range got {
			rcpts = append(rcpts, a.Rcpts...)
			assertRelayedExactly(t, zoneMX[d].domain, a.Data, msg)
		}
		slices.Sort(rcpts)
		if !slices.Equal(rcpts, perDomain[d]) {
			t.Errorf("%s: recipients at receiver %v, want %v", zoneMX[d].domain, rcpts, perDomain[d])
		}
	}
	// Every recipient has a Delivery record (one per recipient, or batched).
	waitFor(t, 10*time.Second, "Delivery records for all 100 recipients", func() (bool, string) {
		seen := map[string]bool{}
		for _, r := range selectRecords(g.Records(), recordFilter{Type: "Delivery", ID: id}) {
			for _, a := range r.Recipients() {
				seen[strings.ToLower(a)] = true
			}
		}
		return len(seen) == 100, fmt.Sprintf("%d recipients logged", len(seen))
	})
}

// TestE2ESmtpSource: 200 messages from Postfix's smtp-source over 5
// connections all reach smtp-sink.
func TestE2ESmtpSource(t *testing.T) {
	w := newRelayWorld(t)
	rcv := startSmtpSink(t, hostPort(mxIP1, w.port))
	g := w.gannet(t, gannetConfig{})

	const n = 200
	rcpt := "bulk@" + domain1
	smtpSource(t, g.SMTPAddr, 5, n, senderAddr, rcpt)
	got := waitArrivals(t, rcv, n, 90*time.Second)
	if len(got) != n {
		t.Errorf("smtp-sink got %d transactions, want %d", len(got), n)
	}
	for _, a := range got {
		if !slices.Equal(a.Rcpts, []string{rcpt}) || a.MailFrom != senderAddr {
			t.Fatalf("envelope at receiver: %q → %q", a.MailFrom, a.Rcpts)
		}
	}
	g.WaitRecords(recordFilter{Type: "Reception"}, n, 10*time.Second)
	time.Sleep(settleTime)
	if got := rcv.arrivals(t); len(got) != n {
		t.Errorf("smtp-sink got %d transactions after settling, want %d", len(got), n)
	}
	if r := selectRecords(g.Records(), recordFilter{Type: "Reception"}); len(r) != n {
		t.Errorf("%d Reception records, want %d", len(r), n)
	}
}

// TestE2ERelayDenied: a client outside relay_hosts (connecting from
// 127.0.0.9) may not relay: 554 5.7.1 at RCPT; one inside may.
func TestE2ERelayDenied(t *testing.T) {
	w := newRelayWorld(t)
	startSmtpSink(t, hostPort(mxIP1, w.port))
	g := w.gannet(t, gannetConfig{RelayHosts: []string{"127.0.0.1/32"}})

	dialFrom := func(ip string) *smtp.Client {
		d := net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
		conn, err := d.Dial("tcp", g.SMTPAddr)
		if err != nil {
			t.Fatalf("dial from %s: %v", ip, err)
		}
		conn.SetDeadline(time.Now().Add(30 * time.Second))
		c, err := smtp.NewClient(conn, "relay.e2e.test")
		if err != nil {
			t.Fatalf("greeting for %s: %v", ip, err)
		}
		t.Cleanup(func() { c.Close() })
		if err := c.Hello("client.e2e.test"); err != nil {
			t.Fatalf("EHLO from %s: %v", ip, err)
		}
		return c
	}

	c := dialFrom(foreignIP)
	if err := c.Mail(senderAddr); err != nil {
		t.Fatalf("MAIL from %s: %v", foreignIP, err)
	}
	err := c.Rcpt("user@" + domain1)
	var te *textproto.Error
	if !errors.As(err, &te) || te.Code != 554 || !strings.HasPrefix(te.Msg, "5.7.1") {
		t.Errorf("RCPT from %s: %v, want 554 5.7.1", foreignIP, err)
	}
	c.Quit()

	c = dialFrom("127.0.0.1")
	if err := c.Mail(senderAddr); err != nil {
		t.Fatalf("MAIL from 127.0.0.1: %v", err)
	}
	if err := c.Rcpt("user@" + domain1); err != nil {
		t.Errorf("RCPT from 127.0.0.1 (in relay_hosts): %v, want 250", err)
	}
	c.Quit()
	if r := selectRecords(g.Records(), recordFilter{Type: "Reception"}); len(r) != 0 {
		t.Errorf("Reception records although no message was sent: %s", summarize(r))
	}
}

// TestE2EOutboundSTARTTLS: gannet upgrades to TLS when the MX offers STARTTLS
// (opportunistic-insecure: the receiver's certificate is self-signed).
func TestE2EOutboundSTARTTLS(t *testing.T) {
	w := newRelayWorld(t)
	cert, key := selfSignedCert(t, "mx.d1.test")
	rcv := startAiosmtpd(t, hostPort(mxIP1, w.port), aioOptions{TLSCert: cert, TLSKey: key})
	g := w.gannet(t, gannetConfig{TLSMode: "opportunistic-insecure"})

	rcpt := "tls@" + domain1
	msg := simpleMessage(senderAddr, rcpt, "outbound tls", "Encrypted on the way out.\n")
	id := swaksRelay(t, g.SMTPAddr, senderAddr, []string{rcpt}, msg)
	got := waitArrivals(t, rcv, 1, deliveryMax)
	if !got[0].TLS {
		t.Errorf("message arrived without TLS although the receiver offered STARTTLS")
	}
	assertRelayedExactly(t, "TLS message", got[0].Data, msg)
	del := g.WaitRecords(recordFilter{Type: "Delivery", ID: id}, 1, 10*time.Second)
	if del[0].TLSProtocolVersion == "" {
		t.Errorf("Delivery record has no tls_protocol_version: %s", del[0].Raw)
	}
}
