package e2e

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

// dsnStartPostfix runs a private Postfix (its own config and queue
// directories under a temp dir) whose smtpd listens on listen, takes mail
// for anyone from 127.0.0.0/8 and relays it to relayhost ("ip:port"). It
// is Gannet's next hop as an MX: a real MTA that offers DSN.
func dsnStartPostfix(t *testing.T, listen, relayhost string) {
	t.Helper()
	p := newPrivatePostfix(t)
	rhost, rport, _ := strings.Cut(relayhost, ":")
	main := p.mainCF("pf.dsn.test", "dsn.test", "all", fmt.Sprintf(`mynetworks = 127.0.0.0/8
smtpd_relay_restrictions = permit_mynetworks, reject
relayhost = [%s]:%s
smtp_tls_security_level = none
`, rhost, rport))
	p.start(t, main, masterCF(listen+" inet n - n - - smtpd"), nil, listen)
}

// TestE2EDSNPostfix: a private Postfix is the MX Gannet delivers to. It
// offers DSN, so Gannet hands it RET, ENVID, NOTIFY and ORCPT; Postfix's
// smtpd takes them (its syntax checks are the real ones) and passes them on
// to the smtp-sink it relays to, where they are seen as Gannet sent them.
// Gannet sends no "relayed" DSN: Postfix answers for it now.
func TestE2EDSNPostfix(t *testing.T) {
	w := newRelayWorld(t)
	const sinkIP = "127.0.0.5" // not in the test zone: only Postfix uses it
	sink := startSmtpSink(t, hostPort(sinkIP, w.port))
	dsnStartPostfix(t, hostPort(mxIP1, w.port), hostPort(sinkIP, w.port))
	back := startAiosmtpd(t, hostPort(mxIP2, w.port), aioOptions{}) // the sender's domain
	g := w.gannet(t, gannetConfig{SendBounces: true})

	sender := "app@" + domain2
	c := dialSMTP(t, "", g.SMTPAddr)
	for _, cmd := range []string{
		"MAIL FROM:<" + sender + "> RET=HDRS ENVID=env+2B42",
		"RCPT TO:<a@" + domain1 + "> NOTIFY=SUCCESS,DELAY ORCPT=rfc822;Orig+2BA@" + domain1,
		"RCPT TO:<b@" + domain1 + "> NOTIFY=NEVER",
	} {
		if r := c.Cmd(cmd); !strings.HasPrefix(r, "250") {
			t.Fatalf("%s: %q", cmd, r)
		}
	}
	id := acceptedID(t, c.Data(simpleMessage(sender, "a@"+domain1, "through postfix", "Postfix passes DSN on.\n")))
	c.Quit()

	g.WaitRecords(recordFilter{Type: "Delivery", ID: id}, 2, deliveryMax)
	got := waitArrivals(t, sink, 2, 30*time.Second)
	var dump string
	for _, a := range got {
		dump += string(readFile(t, a.File))
	}
	// Postfix writes the parameters in its own order, and an ORCPT of its
	// own for a recipient that had none (RFC 3461 §4.2 allows it).
	for _, want := range []struct {
		line   string
		params []string
	}{
		{"X-Mail-Args: <" + sender + ">", []string{"RET=HDRS", "ENVID=env+2B42"}},
		{"X-Rcpt-Args: <a@" + domain1 + ">", []string{"NOTIFY=SUCCESS,DELAY", "ORCPT=rfc822;Orig+2BA@" + domain1}},
		{"X-Rcpt-Args: <b@" + domain1 + ">", []string{"NOTIFY=NEVER"}},
	} {
		var line string
		for _, l := range strings.Split(dump, "\n") {
			if strings.HasPrefix(l, want.line+" ") {
				line = l
			}
		}
		fields := strings.Fields(line)
		for _, p := range want.params {
			if !slices.Contains(fields, p) {
				t.Errorf("Postfix did not pass on %s for %q; smtp-sink saw:\n%s", p, want.line, dump)
			}
		}
	}
	time.Sleep(2 * time.Second)
	if n := len(back.arrivals(t)); n != 0 {
		t.Errorf("%d DSNs from Gannet after delivery to Postfix, which offers DSN; want none", n)
	}
}
