package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"testing"
)

// TestE2EXferToAnotherNode: two gannet nodes in a cluster on a real
// redis-server. Node-a's mail for gone.example and stay.example is refused
// for now (their smarthost answers 451), so it stays queued there. `gannet
// xfer -to node-b -domain gone.example` on node-a (node-b found by its id in
// the cluster's registry, at the SMTP address it registered) hands the mail
// of gone.example to node-b, which delivers it to its own receiver once,
// the body and node-a's header lines intact; node-a logs an XferOut record
// naming node-b's SMTP address, counts it as transferred and not as
// delivered (gannet_messages_xferred_total), and has nothing queued
// for gone.example, while the mail of stay.example stays on node-a. New
// mail for gone.example goes to node-b too while the rule is in force. The
// rule is listed (with its target), is still in force after node-a
// restarts, and is cancelled.
func TestE2EXferToAnotherNode(t *testing.T) {
	srv := startRedis(t)
	refusing := startGoSink(t, hostPort("127.0.0.1", freePort(t, false, "127.0.0.1")), "rcpt:451:1:4.3.0 not now")
	sink := startGoSink(t, hostPort("127.0.0.1", freePort(t, false, "127.0.0.1")))
	a := startGannet(t, gannetConfig{DNS: "127.0.0.1:1", DeliveryPort: 1, RetryInterval: "1h", MaxRetryInterval: "1h", MaxRetryAge: "24h",
		Extra: clusterTOML(srv, "node-a") + fmt.Sprintf(`
[relay."gone.example"]
relay_to = %q

[relay."stay.example"]
relay_to = %q
`, refusing.addr(), refusing.addr())})
	b := startGannet(t, gannetConfig{DNS: "127.0.0.1:1", DeliveryPort: 1,
		DeliveryExtra: fmt.Sprintf("relay_to = %q\n", sink.addr()), Extra: clusterTOML(srv, "node-b")})

	const gone, stay = "user@gone.example", "user@stay.example"
	id := injectSimple(t, a, gone, "", "", "handed over")
	injectSimple(t, a, stay, "", "", "stays here")
	a.WaitRecords(recordFilter{Type: "TransientFailure", Recipient: gone}, 1, deliveryMax)
	a.WaitRecords(recordFilter{Type: "TransientFailure", Recipient: stay}, 1, deliveryMax)

	// The message as node-a spooled it, to compare with what arrives.
	out, errOut, code := runGannetCLI(t, a, "queue", "inspect", id, "-body", "-json")
	var in struct {
		Message struct {
			Data string `json:"data"`
		} `json:"message"`
	}
	if code != 0 || json.Unmarshal([]byte(out), &in) != nil || in.Message.Data == "" {
		t.Fatalf("queue inspect %s -body -json (%d): %s%s", id, code, out, errOut)
	}
	spooled := []byte(in.Message.Data)

	waitFor(t, deliveryMax, "node-b's SMTP address in node-a's `cluster status -json`", func() (bool, string) {
		out, errOut, code := runGannetCLI(t, a, "cluster", "status", "-json")
		return code == 0 && strings.Contains(out, fmt.Sprintf(`"smtp":%q`, b.SMTPAddr)), out + errOut
	})
	out, errOut, code = runGannetCLI(t, a, "xfer", "-to", "node-b", "-domain", "gone.example", "-reason", "retiring node-a")
	m := regexp.MustCompile(`^xfer (\S+) in force: matching mail goes to ` + regexp.QuoteMeta(b.SMTPAddr) + ` \(1 deferred message\(s\), 1 recipient\(s\) due now\)`).FindStringSubmatch(out)
	if code != 0 || m == nil {
		t.Fatalf("gannet xfer -to node-b (%d): %s%s", code, out, errOut)
	}
	ruleID := m[1]

	xfer := a.WaitRecords(recordFilter{Type: "XferOut", Recipient: gone}, 1, deliveryMax)[0]
	if xfer.ID != id || xfer.Site != b.SMTPAddr || xfer.Response.Code != 250 {
		t.Errorf("node-a's XferOut record: %s; want id %s, site %s, a 250", xfer, id, b.SMTPAddr)
	}
	waitFor(t, deliveryMax, "the handed-over message at node-b's receiver", func() (bool, string) {
		return findArrival(sink.arrivals(t), gone) != nil, ""
	})

	// New mail for gone.example goes to node-b while the rule is in force.
	id2 := injectSimple(t, a, gone, "", "", "sent after the xfer")
	a.WaitRecords(recordFilter{Type: "XferOut", ID: id2}, 1, deliveryMax)

	// Node-a keeps nothing for gone.example, and stay.example's mail.
	out, errOut, code = runGannetCLI(t, a, "queue", "list", "-domain", "gone.example")
	if code != 0 || strings.Contains(out, id) || strings.Contains(out, id2) {
		t.Errorf("node-a's queue for gone.example after the xfer (%d): %s%s", code, out, errOut)
	}
	out, errOut, code = runGannetCLI(t, a, "queue", "list", "-domain", "stay.example")
	if code != 0 || !strings.Contains(out, "stay.example") {
		t.Errorf("node-a's queue for stay.example (%d): %s%s", code, out, errOut)
	}
	if recs := selectRecords(a.Records(), recordFilter{Recipient: stay}); len(selectRecords(recs, recordFilter{Type: "XferOut"})) > 0 {
		t.Errorf("mail of stay.example handed over: %s", summarize(recs))
	}
	metrics := scrapeMetrics(t, a.HTTPAddr)
	if got := metrics.get(t, "gannet_messages_delivered_total"); got != 0 {
		t.Errorf("node-a's gannet_messages_delivered_total = %v, want 0: a transfer is not a delivery", got)
	}
	if got := metrics.get(t, "gannet_messages_xferred_total"); got != 2 {
		t.Errorf("node-a's gannet_messages_xferred_total = %v, want 2", got)
	}

	// The rule is listed, survives node-a's restart, and is cancelled.
	listed := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(ruleID) + `\s+` + regexp.QuoteMeta(b.SMTPAddr) + `\s+gone\.example\s+-\s+-\s+-\s+\S+\s+retiring node-a$`)
	out, errOut, code = runGannetCLI(t, a, "xfer", "-list")
	if code != 0 || !listed.MatchString(out) {
		t.Errorf("xfer -list (%d): %s%s", code, out, errOut)
	}
	a.Stop()
	a.Restart()
	out, errOut, code = runGannetCLI(t, a, "xfer", "-list")
	if code != 0 || !listed.MatchString(out) {
		t.Errorf("xfer -list after node-a restarted (%d): %s%s", code, out, errOut)
	}
	out, errOut, code = runGannetCLI(t, a, "xfer", "-cancel", ruleID)
	if code != 0 || !strings.Contains(out, "xfer "+ruleID+" to "+b.SMTPAddr+" cancelled") {
		t.Errorf("xfer -cancel (%d): %s%s", code, out, errOut)
	}
	out, errOut, code = runGannetCLI(t, a, "xfer", "-list")
	if code != 0 || !strings.Contains(out, "No xfer rules in force.") {
		t.Errorf("xfer -list after the cancel (%d): %s%s", code, out, errOut)
	}

	// Node-b delivered each message once; the first with node-a's header
	// lines and body intact.
	waitFor(t, deliveryMax, "both messages at node-b's receiver", func() (bool, string) {
		return countRcpts(t, sink) >= 2, fmt.Sprint(countRcpts(t, sink))
	})
	var got []arrival
	for _, ar := range sink.arrivals(t) {
		if findArrival([]arrival{ar}, gone) != nil && bytes.Contains(ar.Data, []byte("Subject: handed over")) {
			got = append(got, ar)
		}
	}
	if len(got) != 1 || countRcpts(t, sink) != 2 {
		t.Fatalf("node-b's receiver got the handed-over message %d times (%d recipients in all), want once", len(got), countRcpts(t, sink))
	}
	head, body, _ := bytes.Cut(spooled, []byte("\r\n\r\n"))
	gotHead, gotBody, _ := bytes.Cut(got[0].Data, []byte("\r\n\r\n"))
	if !bytes.Equal(gotBody, body) {
		t.Errorf("body at the receiver:\n%q\nwant, as node-a spooled it:\n%q", gotBody, body)
	}
	if !bytes.Contains(gotHead, head) {
		t.Errorf("header at the receiver:\n%s\nlacks node-a's header section:\n%s", gotHead, head)
	}
	if got[0].MailFrom != "app@src.test" {
		t.Errorf("envelope sender at the receiver %q, want app@src.test", got[0].MailFrom)
	}
}

// TestE2EXferRefusedByTarget: without a cluster, `gannet xfer -to
// host:port` names the other node's SMTP listener. A node that does not
// relay for this one refuses the transfer (554 5.7.1): that is not the
// recipient's bounce, so the mail stays queued here (a TransientFailure
// saying the target refused, a warning in the log), nothing arrives
// anywhere, and it is still queued after the rule is cancelled. A node id
// without a cluster, and this node's own listener, are refused as targets.
func TestE2EXferRefusedByTarget(t *testing.T) {
	refusing := startGoSink(t, hostPort("127.0.0.1", freePort(t, false, "127.0.0.1")), "rcpt:451:1:4.3.0 not now")
	sink := startGoSink(t, hostPort("127.0.0.1", freePort(t, false, "127.0.0.1")))
	a := startGannet(t, gannetConfig{DNS: "127.0.0.1:1", DeliveryPort: 1, RetryInterval: "1h", MaxRetryInterval: "1h", MaxRetryAge: "24h",
		Extra: fmt.Sprintf("\n[relay.\"gone.example\"]\nrelay_to = %q\n", refusing.addr())})
	b := startGannet(t, gannetConfig{DNS: "127.0.0.1:1", DeliveryPort: 1, RelayHosts: []string{"127.0.0.9/32"},
		DeliveryExtra: fmt.Sprintf("relay_to = %q\n", sink.addr())})

	const gone = "user@gone.example"
	id := injectSimple(t, a, gone, "", "", "refused by the target")
	a.WaitRecords(recordFilter{Type: "TransientFailure", Recipient: gone}, 1, deliveryMax)

	for _, to := range []string{"node-b", a.SMTPAddr} {
		if out, errOut, code := runGannetCLI(t, a, "xfer", "-to", to, "-domain", "gone.example"); code != 1 {
			t.Errorf("xfer -to %s (%d, want 1): %s%s", to, code, out, errOut)
		}
	}
	out, errOut, code := runGannetCLI(t, a, "xfer", "-to", b.SMTPAddr, "-domain", "gone.example")
	m := regexp.MustCompile(`^xfer (\S+) in force`).FindStringSubmatch(out)
	if code != 0 || m == nil {
		t.Fatalf("xfer -to %s (%d): %s%s", b.SMTPAddr, code, out, errOut)
	}
	recs := a.WaitRecords(recordFilter{Type: "TransientFailure", Recipient: gone}, 2, deliveryMax)
	r := recs[1]
	if r.Site != b.SMTPAddr || r.Response.Code != 451 || !strings.Contains(r.Response.Content, "refused the transfer") ||
		!strings.Contains(r.Response.Content, "554 5.7.1") {
		t.Errorf("node-a's record of the refused transfer: %s", r)
	}
	if !strings.Contains(a.p.out.String(), "xfer: the target refused the transfer") {
		t.Errorf("no warning of the refused transfer in node-a's log:\n%s", tail(a.p.out.String(), 2000))
	}
	if out, errOut, code := runGannetCLI(t, a, "xfer", "-cancel", m[1]); code != 0 {
		t.Errorf("xfer -cancel (%d): %s%s", code, out, errOut)
	}
	out, errOut, code = runGannetCLI(t, a, "queue", "list", "-domain", "gone.example")
	if code != 0 || !strings.Contains(out, id) {
		t.Errorf("node-a's queue after the refused transfer (%d): %s%s", code, out, errOut)
	}
	if n := len(selectRecords(a.Records(), recordFilter{Type: "XferOut"})) + len(selectRecords(a.Records(), recordFilter{Type: "Bounce"})); n != 0 {
		t.Errorf("%d XferOut or Bounce records on node-a: %s", n, summarize(a.Records()))
	}
	if got := sink.arrivals(t); len(got) != 0 {
		t.Errorf("mail arrived through node-b although it refused the transfer: %+v", got)
	}
}
