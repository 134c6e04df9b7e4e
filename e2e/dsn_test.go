package e2e

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// pyDSN is what testdata/dsn_parse.py (Python's email package) reads of a
// delivery status notification.
type pyDSN struct {
	Type       string              `json:"type"`
	ReportType string              `json:"report_type"`
	From       string              `json:"from"`
	Subject    string              `json:"subject"`
	Parts      []string            `json:"parts"`
	Groups     []map[string]string `json:"groups"`
	Returned   string              `json:"returned"`
}

// parseDSNPython reads a DSN with Python's email package and checks the
// RFC 3464 structure: multipart/report; report-type=delivery-status with
// a text part, a message/delivery-status part and the returned message or
// header section.
func parseDSNPython(t *testing.T, data []byte) *pyDSN {
	t.Helper()
	py := needExecutable(t, "/usr/bin/python3", "python3")
	script, err := filepath.Abs("testdata/dsn_parse.py")
	if err != nil {
		t.Fatal(err)
	}
	f := filepath.Join(t.TempDir(), "dsn.eml")
	if err := os.WriteFile(f, data, 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(py, script, f).Output()
	if err != nil {
		t.Fatalf("dsn_parse.py: %v", err)
	}
	var d pyDSN
	if err := json.Unmarshal(out, &d); err != nil {
		t.Fatalf("dsn_parse.py output %q: %v", out, err)
	}
	if d.Type != "multipart/report" || d.ReportType != "delivery-status" || len(d.Parts) != 3 ||
		d.Parts[0] != "text/plain" || d.Parts[1] != "message/delivery-status" || len(d.Groups) < 2 {
		t.Fatalf("not an RFC 3464 report: %+v\n%s", d, data)
	}
	if d.Groups[0]["Reporting-MTA"] != "dns; relay.e2e.test" || d.Groups[0]["Arrival-Date"] == "" {
		t.Errorf("per-message fields: %v", d.Groups[0])
	}
	for _, g := range d.Groups[1:] {
		if g["Final-Recipient"] == "" || g["Action"] == "" || g["Status"] == "" {
			t.Errorf("per-recipient fields lack Final-Recipient, Action or Status (RFC 3464 §2.3): %v", g)
		}
	}
	return &d
}

// TestE2EDSN: DSN (RFC 3461) with real receivers that do not offer it
// (aiosmtpd). Gannet advertises DSN and refuses a malformed parameter with
// 501 5.5.4; NOTIFY=SUCCESS gets a "relayed" DSN to the sender with ENVID
// and ORCPT echoed; NOTIFY=NEVER silences the bounce of a 550 (send_bounces
// is on); RET=HDRS returns only the header section and RET=FULL the whole
// message; NOTIFY=DELAY gets one "delayed" DSN after delay_warning_after.
// Every DSN comes from the null sender and is read by Python's email
// package.
func TestE2EDSN(t *testing.T) {
	w := newRelayWorld(t)
	good := startAiosmtpd(t, hostPort(mxIP1, w.port), aioOptions{TempfailFirst: "451 4.3.0 try again later"})
	startAiosmtpd(t, hostPort(mxIP3, w.port), aioOptions{FailRcpt: "550 5.1.1 no such user"})
	back := startAiosmtpd(t, hostPort(mxIP2, w.port), aioOptions{}) // the sender's domain: DSNs arrive here
	g := w.gannet(t, gannetConfig{SendBounces: true, Extra: "delay_warning_after = \"1ms\"\n"})

	sender := "app@" + domain2
	c := dialSMTP(t, "", g.SMTPAddr)
	if r := c.Cmd("EHLO go.e2e.test"); !strings.Contains(r, "\n250-DSN") {
		t.Errorf("EHLO does not advertise DSN: %q", r)
	}
	for _, bad := range []string{"MAIL FROM:<" + sender + "> RET=BODY", "MAIL FROM:<" + sender + "> ENVID=a+4"} {
		if r := c.Cmd(bad); !strings.HasPrefix(r, "501 5.5.4") {
			t.Errorf("%s: %q, want 501 5.5.4", bad, r)
		}
	}
	send := func(mail string, rcpts []string, subject, body string) string {
		t.Helper()
		if r := c.Cmd("MAIL FROM:<" + sender + ">" + mail); !strings.HasPrefix(r, "250") {
			t.Fatalf("MAIL: %q", r)
		}
		for _, rc := range rcpts {
			if r := c.Cmd("RCPT TO:" + rc); !strings.HasPrefix(r, "250") {
				t.Fatalf("RCPT %s: %q", rc, r)
			}
		}
		addr, _, _ := strings.Cut(strings.TrimPrefix(rcpts[0], "<"), ">")
		return acceptedID(t, c.Data(simpleMessage(sender, addr, subject, body)))
	}
	idRelayed := send(" ENVID=env-A+2B1", []string{"<ok@" + domain1 + "> NOTIFY=SUCCESS ORCPT=rfc822;Orig+2BOK@" + domain1}, "relayed", "Relay me.\n")
	idNever := send("", []string{"<never@" + domain3 + "> NOTIFY=NEVER"}, "never", "No news.\n")
	idHdrs := send(" RET=HDRS ENVID=env-C", []string{"<hdrs@" + domain3 + "> NOTIFY=FAILURE"}, "headers only", "SECRET-HDRS body.\n")
	idFull := send(" RET=FULL", []string{"<full@" + domain3 + "> NOTIFY=FAILURE"}, "full return", "FULL-BODY text.\n")
	idDelay := send("", []string{"<slow@" + domain1 + "> NOTIFY=DELAY,SUCCESS"}, "delayed", "Slowly.\n")
	c.Quit()

	g.WaitRecords(recordFilter{Type: "Bounce", ID: idNever}, 1, deliveryMax)
	// relayed (A), failed (C, D), delayed and then relayed (E).
	got := waitArrivals(t, back, 5, deliveryMax)
	time.Sleep(2 * time.Second) // a DSN too many would show
	got = back.arrivals(t)
	byID := map[string][]*pyDSN{}
	for _, a := range got {
		if a.MailFrom != "" && a.MailFrom != "<>" {
			t.Errorf("DSN from %q, want the null sender", a.MailFrom)
		}
		if len(a.Rcpts) != 1 || a.Rcpts[0] != sender {
			t.Errorf("DSN to %v, want %s", a.Rcpts, sender)
		}
		d := parseDSNPython(t, a.Data)
		id := d.Groups[0]["X-Gannet-Queue-ID"]
		byID[id] = append(byID[id], d)
	}
	if len(got) != 5 || len(byID[idNever]) != 0 {
		t.Fatalf("%d DSNs (%d for NOTIFY=NEVER), want 5 and 0:\n%s", len(got), len(byID[idNever]), summarize(g.Records()))
	}

	if ds := byID[idRelayed]; len(ds) != 1 {
		t.Errorf("relayed: %d DSNs", len(ds))
	} else {
		d := ds[0]
		r := d.Groups[1]
		if d.Groups[0]["Original-Envelope-Id"] != "env-A+2B1" || r["Action"] != "relayed" || r["Status"] != "2.0.0" ||
			r["Original-Recipient"] != "rfc822;Orig+2BOK@"+domain1 || r["Final-Recipient"] != "rfc822; ok@"+domain1 {
			t.Errorf("relayed DSN fields: %v", d.Groups)
		}
	}
	if a := findArrival(good.arrivals(t), "ok@"+domain1); a == nil {
		t.Error("the NOTIFY=SUCCESS message did not arrive")
	} else if opts := strings.Join(a.MailOptions, " "); strings.Contains(opts, "RET=") || strings.Contains(opts, "ENVID=") {
		t.Errorf("DSN parameters passed to a server without DSN: %q", opts)
	}

	for _, c := range []struct {
		id, rcpt, want, notWant, part string
	}{
		{idHdrs, "hdrs@" + domain3, "Subject: headers only", "SECRET-HDRS", "text/rfc822-headers"},
		{idFull, "full@" + domain3, "FULL-BODY text.", "", "message/rfc822"},
	} {
		ds := byID[c.id]
		if len(ds) != 1 {
			t.Errorf("%s: %d DSNs", c.rcpt, len(ds))
			continue
		}
		d := ds[0]
		r := d.Groups[1]
		if r["Action"] != "failed" || r["Status"] != "5.1.1" || r["Final-Recipient"] != "rfc822; "+c.rcpt ||
			!strings.Contains(r["Diagnostic-Code"], "550 5.1.1") {
			t.Errorf("%s: fields %v", c.rcpt, r)
		}
		if d.Parts[2] != c.part || !strings.Contains(d.Returned, c.want) || c.notWant != "" && strings.Contains(d.Returned, c.notWant) {
			t.Errorf("%s: returned part %s:\n%s", c.rcpt, d.Parts[2], d.Returned)
		}
	}
	if got := byID[idHdrs]; len(got) == 1 && got[0].Groups[0]["Original-Envelope-Id"] != "env-C" {
		t.Errorf("ENVID not echoed: %v", got[0].Groups[0])
	}

	actions := map[string]int{}
	for _, d := range byID[idDelay] {
		r := d.Groups[1]
		actions[r["Action"]]++
		if r["Action"] == "delayed" && (r["Status"] != "4.3.0" || r["Will-Retry-Until"] == "") {
			t.Errorf("delayed DSN fields: %v", r)
		}
	}
	if actions["delayed"] != 1 || actions["relayed"] != 1 {
		t.Errorf("NOTIFY=DELAY,SUCCESS with a 451 then a 250: actions %v, want one delayed and one relayed", actions)
	}
}

// TestE2EDSNPassedOn: Postfix's smtp-sink as the receiving MTA offers DSN;
// Gannet passes the parameters on (RFC 3461 §6.2.1: RET and ENVID on MAIL,
// NOTIFY and ORCPT on each RCPT, xtext as received) and, the next hop
// having taken the duty, sends no "relayed" DSN itself.
func TestE2EDSNPassedOn(t *testing.T) {
	w := newRelayWorld(t)
	sink := startSmtpSink(t, hostPort(mxIP1, w.port))
	back := startAiosmtpd(t, hostPort(mxIP2, w.port), aioOptions{}) // the sender's domain
	g := w.gannet(t, gannetConfig{SendBounces: true})

	sender := "app@" + domain2
	c := dialSMTP(t, "", g.SMTPAddr)
	for _, cmd := range []string{
		"MAIL FROM:<" + sender + "> RET=HDRS ENVID=env+2B1",
		"RCPT TO:<a@" + domain1 + "> NOTIFY=SUCCESS,DELAY ORCPT=rfc822;Orig+2BA@" + domain1,
		"RCPT TO:<b@" + domain1 + "> NOTIFY=NEVER",
		"RCPT TO:<c@" + domain1 + ">",
	} {
		if r := c.Cmd(cmd); !strings.HasPrefix(r, "250") {
			t.Fatalf("%s: %q", cmd, r)
		}
	}
	acceptedID(t, c.Data(simpleMessage(sender, "a@"+domain1, "passed on", "DSN is the next hop's duty.\n")))
	c.Quit()

	got := waitArrivals(t, sink, 3, deliveryMax)
	if len(got) != 1 {
		t.Fatalf("%d transactions at smtp-sink, want 1", len(got))
	}
	dump := string(readFile(t, got[0].File))
	for _, want := range []string{
		"X-Mail-Args: <" + sender + "> RET=HDRS ENVID=env+2B1\n",
		"X-Rcpt-Args: <a@" + domain1 + "> NOTIFY=SUCCESS,DELAY ORCPT=rfc822;Orig+2BA@" + domain1 + "\n",
		"X-Rcpt-Args: <b@" + domain1 + "> NOTIFY=NEVER\n",
		"X-Rcpt-Args: <c@" + domain1 + ">\n",
	} {
		if !strings.Contains(dump, want) {
			t.Errorf("smtp-sink dump lacks %q:\n%s", strings.TrimSpace(want), dump)
		}
	}
	time.Sleep(2 * time.Second)
	if n := len(back.arrivals(t)); n != 0 {
		t.Errorf("%d DSNs from Gannet after delivery to a server that offers DSN, want none", n)
	}
}
