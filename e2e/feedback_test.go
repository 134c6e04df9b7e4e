package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"gannet/feedback"
)

// fbRecord is the part of an OOB or Feedback record these tests read.
type fbRecord struct {
	Type         string `json:"type"`
	ID           string `json:"id"`
	Recipient    string `json:"recipient"`
	Tenant       string `json:"tenant"`
	Campaign     string `json:"campaign"`
	Listener     string `json:"listener"`
	Matched      *bool  `json:"matched"`
	MatchedBy    string `json:"matched_by"`
	Unmatched    string `json:"unmatched_reason"`
	ReportingMTA string `json:"reporting_mta"`
	RemoteMTA    string `json:"remote_mta"`
	Action       string `json:"action"`
	FeedbackType string `json:"feedback_type"`
	UserAgent    string `json:"user_agent"`
	Bounce       string `json:"bounce_classification"`
	Suppressed   bool   `json:"suppressed"`
	Response     struct {
		Code    int    `json:"code"`
		Content string `json:"content"`
	} `json:"response"`
}

func fbDecode(t *testing.T, r logRecord) fbRecord {
	t.Helper()
	var f fbRecord
	if err := json.Unmarshal([]byte(r.Raw), &f); err != nil {
		t.Fatalf("record %s: %v", r.Raw, err)
	}
	if f.Matched == nil {
		t.Fatalf("%s record without \"matched\": %s", f.Type, r.Raw)
	}
	return f
}

const (
	fbSecret     = "e2e-feedback-secret-0123456789"
	bounceDomain = "bounces.example"
	fblDomain    = "fbl.example"
)

// fbStartPostfix runs a private Postfix as the MX of d1.test: it takes
// Gannet's mail, relays it to relayhost (which refuses it), and sends the
// bounce it then owes (RFC 3464, from the null sender) to the message's
// envelope sender by its transport map: domain=host:port pairs, e.g.
// bounces.example to Gannet's SMTP listener (never DNS).
func fbStartPostfix(t *testing.T, listen, relayhost string, transport map[string]string) *privatePostfix {
	t.Helper()
	p := newPrivatePostfix(t)
	rhost, rport, _ := strings.Cut(relayhost, ":")
	var routes []string
	for domain, addr := range transport {
		host, port, _ := strings.Cut(addr, ":")
		routes = append(routes, fmt.Sprintf("%s=smtp:[%s]:%s", domain, host, port))
	}
	main := p.mainCF("pf.fb.test", "fb.test", "all", fmt.Sprintf(`mynetworks = 127.0.0.0/8
smtpd_relay_restrictions = permit_mynetworks, reject
relayhost = [%s]:%s
transport_maps = inline:{ %s }
smtp_tls_security_level = none
`, rhost, rport, strings.Join(routes, ", ")))
	p.start(t, main, masterCF(listen+" inet n - n - - smtpd"), nil, listen)
	return p
}

// TestE2EFeedback runs feedback in with real peers. One Gannet has a
// [feedback] secret and return_path_domain (VERP) and a second listener
// with feedback = true (the FBL address).
//
//   - postfix DSN: a message Gannet sends goes to a real Postfix (the MX),
//     whose next hop refuses the recipient with 550 5.1.1; Postfix's own
//     bounce goes to Gannet's VERP return path and becomes an OOB record
//     matched to the message id, tenant and campaign, classified
//     InvalidRecipient; it is not relayed anywhere. A two-recipient
//     transaction's DSN gives one matched record per recipient.
//   - ARF: a real feedback report (sisimai's arf-14.eml, Yahoo's format)
//     whose returned message is the one Gannet delivered (with its
//     X-Gannet-Ref) is sent with swaks from a host outside relay_hosts to
//     the FBL listener: a Feedback record matched by the header.
//   - forged: the same report with a reference signed under another
//     secret, or altered, is recorded unmatched ("forged"), never matched.
//   - refusals: a message that is no report gets 550 5.6.0; a relayed
//     recipient after a feedback one gets 452 4.5.3; relaying from outside
//     relay_hosts is still 554; the process keeps running.
func TestE2EFeedback(t *testing.T) {
	w := newRelayWorld(t)
	const sinkIP = "127.0.0.5"
	refusing := startSmtpSink(t, hostPort(sinkIP, w.port), "-f", "RCPT", "-B", "550 5.1.1 no such user here")
	reader := startAiosmtpd(t, hostPort(mxIP2, w.port), aioOptions{}) // d2.test takes mail
	fblAddr := freeAddr(t)
	g := w.gannet(t, gannetConfig{Extra: fmt.Sprintf(`
[feedback]
secret = %q
return_path_domain = %q
domains = [%q]

[[smtp_listener]]
name = "fbl-in"
listen = %q
hostname = "fbl.e2e.test"
relay_hosts = []
feedback = true
`, fbSecret, bounceDomain, fblDomain, fblAddr)})
	pf := fbStartPostfix(t, hostPort(mxIP1, w.port), hostPort(sinkIP, w.port), map[string]string{bounceDomain: g.SMTPAddr})
	sender := "app@" + domain2

	t.Run("postfix DSN", func(t *testing.T) {
		rcpt := "nouser@" + domain1
		msg := append([]byte("X-Tenant: acme\r\nX-Campaign: spring\r\n"), simpleMessage(sender, rcpt, "bounces later", "Postfix takes it, then bounces it.\n")...)
		c := dialSMTP(t, "", g.SMTPAddr)
		id := acceptedID(t, c.Send(sender, []string{rcpt}, msg))
		c.Quit()
		g.WaitRecords(recordFilter{Type: "Delivery", ID: id}, 1, deliveryMax)
		recs := g.WaitRecords(recordFilter{Type: "OOB", Recipient: rcpt}, 1, 90*time.Second)
		f := fbDecode(t, recs[0])
		t.Logf("OOB record: %s", recs[0].Raw)
		if !*f.Matched || f.MatchedBy != "verp" || f.ID != id || f.Tenant != "acme" || f.Campaign != "spring" {
			t.Errorf("OOB record not matched to %s acme/spring by the return path: %s", id, recs[0].Raw)
		}
		if f.ReportingMTA != "pf.fb.test" || f.Action != "failed" || recs[0].Response.EnhancedCode() != "5.1.1" ||
			f.Response.Code != 550 || !strings.Contains(f.Response.Content, "no such user here") || f.Bounce != "InvalidRecipient" {
			t.Errorf("OOB record fields: %s", recs[0].Raw)
		}
		if f.Listener != "e2e-in" {
			t.Errorf("OOB record listener %q, want e2e-in", f.Listener)
		}
		// The hard bounce put the recipient on acme's suppression list.
		if out, errOut, code := runGannetCLI(t, g, "suppress", "list", "-tenant", "acme"); !f.Suppressed || code != 0 ||
			!strings.Contains(out, rcpt) || !strings.Contains(out, "oob") {
			t.Errorf("OOB bounce not suppressed (record suppressed=%v); gannet suppress list -tenant acme (%d):\n%s%s", f.Suppressed, code, out, errOut)
		}
		if !regexp.MustCompile(`from=<bounce\+[A-Za-z0-9_-]+@` + regexp.QuoteMeta(bounceDomain) + `>`).MatchString(pf.logs()) {
			t.Errorf("Postfix did not see the VERP return path:\n%s", tail(pf.logs(), 3000))
		}
		// The bounce was consumed: no delivery, no Reception of it.
		for _, r := range g.Records() {
			if r.HasRecipient("bounce+") || strings.Contains(r.Raw, `"recipient":"bounce+`) {
				t.Errorf("the DSN was spooled or relayed: %s", r.Raw)
			}
		}
		if n := len(refusing.arrivals(t)); n != 0 {
			t.Errorf("the refusing sink saw %d messages", n)
		}

		// Two recipients in one transaction: the return path names the
		// message only; the DSN names each recipient.
		two := []string{"gone1@" + domain1, "gone2@" + domain1}
		c = dialSMTP(t, "", g.SMTPAddr)
		id2 := acceptedID(t, c.Send(sender, two, append([]byte("X-Tenant: acme\r\nX-Campaign: two\r\n"),
			simpleMessage(sender, two[0], "two bounce", "Both bounce.\n")...)))
		c.Quit()
		for _, r := range two {
			recs := g.WaitRecords(recordFilter{Type: "OOB", Recipient: r}, 1, 90*time.Second)
			if f := fbDecode(t, recs[0]); !*f.Matched || f.ID != id2 || f.Campaign != "two" || recs[0].Response.EnhancedCode() != "5.1.1" {
				t.Errorf("OOB record of %s: %s", r, recs[0].Raw)
			}
		}
	})

	// A message delivered to d2.test, as an FBL would quote it back.
	rcpt := "reader@" + domain2
	msg := append([]byte("X-Tenant: acme\r\nX-Campaign: summer\r\n"), simpleMessage(sender, rcpt, "complained about", "Buy now.\n")...)
	c := dialSMTP(t, "", g.SMTPAddr)
	id := acceptedID(t, c.Send(sender, []string{rcpt}, msg))
	c.Quit()
	got := waitArrivals(t, reader, 1, deliveryMax)
	delivered := got[0].Data
	if !strings.HasPrefix(got[0].MailFrom, "bounce+") || !strings.HasSuffix(got[0].MailFrom, "@"+bounceDomain) {
		t.Errorf("MAIL FROM at the receiver %q, want a VERP address bounce+…@%s", got[0].MailFrom, bounceDomain)
	}
	ref, _ := headerValue(delivered, feedback.RefHeader)
	if ref == "" {
		t.Fatalf("delivered message has no %s:\n%s", feedback.RefHeader, delivered)
	}

	sendARF := func(t *testing.T, quoted string) string {
		t.Helper()
		return swaksSend(t, fblAddr, "fbl-reports@isp.example", []string{"fbl@" + fblDomain}, arfReport(t, rcpt, quoted),
			"--local-interface", foreignIP)
	}

	t.Run("ARF", func(t *testing.T) {
		if r := sendARF(t, string(delivered)); !strings.HasPrefix(r, "250") {
			t.Fatalf("ARF report: %q", r)
		}
		recs := g.WaitRecords(recordFilter{Type: "Feedback", Recipient: rcpt}, 1, 20*time.Second)
		f := fbDecode(t, recs[0])
		t.Logf("Feedback record: %s", recs[0].Raw)
		if !*f.Matched || f.MatchedBy != "header" || f.ID != id || f.Tenant != "acme" || f.Campaign != "summer" ||
			f.FeedbackType != "abuse" || f.UserAgent != "Yahoo!-Mail-Feedback/2.0" || f.Listener != "fbl-in" {
			t.Errorf("Feedback record: %s", recs[0].Raw)
		}
		// The complaint put the recipient on acme's suppression list.
		if out, errOut, code := runGannetCLI(t, g, "suppress", "list", "-tenant", "acme"); !f.Suppressed || code != 0 ||
			!strings.Contains(out, rcpt) || !strings.Contains(out, "complaint") {
			t.Errorf("complaint not suppressed (record suppressed=%v); gannet suppress list -tenant acme (%d):\n%s%s", f.Suppressed, code, out, errOut)
		}
	})

	t.Run("forged", func(t *testing.T) {
		other := feedback.NewKey("not-the-secret-0123456789").Seal(feedback.Ref{ID: id, Tenant: "acme", Campaign: "summer"})
		altered := []byte(ref)
		altered[len(altered)/2] ^= 1
		for i, tok := range []string{other, string(altered)} {
			forgedRcpt := fmt.Sprintf("forged%d@%s", i, domain2)
			quoted := strings.Replace(string(delivered), ref, tok, 1)
			if r := swaksSend(t, fblAddr, "fbl-reports@isp.example", []string{"fbl@" + fblDomain}, arfReport(t, forgedRcpt, quoted),
				"--local-interface", foreignIP); !strings.HasPrefix(r, "250") {
				t.Fatalf("forged report: %q", r)
			}
			recs := g.WaitRecords(recordFilter{Type: "Feedback", Recipient: forgedRcpt}, 1, 20*time.Second)
			f := fbDecode(t, recs[0])
			t.Logf("forged report's record: %s", recs[0].Raw)
			if *f.Matched || f.ID != "" || f.Tenant != "" || f.Campaign != "" || !strings.Contains(f.Unmatched, "reference") || f.Suppressed {
				t.Errorf("forged reference %d was trusted: %s", i, recs[0].Raw)
			}
			for _, list := range []string{"-global", "-tenant=acme"} {
				if out, _, _ := runGannetCLI(t, g, "suppress", "list", list); strings.Contains(out, forgedRcpt) {
					t.Errorf("a forged report suppressed %s (%s):\n%s", forgedRcpt, list, out)
				}
			}
		}
	})

	t.Run("refusals", func(t *testing.T) {
		c := dialSMTP(t, foreignIP, fblAddr)
		r := c.Send("someone@isp.example", []string{"fbl@" + fblDomain}, simpleMessage("someone@isp.example", "fbl@"+fblDomain, "thanks", "Just a reply.\n"))
		if !strings.HasPrefix(r, "550 5.6.0") {
			t.Errorf("plain message to the FBL address: %q, want 550 5.6.0", r)
		}
		c.Quit()
		waitFor(t, 10*time.Second, "a Rejection record of the 550 5.6.0", func() (bool, string) {
			for _, r := range g.Records() {
				if r.Type == "Rejection" && r.Response.Code == 550 && r.Response.EnhancedCode() == "5.6.0" &&
					strings.Contains(r.Raw, `"listener":"fbl-in"`) {
					return true, ""
				}
			}
			return false, ""
		})

		c = dialSMTP(t, "", g.SMTPAddr)
		c.Cmd("MAIL FROM:<>")
		if r := c.Cmd("RCPT TO:<x@" + fblDomain + ">"); !strings.HasPrefix(r, "250") {
			t.Errorf("RCPT to a feedback domain: %q", r)
		}
		if r := c.Cmd("RCPT TO:<y@" + domain2 + ">"); !strings.HasPrefix(r, "452 4.5.3") {
			t.Errorf("relayed RCPT after a feedback one: %q, want 452 4.5.3", r)
		}
		c.Quit()

		c = dialSMTP(t, foreignIP, g.SMTPAddr)
		c.Cmd("MAIL FROM:<a@isp.example>")
		if r := c.Cmd("RCPT TO:<y@" + domain2 + ">"); !strings.HasPrefix(r, "554 5.7.1") {
			t.Errorf("relaying from outside relay_hosts: %q, want 554 5.7.1", r)
		}
		if r := c.Cmd("RCPT TO:<x@" + fblDomain + ">"); !strings.HasPrefix(r, "250") {
			t.Errorf("feedback domain from outside relay_hosts: %q, want 250", r)
		}
		c.Quit()

		// A broken multipart/report, and one with 2,000 recipient groups:
		// a clear refusal; 1,000 records (feedback.MaxRecipients), unmatched.
		c = dialSMTP(t, foreignIP, fblAddr)
		r = c.Send("", []string{"fbl@" + fblDomain}, []byte("Content-Type: multipart/report; boundary=z\r\nSubject: broken\r\n\r\nno parts at all\r\n"))
		if !strings.HasPrefix(r, "550 5.6.0 Malformed report") {
			t.Errorf("broken report: %q, want 550 5.6.0 Malformed report", r)
		}
		var big strings.Builder
		big.WriteString("Content-Type: multipart/report; report-type=delivery-status; boundary=b\r\n\r\n--b\r\n" +
			"Content-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.many.test\r\n")
		for i := 0; i < 2000; i++ {
			fmt.Fprintf(&big, "\r\nFinal-Recipient: rfc822; u%d@many.test\r\nAction: failed\r\nStatus: 5.1.1\r\n", i)
		}
		big.WriteString("--b--\r\n")
		if r := c.Send("", []string{"fbl@" + fblDomain}, []byte(big.String())); !strings.HasPrefix(r, "250") {
			t.Errorf("report with 2,000 recipients: %q", r)
		}
		c.Quit()
		waitFor(t, 20*time.Second, "1,000 OOB records", func() (bool, string) {
			n := 0
			for _, r := range g.Records() {
				if rs := r.Recipients(); r.Type == "OOB" && len(rs) == 1 && strings.HasSuffix(rs[0], "@many.test") {
					if !strings.Contains(r.Raw, `"matched":false`) {
						t.Fatalf("unsigned report matched: %s", r.Raw)
					}
					n++
				}
			}
			return n == 1000, fmt.Sprint(n)
		})

		// Still running and relaying.
		c = dialSMTP(t, "", g.SMTPAddr)
		acceptedID(t, c.Send(sender, []string{"after@" + domain2}, simpleMessage(sender, "after@"+domain2, "after", "x\n")))
		c.Quit()
		waitArrivals(t, reader, 2, deliveryMax)
	})
}

// TestE2EFeedbackHeaderOnly: without a VERP return path, a real Postfix's
// bounce goes to the sender's own domain (an aiosmtpd here, as an ESP's
// customer's mailbox); forwarded from there, as it arrived, to Gannet's FBL
// listener with swaks, it is matched by the X-Gannet-Ref that Postfix
// returned in the bounce (RFC 3464 §2: the returned header section).
func TestE2EFeedbackHeaderOnly(t *testing.T) {
	w := newRelayWorld(t)
	const sinkIP = "127.0.0.5"
	startSmtpSink(t, hostPort(sinkIP, w.port), "-f", "RCPT", "-B", "550 5.1.1 no such user here")
	senderBox := startAiosmtpd(t, hostPort(mxIP2, w.port), aioOptions{}) // d2.test: the sender's domain
	fblAddr := freeAddr(t)
	g := w.gannet(t, gannetConfig{Extra: fmt.Sprintf(`
[feedback]
secret = %q

[[smtp_listener]]
name = "fbl-in"
listen = %q
relay_hosts = []
feedback = true
`, fbSecret, fblAddr)})
	fbStartPostfix(t, hostPort(mxIP1, w.port), hostPort(sinkIP, w.port), map[string]string{domain2: hostPort(mxIP2, w.port)})

	sender, rcpt := "app@"+domain2, "gone@"+domain1
	c := dialSMTP(t, "", g.SMTPAddr)
	id := acceptedID(t, c.Send(sender, []string{rcpt}, append([]byte("X-Tenant: shop\r\nX-Campaign: fall\r\n"),
		simpleMessage(sender, rcpt, "header only", "No VERP here.\n")...)))
	c.Quit()
	bounces := waitArrivals(t, senderBox, 1, 90*time.Second)
	if (bounces[0].MailFrom != "" && bounces[0].MailFrom != "<>") || !strings.Contains(string(bounces[0].Data), "report-type=delivery-status") {
		t.Fatalf("not Postfix's bounce at the sender's domain: from <%s>\n%s", bounces[0].MailFrom, bounces[0].Data)
	}
	if r := swaksSend(t, fblAddr, "forwarder@"+domain2, []string{"bounces@" + fblDomain}, bounces[0].Data,
		"--local-interface", foreignIP); !strings.HasPrefix(r, "250") {
		t.Fatalf("forwarded bounce: %q", r)
	}
	recs := g.WaitRecords(recordFilter{Type: "OOB", Recipient: rcpt}, 1, 20*time.Second)
	f := fbDecode(t, recs[0])
	t.Logf("OOB record: %s", recs[0].Raw)
	if !*f.Matched || f.MatchedBy != "header" || f.ID != id || f.Tenant != "shop" || f.Campaign != "fall" ||
		f.ReportingMTA != "pf.fb.test" || recs[0].Response.EnhancedCode() != "5.1.1" || f.Bounce != "InvalidRecipient" {
		t.Errorf("OOB record: %s", recs[0].Raw)
	}
}

// arfReport builds a feedback report from sisimai's arf-14.eml (a real
// Yahoo! report about an Amazon SES message): its Original-Rcpt-To becomes
// rcpt and its returned message becomes quoted.
func arfReport(t *testing.T, rcpt, quoted string) []byte {
	t.Helper()
	base := os.Getenv("GANNET_TESTDATA")
	if base == "" {
		base = filepath.Join("..", "..", "shared", "testdata")
	}
	b, err := os.ReadFile(filepath.Join(base, "bounces", "sisimai", "maildir-bsd", "arf-14.eml"))
	if err != nil {
		t.Fatalf("shared test data: %v (set GANNET_TESTDATA)", err)
	}
	s := strings.ReplaceAll(string(b), "Original-Rcpt-To: kijitora@y.example.com", "Original-Rcpt-To: "+rcpt)
	s = strings.ReplaceAll(s, "Content-Length: 2022\n", "")
	const part = "Content-Type: message/rfc822\nContent-Disposition: inline\n\n"
	i := strings.Index(s, part)
	if i < 0 {
		t.Fatal("arf-14.eml changed: no message/rfc822 part")
	}
	s = s[:i+len(part)] + strings.ReplaceAll(quoted, "\r\n", "\n") + "\n------=_Part_22220022_2222222200.22222222222--\n"
	return []byte(strings.ReplaceAll(s, "\n", "\r\n"))
}
