package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// TestE2ERetryAfter4xx: the receiver answers 451 at RCPT the first time;
// gannet logs a TransientFailure, retries after retry_interval ("1s") and
// delivers the message once.
func TestE2ERetryAfter4xx(t *testing.T) {
	w := newRelayWorld(t)
	rcv := startAiosmtpd(t, hostPort(mxIP1, w.port), aioOptions{TempfailFirst: "451 4.3.0 try again later"})
	g := w.gannet(t, gannetConfig{RetryInterval: "1s", MaxRetryInterval: "2s"})

	rcpt := "retry@" + domain1
	msg := simpleMessage(senderAddr, rcpt, "retry me", "Second time lucky.\n")
	id := swaksRelay(t, g.SMTPAddr, senderAddr, []string{rcpt}, msg)

	start := time.Now()
	g.WaitRecords(recordFilter{Type: "Delivery", ID: id}, 1, deliveryMax)
	t.Logf("delivered %v after the 250 (retry_interval 1s)", time.Since(start).Round(100*time.Millisecond))
	time.Sleep(settleTime)
	tf := selectRecords(g.Records(), recordFilter{Type: "TransientFailure", ID: id})
	if len(tf) == 0 {
		t.Fatalf("no TransientFailure record for %s:\n%s", id, summarize(g.Records()))
	}
	if tf[0].Response.Code != 451 || tf[0].Response.EnhancedCode() != "4.3.0" {
		t.Errorf("TransientFailure response = %d %s %q, want the receiver's 451 4.3.0", tf[0].Response.Code,
			tf[0].Response.EnhancedCode(), tf[0].Response.Content)
	}
	got := rcv.arrivals(t)
	if len(got) != 1 {
		t.Fatalf("receiver got %d transactions, want 1", len(got))
	}
	assertRelayedExactly(t, "retried message", got[0].Data, msg)
	if b := selectRecords(g.Records(), recordFilter{Type: "Bounce", ID: id}); len(b) != 0 {
		t.Errorf("Bounce record for a message that was delivered: %s", summarize(b))
	}
}

// TestE2EBounce5xx: the receiver refuses the recipient with 550 5.1.1; gannet
// bounces with the receiver's code and delivers nothing.
func TestE2EBounce5xx(t *testing.T) {
	w := newRelayWorld(t)
	rcv := startSmtpSink(t, hostPort(mxIP1, w.port), "-f", "RCPT", "-B", "550 5.1.1 no such user here")
	g := w.gannet(t, gannetConfig{})

	rcpt := "nobody@" + domain1
	id := swaksRelay(t, g.SMTPAddr, senderAddr, []string{rcpt}, simpleMessage(senderAddr, rcpt, "bounce me", "Nobody home.\n"))

	b := g.WaitRecords(recordFilter{Type: "Bounce", ID: id}, 1, deliveryMax)
	if b[0].Response.Code != 550 || b[0].Response.EnhancedCode() != "5.1.1" || !b[0].HasRecipient(rcpt) {
		t.Errorf("Bounce record: %s, want recipient %s and the receiver's 550 5.1.1", b[0].Raw, rcpt)
	}
	time.Sleep(1500 * time.Millisecond) // longer than retry_interval: a wrong retry would show
	recs := g.Records()
	for _, typ := range []string{"Delivery", "TransientFailure"} {
		if r := selectRecords(recs, recordFilter{Type: typ, ID: id}); len(r) != 0 {
			t.Errorf("%s record for a refused recipient: %s", typ, summarize(r))
		}
	}
	if n := len(rcv.arrivals(t)); n != 0 {
		t.Errorf("receiver got %d messages, want none", n)
	}
}

// TestE2EUndeliverableDomains: a null MX domain (RFC 7505) bounces with
// 5.1.10, a domain that does not exist bounces too; neither is retried.
func TestE2EUndeliverableDomains(t *testing.T) {
	w := newRelayWorld(t)
	g := w.gannet(t, gannetConfig{})

	null, nx := "u@"+domainNull, "u@"+domainNX
	res := smtplibSend(t, g.SMTPAddr, []pyMessage{
		{From: senderAddr, To: []string{null}, Data: simpleMessage(senderAddr, null, "null mx", "No mail here.\n")},
		{From: senderAddr, To: []string{nx}, Data: simpleMessage(senderAddr, nx, "nxdomain", "No such domain.\n")},
	})
	nullID, nxID := acceptedID(t, res[0].Data), acceptedID(t, res[1].Data)

	b := g.WaitRecords(recordFilter{Type: "Bounce", ID: nullID}, 1, deliveryMax)
	if b[0].Response.EnhancedCode() != "5.1.10" || b[0].Response.Code/100 != 5 {
		t.Errorf("null MX bounce: %d %s %q, want 5xx 5.1.10 (RFC 7505 §4.2: 556 5.1.10)",
			b[0].Response.Code, b[0].Response.EnhancedCode(), b[0].Response.Content)
	}
	b = g.WaitRecords(recordFilter{Type: "Bounce", ID: nxID}, 1, deliveryMax)
	if b[0].Response.Code/100 != 5 || !strings.HasPrefix(b[0].Response.EnhancedCode(), "5.") {
		t.Errorf("NXDOMAIN bounce: %d %s %q, want a 5xx with a 5.x.x code",
			b[0].Response.Code, b[0].Response.EnhancedCode(), b[0].Response.Content)
	}
	for _, id := range []string{nullID, nxID} {
		if r := selectRecords(g.Records(), recordFilter{Type: "Delivery", ID: id}); len(r) != 0 {
			t.Errorf("Delivery record for an undeliverable domain: %s", summarize(r))
		}
	}
}

// TestE2ECrashRecovery: messages accepted ("250") while the receiver is down
// survive `kill -9`; after a restart on the same data dir each is delivered
// exactly once.
func TestE2ECrashRecovery(t *testing.T) {
	w := newRelayWorld(t)
	// No receiver yet: delivery attempts get "connection refused".
	g := w.gannet(t, gannetConfig{RetryInterval: "1s", MaxRetryInterval: "2s"})

	const n = 5
	var ids, rcpts []string
	msgs := map[string][]byte{}
	c := dialSMTP(t, "", g.SMTPAddr)
	for i := range n {
		rcpt := fmt.Sprintf("crash%d@%s", i, domain1)
		msg := simpleMessage(senderAddr, rcpt, fmt.Sprintf("crash %d", i), "Survive kill -9.\n")
		ids = append(ids, acceptedID(t, c.Send(senderAddr, []string{rcpt}, msg)))
		rcpts = append(rcpts, rcpt)
		msgs[rcpt] = msg
		if i == n-3 {
			// Let gannet try (and fail) the first messages before the crash;
			// the last two are killed right after their 250.
			time.Sleep(1500 * time.Millisecond)
		}
	}
	g.Kill9()

	rcv := startAiosmtpd(t, hostPort(mxIP1, w.port), aioOptions{})
	g.Restart()
	got := waitArrivals(t, rcv, n, deliveryMax)
	// Wait past a retry interval and more: a duplicate would show up.
	time.Sleep(3 * time.Second)
	got = rcv.arrivals(t)
	count := map[string]int{}
	for _, a := range got {
		for _, r := range a.Rcpts {
			count[r]++
		}
		if len(a.Rcpts) == 1 {
			if want, ok := msgs[a.Rcpts[0]]; ok {
				assertRelayedExactly(t, a.Rcpts[0], a.Data, want)
			}
		}
	}
	for _, r := range rcpts {
		if count[r] != 1 {
			t.Errorf("%s delivered %d times, want exactly once", r, count[r])
		}
	}
	if len(count) != n {
		t.Errorf("receiver saw recipients %v, want only %v", count, rcpts)
	}
	for _, id := range ids {
		g.WaitRecords(recordFilter{Type: "Delivery", ID: id}, 1, 10*time.Second)
	}
	recs := g.Records()
	for _, id := range ids {
		if r := selectRecords(recs, recordFilter{Type: "Delivery", ID: id}); len(r) != 1 {
			t.Errorf("message %s: %d Delivery records, want 1", id, len(r))
		}
	}
}

// TestE2ERandomFaults: bin/smtpsink refuses 30% of recipients with 451; every
// message is still delivered exactly once, after TransientFailure records.
func TestE2ERandomFaults(t *testing.T) {
	w := newRelayWorld(t)
	rcv := startGoSink(t, hostPort(mxIP1, w.port), "rcpt:451:0.3")
	g := w.gannet(t, gannetConfig{RetryInterval: "1s", MaxRetryInterval: "2s"})

	const n = 20
	msgs := map[string][]byte{}
	c := dialSMTP(t, "", g.SMTPAddr)
	for i := range n {
		rcpt := fmt.Sprintf("flaky%02d@%s", i, domain1)
		msgs[rcpt] = simpleMessage(senderAddr, rcpt, fmt.Sprintf("flaky %d", i), "Keep trying.\n")
		acceptedID(t, c.Send(senderAddr, []string{rcpt}, msgs[rcpt]))
	}
	c.Quit()
	waitArrivals(t, rcv, n, 45*time.Second)
	time.Sleep(settleTime)
	count := map[string]int{}
	for _, a := range rcv.arrivals(t) {
		for _, r := range a.Rcpts {
			count[r]++
			assertRelayedExactly(t, r, a.Data, msgs[r])
		}
	}
	for r := range msgs {
		if count[r] != 1 {
			t.Errorf("%s delivered %d times, want exactly once", r, count[r])
		}
	}
	// P(no 451 among 20 draws at 0.3) < 0.1%.
	tf := selectRecords(g.Records(), recordFilter{Type: "TransientFailure"})
	if len(tf) == 0 {
		t.Errorf("no TransientFailure records although smtpsink refused about 30%% of recipients")
	}
	for _, r := range tf {
		if r.Response.Code != 451 {
			t.Errorf("TransientFailure with code %d, want 451: %s", r.Response.Code, r.Raw)
		}
	}
}
