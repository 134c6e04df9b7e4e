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

// xferSecret is the [xfer] secret of the handover test's nodes.
const xferSecret = "e2e-xfer-secret-0123456789abcdef"

// TestE2EXferHandover: with [xfer] secret, `gannet xfer` is a node-to-node
// handover. Node-a signs its mail for src.test (DKIM) and its smarthost
// defers it; node-b, which has the same key and would sign too, takes
// handed-over mail on a second listener whose certificate node-a trusts
// ([tls] ca_file) and relays only for logged-in clients there. Node-b has
// an xfer rule pointing back at node-a for the same domain. After `gannet
// xfer` on node-a (logging in over verified STARTTLS), the message arrives at node-b's receiver once, with one
// DKIM signature (node-a's, checked by dkimpy against the key in DNS) and
// no X-Gannet-Xfer field; node-b's Reception names node-a's id
// (xfer_from) and keeps the tenant and campaign, and so does its
// Delivery; node-b did not hand it back (its rule is passed over and says
// so in its log). A client that is not a node gets a forged field
// stripped: its message keeps no tenant the field claimed.
func TestE2EXferHandover(t *testing.T) {
	keys := t.TempDir()
	key := keygen(t, keys, "src.test", "x1", "rsa")
	dns := startDNSAt(t, "127.0.0.1", 0, txtRecords(key)...)
	refusing := startGoSink(t, hostPort("127.0.0.1", freePort(t, false, "127.0.0.1")), "rcpt:451:1:4.3.0 not now")
	sink := startGoSink(t, hostPort("127.0.0.1", freePort(t, false, "127.0.0.1")))
	cert, certKey := ipCert(t, "127.0.0.1")
	common := fmt.Sprintf(`
[xfer]
secret = %q

[[tenant]]
name = "acme"
dkim_domain = "src.test"

[[dkim]]
domain = "src.test"
selector = "x1"
key_file = %q
`, xferSecret, key.file)
	a := startGannet(t, gannetConfig{DNS: dns.Addr, DeliveryPort: 1, RetryInterval: "1h", MaxRetryInterval: "1h", MaxRetryAge: "24h",
		CAFile: cert, Extra: common + fmt.Sprintf("\n[relay.\"gone.example\"]\nrelay_to = %q\n", refusing.addr())})
	bXfer := hostPort("127.0.0.1", freePort(t, false, "127.0.0.1"))
	b := startGannet(t, gannetConfig{DNS: dns.Addr, DeliveryPort: 1, RetryInterval: "1s", MaxRetryInterval: "2s",
		DeliveryExtra: fmt.Sprintf("relay_to = %q\n", sink.addr()), Extra: common + fmt.Sprintf(`
[[smtp_listener]]
name = "xfer-in"
listen = %q
hostname = "node-b.e2e.test"
relay_hosts = []
tls_cert = %q
tls_key = %q
auth_mechanisms = ["PLAIN"]
`, bXfer, cert, certKey)})

	const gone = "user@gone.example"
	// Node-b's rule points back at node-a first: mail that came from
	// node-a must not go back there.
	if out, errOut, code := runGannetCLI(t, b, "xfer", "-to", a.SMTPAddr, "-domain", "gone.example"); code != 0 {
		t.Fatalf("node-b: xfer -to node-a (%d): %s%s", code, out, errOut)
	}
	id := injectSimple(t, a, gone, "acme", "spring", "handed over whole")
	a.WaitRecords(recordFilter{Type: "TransientFailure", Recipient: gone}, 1, deliveryMax)
	if out, errOut, code := runGannetCLI(t, a, "xfer", "-to", bXfer, "-domain", "gone.example"); code != 0 {
		t.Fatalf("node-a: xfer -to %s (%d): %s%s", bXfer, code, out, errOut)
	}
	if x := a.WaitRecords(recordFilter{Type: "XferOut", Recipient: gone}, 1, deliveryMax)[0]; x.ID != id || x.Response.Code != 250 {
		t.Errorf("node-a's XferOut record: %s; want id %s and a 250", x, id)
	}
	in := b.WaitRecords(recordFilter{Type: "Reception", Recipient: gone}, 1, deliveryMax)[0]
	if !strings.Contains(in.Raw, `"xfer_from":"`+id+`"`) || in.Tenant != "acme" || in.Campaign != "spring" {
		t.Errorf("node-b's Reception: %s; want xfer_from %s, tenant acme, campaign spring", in.Raw, id)
	}
	del := b.WaitRecords(recordFilter{Type: "Delivery", Recipient: gone}, 1, deliveryMax)[0]
	if del.Tenant != "acme" || del.Campaign != "spring" {
		t.Errorf("node-b's Delivery: %s; want tenant acme, campaign spring", del)
	}
	if !strings.Contains(b.p.out.String(), "xfer: not handing a message back to the node it came from") {
		t.Errorf("node-b's log does not say it passed over its rule back to node-a:\n%s", tail(b.p.out.String(), 2000))
	}
	if n := len(selectRecords(b.Records(), recordFilter{Type: "XferOut"})); n != 0 {
		t.Errorf("node-b handed %d recipient(s) on: %s", n, summarize(b.Records()))
	}

	// Once at the receiver, signed once (by node-a), no handover field.
	var got []arrival
	for _, ar := range sink.arrivals(t) {
		if findArrival([]arrival{ar}, gone) != nil {
			got = append(got, ar)
		}
	}
	if len(got) != 1 {
		t.Fatalf("the receiver got the message %d times, want once", len(got))
	}
	if n := strings.Count(strings.ToLower(string(got[0].Data)), "\r\ndkim-signature:"); n != 1 || bytes.Contains(got[0].Data, []byte("X-Gannet-Xfer")) {
		t.Errorf("received message has %d DKIM-Signature fields (want 1) or an X-Gannet-Xfer field:\n%s", n, got[0].Data)
	}
	sigs := dkimpyVerify(t, dns.Addr, []string{got[0].File})[got[0].File]
	if len(sigs) != 1 || !sigs[0].OK || sigs[0].D != "src.test" {
		t.Errorf("dkimpy on the received message: %+v; want one good src.test signature", sigs)
	}

	// A client that is not a node: the field is stripped, its claims
	// ignored (mail to a domain no rule names).
	const other = "user@other.example"
	forged := "From: app@src.test\r\nTo: " + other + "\r\nSubject: forged\r\n" +
		"X-Gannet-Xfer: v=1; node=evil; id=x; tenant=acme; campaign=stolen; received=1; attempts=0; hops=1; signed=1; mac=AAAA\r\n" +
		"\r\nforged\r\n"
	fid := swaksRelay(t, b.SMTPAddr, "app@src.test", []string{other}, []byte(forged))
	rec := b.WaitRecords(recordFilter{Type: "Reception", ID: fid}, 1, deliveryMax)[0]
	if strings.Contains(rec.Raw, "xfer_from") || rec.Campaign == "stolen" {
		t.Errorf("node-b's Reception of a forged field: %s; want no xfer_from, not campaign stolen", rec.Raw)
	}
	waitFor(t, deliveryMax, "the forged message at the receiver", func() (bool, string) {
		for _, ar := range sink.arrivals(t) {
			if bytes.Contains(ar.Data, []byte("Subject: forged")) {
				return !bytes.Contains(ar.Data, []byte("X-Gannet-Xfer")), string(ar.Data)
			}
		}
		return false, "not yet"
	})
}
