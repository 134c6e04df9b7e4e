package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// TestE2EPipelinedDelivery: with one connection to the MX host
// (max_connections_per_domain = 1) and mail waiting, Gannet pipelines each
// message's envelope behind the body before it (RFC 2920 §3.1), while
// bench/smtpsink refuses chosen messages at ".", at MAIL and at RCPT. Each
// other message arrives exactly once and unchanged, and every recipient
// gets one record: a Delivery after one attempt, or a Bounce with the
// sink's code.
func TestE2EPipelinedDelivery(t *testing.T) {
	w := newRelayWorld(t)
	rcv := startGoSink(t, hostPort(mxIP1, w.port), "dot~spam:554:1:5.7.1 spam", "mail~badsender:550:1:5.7.1 no", "rcpt~nobody:550:1:5.1.1 no such user")
	g := w.gannet(t, gannetConfig{DeliveryExtra: "max_connections_per_domain = 1"})

	const n = 40
	msgs := map[string][]byte{}
	refused := map[string]int{} // recipient → the code that refuses it
	c := dialSMTP(t, "", g.SMTPAddr)
	for i := range n {
		from, rcpt := fmt.Sprintf("app%02d@src.test", i), fmt.Sprintf("user%02d@%s", i, domain1)
		switch i % 10 {
		case 3:
			from = fmt.Sprintf("spam%02d@src.test", i)
			refused[rcpt] = 554
		case 6:
			from = fmt.Sprintf("badsender%02d@src.test", i)
			refused[rcpt] = 550
		case 8:
			rcpt = fmt.Sprintf("nobody%02d@%s", i, domain1)
			refused[rcpt] = 550
		}
		msgs[rcpt] = simpleMessage(from, rcpt, fmt.Sprintf("pipelined %d", i), "One of many.\n")
		acceptedID(t, c.Send(from, []string{rcpt}, msgs[rcpt]))
	}
	c.Quit()
	g.WaitRecords(recordFilter{Type: "Bounce"}, len(refused), deliveryMax)
	waitArrivals(t, rcv, n-len(refused), deliveryMax)
	time.Sleep(settleTime)

	count := map[string]int{}
	for _, a := range rcv.arrivals(t) {
		for _, r := range a.Rcpts {
			count[r]++
			assertRelayedExactly(t, r, a.Data, msgs[r])
		}
	}
	recs := g.Records()
	for rcpt := range msgs {
		var got []string
		for _, r := range recs {
			if r.HasRecipient(rcpt) && r.Type != "Reception" {
				got = append(got, fmt.Sprintf("%s %d %d", r.Type, r.Response.Code, r.NumAttempts))
			}
		}
		want, arrivals := "Delivery 250 1", 1
		if code, ok := refused[rcpt]; ok {
			want, arrivals = fmt.Sprintf("Bounce %d 1", code), 0
		}
		if strings.Join(got, ", ") != want {
			t.Errorf("%s: records %v, want %s", rcpt, got, want)
		}
		if count[rcpt] != arrivals {
			t.Errorf("%s arrived %d times, want %d", rcpt, count[rcpt], arrivals)
		}
	}
}

// TestE2EPipelinedToPostfix: a private Postfix is the MX host. Offering
// PIPELINING and not CHUNKING, it gets DATA, each next envelope pipelined
// behind a body; offering CHUNKING too, it gets each message as BDAT LAST,
// the next one (RSET first) written while the last awaits its replies. Over
// Gannet's one connection Postfix's smtpd takes every message (its checks
// of command order are the real ones), logs no improper pipelining, and
// relays each once to the smtp-sink behind it.
func TestE2EPipelinedToPostfix(t *testing.T) {
	t.Run("DATA", func(t *testing.T) { testPipelinedToPostfix(t, "smtpd_discard_ehlo_keywords = chunking\n") })
	t.Run("BDAT", func(t *testing.T) { testPipelinedToPostfix(t, "") })
}

func testPipelinedToPostfix(t *testing.T, more string) {
	w := newRelayWorld(t)
	const sinkIP = "127.0.0.5" // not in the test zone: only Postfix uses it
	sink := startSmtpSink(t, hostPort(sinkIP, w.port))
	p := newPrivatePostfix(t)
	main := p.mainCF("pf.pipe.test", "pipe.test", "all", fmt.Sprintf(`mynetworks = 127.0.0.0/8
smtpd_relay_restrictions = permit_mynetworks, reject
relayhost = [%s]:%d
smtp_tls_security_level = none
`, sinkIP, w.port)+more)
	listen := hostPort(mxIP1, w.port)
	p.start(t, main, masterCF(listen+" inet n - n - - smtpd"), nil, listen)
	g := w.gannet(t, gannetConfig{DeliveryExtra: "max_connections_per_domain = 1", TLSMode: "disabled"})

	const n = 30
	c := dialSMTP(t, "", g.SMTPAddr)
	for i := range n {
		rcpt := fmt.Sprintf("user%02d@%s", i, domain1)
		acceptedID(t, c.Send(senderAddr, []string{rcpt}, simpleMessage(senderAddr, rcpt, fmt.Sprintf("to postfix %d", i), "Pipelined.\n")))
	}
	c.Quit()
	g.WaitRecords(recordFilter{Type: "Delivery"}, n, deliveryMax)
	waitArrivals(t, sink, n, 30*time.Second)
	time.Sleep(settleTime)
	count := map[string]int{}
	for _, a := range sink.arrivals(t) {
		for _, r := range a.Rcpts {
			count[r]++
		}
	}
	for i := range n {
		if rcpt := fmt.Sprintf("user%02d@%s", i, domain1); count[rcpt] != 1 {
			t.Errorf("%s reached the sink %d times, want 1", rcpt, count[rcpt])
		}
	}
	if logs := p.logs(); strings.Contains(logs, "improper command pipelining") {
		t.Errorf("Postfix saw improper pipelining:\n%s", tail(logs, 4000))
	}
	if d := selectRecords(g.Records(), recordFilter{Type: "Delivery"}); len(d) != n {
		t.Errorf("%d Delivery records, want %d", len(d), n)
	}
}
