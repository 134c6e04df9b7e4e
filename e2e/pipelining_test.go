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
