package e2e

import (
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"
)

// The operator's state that outlives a restart, and "retry now", end to
// end.

// TestE2EAdminSuspendSurvivesRestart: a suspension made over the API is
// still listed after gannet restarts (origin "api", its expiry), the mail
// it held stays held, and once it expires the mail arrives.
func TestE2EAdminSuspendSurvivesRestart(t *testing.T) {
	w := newRelayWorld(t)
	rcv := startAiosmtpd(t, hostPort(mxIP1, w.port), aioOptions{})
	g := w.gannet(t, gannetConfig{Extra: adminExtra})

	const hold = 20 * time.Second
	r := adminCurl(t, g, "POST", "/api/admin/suspend/v1",
		fmt.Sprintf(`{"domain":%q,"reason":"receiver maintenance","duration":"%s"}`, domain1, hold)).want(t, "suspend", 200)
	var sus struct{ ID string }
	r.decode(t, &sus)
	until := time.Now().Add(hold)
	id := injectSimple(t, g, "held@"+domain1, "acme", "", "held across a restart")
	waitFor(t, deliveryMax, "the message held", func() (bool, string) {
		s := summaryOf(t, g)
		return s.Totals.Held == 1, fmt.Sprintf("%+v", s.Totals)
	})

	g.Stop()
	g.Restart()

	out, errOut, code := runGannetCLI(t, g, "suspend", "-list")
	line := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(sus.ID) + `\s+api\s+` + regexp.QuoteMeta(domain1) +
		`\s+-\s+-\s+-\s+(\S+)\s+\S+\s+\d+\s+receiver maintenance$`)
	m := line.FindStringSubmatch(out)
	if code != 0 || m == nil {
		t.Fatalf("suspend -list after the restart (%d):\n%s%s", code, out, errOut)
	}
	exp, err := time.Parse(time.RFC3339, m[1])
	if err != nil || exp.Sub(until).Abs() > 3*time.Second {
		t.Errorf("listed expiry %s, want about %s", m[1], until.UTC().Format(time.RFC3339))
	}
	var list []struct {
		ID, Origin string
		Expires    *time.Time
	}
	adminCurl(t, g, "GET", "/api/admin/suspend/v1", "").want(t, "list", 200).decode(t, &list)
	if len(list) != 1 || list[0].ID != sus.ID || list[0].Origin != "api" || list[0].Expires == nil {
		t.Errorf("suspensions over the API after the restart: %+v", list)
	}
	waitFor(t, deliveryMax, "the message held after the restart", func() (bool, string) {
		s := summaryOf(t, g)
		return s.Totals.Held == 1 && s.Totals.Suspensions == 1, fmt.Sprintf("%+v", s.Totals)
	})
	if time.Until(until) > 2*time.Second {
		time.Sleep(2 * time.Second) // retry_interval is 1s: an attempt would show
		if got := rcv.arrivals(t); len(got) != 0 {
			t.Fatalf("%d message(s) reached the receiver of a suspended domain", len(got))
		}
	}

	// It expires; the mail goes.
	waitArrivals(t, rcv, 1, time.Until(until)+deliveryMax)
	if d := time.Until(until); d > time.Second {
		t.Errorf("the mail arrived %v before the suspension's end", d)
	}
	g.WaitRecords(recordFilter{Type: "Delivery", ID: id}, 1, deliveryMax)
	out, _, _ = runGannetCLI(t, g, "suspend", "-list")
	if !strings.Contains(out, "No suspensions in force.") {
		t.Errorf("suspend -list after the expiry:\n%s", out)
	}

	// And it stays gone after another restart.
	g.Stop()
	g.Restart()
	if out, _, _ = runGannetCLI(t, g, "suspend", "-list"); !strings.Contains(out, "No suspensions in force.") {
		t.Errorf("suspend -list after a second restart:\n%s", out)
	}
}

// TestE2EQueueRetryNow: with its receiver down a message is deferred for
// retry_interval (5 minutes); once the receiver is back, "gannet queue
// retry -domain" makes it arrive within seconds, with its attempt count
// kept, and the relay's log says who asked. Mail to another domain keeps
// its retry time.
func TestE2EQueueRetryNow(t *testing.T) {
	w := newRelayWorld(t)
	g := w.gannet(t, gannetConfig{Extra: adminExtra, RetryInterval: "5m", MaxRetryInterval: "1h"})
	id := injectSimple(t, g, "back@"+domain1, "acme", "news", "retried now")
	other := injectSimple(t, g, "still@"+domain2, "acme", "news", "waits")
	g.WaitRecords(recordFilter{Type: "TransientFailure", ID: id}, 1, deliveryMax)
	g.WaitRecords(recordFilter{Type: "TransientFailure", ID: other}, 1, deliveryMax)

	rcv := startAiosmtpd(t, hostPort(mxIP1, w.port), aioOptions{})
	rcv2 := startAiosmtpd(t, hostPort(mxIP2, w.port), aioOptions{})
	time.Sleep(2 * time.Second)
	if got := rcv.arrivals(t); len(got) != 0 {
		t.Fatalf("the message arrived before the retry: %d", len(got))
	}

	// Bad input first: a clear refusal, nothing retried.
	if _, errOut, code := runGannetCLI(t, g, "queue", "retry", "no-such-id"); code != 1 || !strings.Contains(errOut, "404") {
		t.Errorf("retry of an unknown id (%d): %s", code, errOut)
	}
	adminCurl(t, g, "POST", "/api/admin/retry/v1", `{}`).want(t, "retry without a selector", 422)
	adminCurl(t, g, "POST", "/api/admin/retry/v1", `{"domain":"`+domain1+`"}`, "-H", "Authorization: Bearer wrong").want(t, "retry with a wrong key", 401)

	start := time.Now()
	out, errOut, code := runGannetCLI(t, g, "queue", "retry", "-domain", domain1)
	if code != 0 || out != "1 message(s), 1 recipient(s) due now\n" {
		t.Fatalf("gannet queue retry (%d): %q %s", code, out, errOut)
	}
	waitArrivals(t, rcv, 1, 15*time.Second)
	rec := g.WaitRecords(recordFilter{Type: "Delivery", ID: id}, 1, deliveryMax)[0]
	if took := time.Since(start); took > 15*time.Second {
		t.Errorf("the retried message took %v", took)
	}
	if rec.NumAttempts != 2 {
		t.Errorf("Delivery record after the retry: num_attempts %d, want 2 (the counter kept)", rec.NumAttempts)
	}
	if !strings.Contains(g.p.out.String(), `admin retry`) || !strings.Contains(g.p.out.String(), "trusted host 127.0.0.1") {
		t.Errorf("no admin log line naming the trusted host that asked:\n%s", tail(g.p.out.String(), 2000))
	}

	// The other domain still waits for its retry time; a retry by id (a
	// tenant's key, over the API) sends it too.
	time.Sleep(2 * time.Second)
	if got := rcv2.arrivals(t); len(got) != 0 {
		t.Fatalf("mail to %s left before its retry time", domain2)
	}
	var res struct{ Retried, Recipients int }
	adminCurl(t, g, "POST", "/api/admin/retry/v1", `{"ids":["`+other+`"]}`, "-H", "Authorization: Bearer "+acmeKey).
		want(t, "retry by id with the tenant's key", 200).decode(t, &res)
	if res.Retried != 1 || res.Recipients != 1 {
		t.Errorf("retry by id: %+v", res)
	}
	waitArrivals(t, rcv2, 1, 15*time.Second)
	time.Sleep(settleTime)
	if n := countRcpts(t, rcv); n != 1 {
		t.Errorf("the retried message arrived %d times", n)
	}
}

// TestE2EQueueHoldRelease: "gannet queue hold" by id and by domain keeps
// mail from a receiver that is up, across a restart; "queue hold -list"
// shows both; "queue release" by message id and by the selector sends the
// mail at once.
func TestE2EQueueHoldRelease(t *testing.T) {
	w := newRelayWorld(t)
	g := w.gannet(t, gannetConfig{Extra: adminExtra})
	byID := injectSimple(t, g, "one@"+domain1, "acme", "", "held by id")
	g.WaitRecords(recordFilter{Type: "TransientFailure", ID: byID}, 1, deliveryMax) // no receiver yet
	out, errOut, code := runGannetCLI(t, g, "queue", "hold", byID, "-reason", "check it first")
	if code != 0 || !strings.HasPrefix(out, "hold ") {
		t.Fatalf("queue hold ID (%d): %s%s", code, out, errOut)
	}
	out, errOut, code = runGannetCLI(t, g, "queue", "hold", "-domain", domain2)
	if code != 0 || !strings.HasPrefix(out, "hold ") {
		t.Fatalf("queue hold -domain (%d): %s%s", code, out, errOut)
	}
	byDomain := injectSimple(t, g, "two@"+domain2, "", "", "held by domain")
	if _, errOut, code := runGannetCLI(t, g, "queue", "hold", "no-such-id"); code != 1 || !strings.Contains(errOut, "404") {
		t.Errorf("hold of an unknown id (%d): %s", code, errOut)
	}
	rcv1 := startAiosmtpd(t, hostPort(mxIP1, w.port), aioOptions{})
	rcv2 := startAiosmtpd(t, hostPort(mxIP2, w.port), aioOptions{})
	waitFor(t, deliveryMax, "both messages held", func() (bool, string) {
		s := summaryOf(t, g)
		return s.Totals.Held == 2, fmt.Sprintf("%+v", s.Totals)
	})

	g.Stop()
	g.Restart()
	out, _, _ = runGannetCLI(t, g, "queue", "hold", "-list")
	if !regexp.MustCompile(`(?m)^\S+\s+api\s+-\s+-\s+-\s+- ids: `+byID+`\s+-\s+until released\s+\d+\s+check it first$`).MatchString(out) ||
		!regexp.MustCompile(`(?m)^\S+\s+api\s+`+regexp.QuoteMeta(domain2)+`\s+-\s+-\s+-\s+-\s+until released\s+\d+\s+-$`).MatchString(out) {
		t.Errorf("queue hold -list after the restart:\n%s", out)
	}
	time.Sleep(3 * time.Second) // retry_interval is 1s: attempts would have come
	if n := len(rcv1.arrivals(t)) + len(rcv2.arrivals(t)); n != 0 {
		t.Fatalf("%d held message(s) delivered", n)
	}

	out, errOut, code = runGannetCLI(t, g, "queue", "release", byID)
	if code != 0 || out != "released "+byID+"\n" {
		t.Fatalf("queue release ID (%d): %q %s", code, out, errOut)
	}
	waitArrivals(t, rcv1, 1, 15*time.Second)
	if n := len(rcv2.arrivals(t)); n != 0 {
		t.Errorf("releasing one message sent the other")
	}
	out, errOut, code = runGannetCLI(t, g, "queue", "release", "-domain", domain2)
	if code != 0 || !strings.HasPrefix(out, "released ") {
		t.Fatalf("queue release -domain (%d): %q %s", code, out, errOut)
	}
	waitArrivals(t, rcv2, 1, 15*time.Second)
	g.WaitRecords(recordFilter{Type: "Delivery", ID: byDomain}, 1, deliveryMax)
	if out, _, _ = runGannetCLI(t, g, "queue", "hold", "-list"); !strings.Contains(out, "No holds in force.") {
		t.Errorf("holds left:\n%s", out)
	}
}

// TestE2EBounceOfSuspendedMail: mail held by a suspension and then bounced
// by the operator is no longer shown as held — by the queue summary and by
// "suspend -list" — while the suspension is still in force.
func TestE2EBounceOfSuspendedMail(t *testing.T) {
	w := newRelayWorld(t)
	g := w.gannet(t, gannetConfig{Extra: adminExtra})
	if _, errOut, code := runGannetCLI(t, g, "suspend", "-domain", domain1, "-duration", "10m"); code != 0 {
		t.Fatalf("suspend: %s", errOut)
	}
	kept := injectSimple(t, g, "kept@"+domain1, "acme", "keep", "kept")
	for i := range 3 {
		injectSimple(t, g, fmt.Sprintf("gone%d@%s", i, domain1), "acme", "junk", "bounced")
	}
	waitFor(t, deliveryMax, "four messages held", func() (bool, string) {
		s := summaryOf(t, g)
		return s.Totals.Held == 4, fmt.Sprintf("%+v", s.Totals)
	})
	out, errOut, code := runGannetCLI(t, g, "bounce", "-campaign", "junk", "-duration", "0")
	if code != 0 || !strings.Contains(out, "3 recipient(s) bounced") {
		t.Fatalf("bounce (%d): %s%s", code, out, errOut)
	}
	s := summaryOf(t, g)
	if s.Totals.Held != 1 || s.Totals.Messages != 1 || s.Totals.Suspensions != 1 {
		t.Errorf("summary after bouncing held mail: %+v, want 1 message held", s.Totals)
	}
	for _, q := range s.Queues {
		if q.Held > 0 && !strings.HasPrefix(q.Name, "keep:") {
			t.Errorf("queue %s still shows %d held", q.Name, q.Held)
		}
	}
	out, _, _ = runGannetCLI(t, g, "suspend", "-list")
	if !regexp.MustCompile(`(?m)\s+until resumed\s+1\s+-$|\s+\d+m\d+s\s+1\s+-$`).MatchString(out) {
		t.Errorf("suspend -list after bouncing held mail (want 1 held):\n%s", out)
	}
	adminCurl(t, g, "GET", "/api/admin/inspect-message/v1?id="+kept, "").want(t, "inspect the kept message", 200)
}
