package e2e

import (
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"
)

// Dead letters and the queryable queue, end to end.

// TestE2EDeadLettersRequeue: with the receiver down, messages expire
// (max_retry_age 4s) into dead letters instead of being deleted; gannet
// dead list shows them, gannet_queue_depth{queue="dead"} counts them, and
// once the receiver is back, gannet dead requeue -domain sends them on:
// they arrive.
func TestE2EDeadLettersRequeue(t *testing.T) {
	w := newRelayWorld(t)
	g := w.gannet(t, gannetConfig{Extra: "dead_letter_after = \"1h\"\n" + adminExtra,
		RetryInterval: "1s", MaxRetryInterval: "1s", MaxRetryAge: "4s"})
	var ids []string
	for i := range 3 {
		ids = append(ids, injectSimple(t, g, fmt.Sprintf("dead%d@%s", i, domain1), "acme", "news", "expires"))
	}
	for _, id := range ids {
		g.WaitRecords(recordFilter{Type: "Expiration", ID: id}, 1, deliveryMax+10*time.Second)
		g.WaitRecords(recordFilter{Type: "DeadLetter", ID: id}, 1, deliveryMax)
	}
	out, errOut, code := runGannetCLI(t, g, "dead", "list", "-domain", domain1)
	if code != 0 || !strings.Contains(out, "3 message(s) shown of 3 matching") {
		t.Fatalf("gannet dead list (%d):\n%s%s", code, out, errOut)
	}
	for _, id := range ids {
		if !regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(id) + `\s+dead\s`).MatchString(out) {
			t.Errorf("dead list does not show %s:\n%s", id, out)
		}
	}
	if v := scrapeMetrics(t, g.HTTPAddr).values[`gannet_queue_depth{queue="dead"}`]; v != 3 {
		t.Errorf(`gannet_queue_depth{queue="dead"} = %v, want 3`, v)
	}
	out, _, code = runGannetCLI(t, g, "dead", "show", ids[0], "-body")
	if code != 0 || !strings.Contains(out, "expired") || !strings.Contains(out, "Subject: expires") {
		t.Errorf("gannet dead show -body (%d):\n%s", code, out)
	}
	if s := summaryOf(t, g); s.Totals.Messages != 0 {
		t.Errorf("dead letters counted in the queue: %+v", s.Totals)
	}

	rcv := startAiosmtpd(t, hostPort(mxIP1, w.port), aioOptions{})
	out, errOut, code = runGannetCLI(t, g, "dead", "requeue", "-domain", domain1)
	if code != 0 || !strings.HasPrefix(out, "requeued 3 dead letter(s)") {
		t.Fatalf("gannet dead requeue (%d): %s%s", code, out, errOut)
	}
	waitArrivals(t, rcv, 3, deliveryMax)
	for _, id := range ids {
		g.WaitRecords(recordFilter{Type: "Delivery", ID: id}, 1, deliveryMax)
	}
	out, _, _ = runGannetCLI(t, g, "dead", "list")
	if !strings.Contains(out, "0 message(s) shown of 0 matching") {
		t.Errorf("dead list after the requeue:\n%s", out)
	}
	if !strings.Contains(g.p.out.String(), "admin dead-letter requeue") || !strings.Contains(g.p.out.String(), "trusted host 127.0.0.1") {
		t.Errorf("no admin log line naming who requeued:\n%s", tail(g.p.out.String(), 2000))
	}
}

// TestE2EQueueListGroupDelete: with the receivers down (retries 5 minutes
// away), gannet queue list -group-by domain counts what was sent, and
// gannet queue delete -yes -domain removes exactly the matching messages
// (AdminDelete records, no bounce), leaving the rest queued.
func TestE2EQueueListGroupDelete(t *testing.T) {
	w := newRelayWorld(t)
	g := w.gannet(t, gannetConfig{Extra: adminExtra, RetryInterval: "5m", MaxRetryInterval: "1h"})
	sent := map[string][]string{}
	for i, d := range []string{domain1, domain1, domain1, domain2, domain2, domain3} {
		id := injectSimple(t, g, fmt.Sprintf("u%d@%s", i, d), "acme", "news", "listed")
		sent[d] = append(sent[d], id)
	}
	for _, ids := range sent {
		for _, id := range ids {
			g.WaitRecords(recordFilter{Type: "TransientFailure", ID: id}, 1, deliveryMax)
		}
	}
	out, errOut, code := runGannetCLI(t, g, "queue", "list", "-group-by", "domain")
	if code != 0 {
		t.Fatalf("queue list -group-by domain (%d): %s%s", code, out, errOut)
	}
	for d, ids := range sent {
		re := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(d) + `\s+` + fmt.Sprint(len(ids)) + `\s+` + fmt.Sprint(len(ids)) + `$`)
		if !re.MatchString(out) {
			t.Errorf("group-by domain: no row %s %d:\n%s", d, len(ids), out)
		}
	}
	if !strings.Contains(out, "6 message(s)") {
		t.Errorf("group-by total:\n%s", out)
	}
	// A bad filter: 422 JSON, and exit 1 from the CLI.
	adminCurl(t, g, "GET", "/api/admin/queue/v1?state=lost", "").want(t, "bad state", 422)
	if _, errOut, code := runGannetCLI(t, g, "queue", "list", "-group-by", "color"); code != 1 || !strings.Contains(errOut, "422") {
		t.Errorf("bad group-by (%d): %s", code, errOut)
	}

	out, errOut, code = runGannetCLI(t, g, "queue", "delete", "-yes", "-domain", domain2)
	if code != 0 || out != "deleted 2 message(s), 2 recipient(s)\n" {
		t.Fatalf("queue delete -yes -domain (%d): %q %s", code, out, errOut)
	}
	for _, id := range sent[domain2] {
		g.WaitRecords(recordFilter{Type: "AdminDelete", ID: id}, 1, deliveryMax)
	}
	out, _, _ = runGannetCLI(t, g, "queue", "list")
	if !strings.Contains(out, "4 message(s) shown of 4 matching") {
		t.Errorf("queue list after the delete:\n%s", out)
	}
	for _, id := range append(sent[domain1], sent[domain3]...) {
		if !strings.Contains(out, id) {
			t.Errorf("message %s gone after deleting %s's mail:\n%s", id, domain2, out)
		}
	}
	for _, id := range sent[domain2] {
		if strings.Contains(out, id) {
			t.Errorf("deleted message %s still listed", id)
		}
	}
	if recs := selectRecords(g.Records(), recordFilter{Type: "Bounce"}); len(recs) != 0 {
		t.Errorf("a delete bounced: %v", recs)
	}
	if !strings.Contains(g.p.out.String(), "admin queue delete") {
		t.Errorf("no admin log line for the delete:\n%s", tail(g.p.out.String(), 2000))
	}
}

// TestE2EKeepBounced: with [queue] keep_bounced = true, a recipient refused
// with 550 makes its message a dead letter (Bounce, then DeadLetter), which
// gannet dead purge -yes removes for good.
func TestE2EKeepBounced(t *testing.T) {
	w := newRelayWorld(t)
	startGoSink(t, hostPort(mxIP1, w.port), "rcpt:550:1")
	g := w.gannet(t, gannetConfig{Extra: "keep_bounced = true\n" + adminExtra})
	id := injectSimple(t, g, "gone@"+domain1, "acme", "", "refused")
	g.WaitRecords(recordFilter{Type: "Bounce", ID: id}, 1, deliveryMax)
	rec := g.WaitRecords(recordFilter{Type: "DeadLetter", ID: id}, 1, deliveryMax)[0]
	if rec.Response.Code != 550 {
		t.Errorf("DeadLetter record response %+v, want the 550", rec.Response)
	}
	out, _, code := runGannetCLI(t, g, "dead", "show", id)
	if code != 0 || !regexp.MustCompile(`gone@`+regexp.QuoteMeta(domain1)+`\s+bounced\s+1\s+550`).MatchString(out) {
		t.Fatalf("dead show (%d):\n%s", code, out)
	}
	out, errOut, code := runGannetCLI(t, g, "dead", "purge", "-yes", id)
	if code != 0 || !strings.HasPrefix(out, "purged 1 dead letter(s) "+id) {
		t.Fatalf("dead purge (%d): %s%s", code, out, errOut)
	}
	if _, errOut, code := runGannetCLI(t, g, "dead", "show", id); code != 1 || !strings.Contains(errOut, "404") {
		t.Errorf("dead show after the purge (%d): %s", code, errOut)
	}
}
