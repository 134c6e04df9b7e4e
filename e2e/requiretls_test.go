package e2e

import (
	"crypto/tls"
	"encoding/pem"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/textproto"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"gannet/resolver/dnstest"
)

// REQUIRETLS (RFC 8689) end to end with the gannet binary: a client that
// asks for REQUIRETLS after STARTTLS on a TLS listener of gannet; an
// in-process DNS server for rtls.test with MTA-STS records, an HTTPS policy
// server on 127.18.63.1:443 with a certificate from a test CA (trusted
// through [tls] ca_file); aiosmtpd MX hosts that offer REQUIRETLS, that do
// not, and one with a certificate for another name.
const (
	e2eRTLSPolicyIP = "127.18.63.1"
	e2eRTLSOfferIP  = "127.18.63.2" // mx.offer.rtls.test: TLS, REQUIRETLS offered
	e2eRTLSPlainIP  = "127.18.63.3" // mx.plain.rtls.test: TLS, no REQUIRETLS
	e2eRTLSWrongIP  = "127.18.63.4" // mx.wrong.rtls.test: certificate for other.rtls.test
)

const e2eRTLSZone = `$ORIGIN rtls.test.
$TTL 1
@               IN SOA ns hostmaster 1 3600 600 86400 1
mx.offer        IN A   ` + e2eRTLSOfferIP + `
mx.plain        IN A   ` + e2eRTLSPlainIP + `
mx.wrong        IN A   ` + e2eRTLSWrongIP + `
ok              IN MX  10 mx.offer
no              IN MX  10 mx.plain
bad             IN MX  10 mx.wrong
mta-sts.ok      IN A   ` + e2eRTLSPolicyIP + `
mta-sts.no      IN A   ` + e2eRTLSPolicyIP + `
mta-sts.bad     IN A   ` + e2eRTLSPolicyIP + `
_mta-sts.ok     IN TXT "v=STSv1; id=1;"
_mta-sts.no     IN TXT "v=STSv1; id=1;"
_mta-sts.bad    IN TXT "v=STSv1; id=1;"
`

// startTLS runs STARTTLS on the session (the server's certificate is not
// checked) and EHLO again; it returns the new EHLO reply.
func (c *goSMTP) startTLS() string {
	c.t.Helper()
	if r := c.Cmd("STARTTLS"); !strings.HasPrefix(r, "220") {
		c.t.Fatalf("STARTTLS: %q", r)
	}
	tc := tls.Client(c.conn, &tls.Config{InsecureSkipVerify: true, ServerName: "relay.e2e.test"})
	if err := tc.Handshake(); err != nil {
		c.t.Fatalf("TLS handshake: %v", err)
	}
	c.conn, c.tp = tc, textproto.NewConn(tc)
	r := c.Cmd("EHLO go.e2e.test")
	if !strings.HasPrefix(r, "250") {
		c.t.Fatalf("EHLO after STARTTLS: %q", r)
	}
	return r
}

// TestE2ERequireTLS: gannet offers REQUIRETLS only after STARTTLS and
// refuses MAIL … REQUIRETLS before (530 5.7.10); a REQUIRETLS message to a
// domain under an enforced MTA-STS policy whose MX offers REQUIRETLS is
// delivered over TLS with REQUIRETLS on MAIL; one whose MX does not offer
// it is never delivered: each attempt is a TransientFailure 4.7.10, and at
// max_retry_age a Bounce 5.7.10; a "TLS-Required: No" message to an MX
// whose certificate fails the enforced policy is delivered all the same.
func TestE2ERequireTLS(t *testing.T) {
	gannetBinary(t)
	ca := newE2ECA(t)
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.cert.Raw}), 0o600)

	ps := &e2ePolicyServer{policies: map[string]string{}, fetches: map[string]int{}}
	ps.set("ok.rtls.test", "version: STSv1\nmode: enforce\nmx: mx.offer.rtls.test\nmax_age: 86400\n")
	ps.set("no.rtls.test", "version: STSv1\nmode: enforce\nmx: mx.plain.rtls.test\nmax_age: 86400\n")
	ps.set("bad.rtls.test", "version: STSv1\nmode: enforce\nmx: mx.wrong.rtls.test\nmax_age: 86400\n")
	ln, err := net.Listen("tcp", e2eRTLSPolicyIP+":443")
	if err != nil {
		t.Fatalf("policy server: %v", err)
	}
	_, _, policyPair := ca.issue(t, "mta-sts.ok.rtls.test", "mta-sts.no.rtls.test", "mta-sts.bad.rtls.test")
	hs := &http.Server{Handler: ps, TLSConfig: &tls.Config{Certificates: []tls.Certificate{policyPair}},
		ErrorLog: log.New(io.Discard, "", 0)}
	go hs.ServeTLS(ln, "", "")
	t.Cleanup(func() { hs.Close() })

	dns := dnstest.NewServer(t, e2eRTLSZone)
	port := freePort(t, false, e2eRTLSOfferIP, e2eRTLSPlainIP, e2eRTLSWrongIP)
	offerCert, offerKey, _ := ca.issue(t, "mx.offer.rtls.test")
	plainCert, plainKey, _ := ca.issue(t, "mx.plain.rtls.test")
	wrongCert, wrongKey, _ := ca.issue(t, "other.rtls.test")
	offer := startAiosmtpd(t, hostPort(e2eRTLSOfferIP, port), aioOptions{TLSCert: offerCert, TLSKey: offerKey, RequireTLS: true})
	plain := startAiosmtpd(t, hostPort(e2eRTLSPlainIP, port), aioOptions{TLSCert: plainCert, TLSKey: plainKey})
	wrong := startAiosmtpd(t, hostPort(e2eRTLSWrongIP, port), aioOptions{TLSCert: wrongCert, TLSKey: wrongKey})

	// A second listener of gannet with STARTTLS.
	inCert, inKey := selfSignedCert(t, "relay.e2e.test")
	tlsAddr := hostPort("127.0.0.1", freePort(t, false, "127.0.0.1"))
	g := startGannet(t, gannetConfig{DNS: dns.Addr, DeliveryPort: port, CAFile: caFile,
		RetryInterval: "1s", MaxRetryInterval: "2s", MaxRetryAge: "8s", Extra: fmt.Sprintf(`
[[smtp_listener]]
name = "e2e-tls"
listen = %q
hostname = "relay.e2e.test"
relay_hosts = ["127.0.0.1/32"]
tls_cert = %q
tls_key = %q
`, tlsAddr, inCert, inKey)})

	// send submits one message over STARTTLS, with REQUIRETLS when asked.
	send := func(rcpt, headers string, requireTLS bool) string {
		t.Helper()
		c := dialSMTP(t, "127.0.0.1", tlsAddr)
		defer c.Quit()
		ehlo := c.startTLS()
		if !strings.Contains(ehlo, "REQUIRETLS") {
			t.Fatalf("EHLO under TLS does not offer REQUIRETLS: %q", ehlo)
		}
		mail := "MAIL FROM:<" + senderAddr + ">"
		if requireTLS {
			mail += " REQUIRETLS"
		}
		if r := c.Cmd(mail); !strings.HasPrefix(r, "250") {
			t.Fatalf("%s: %q", mail, r)
		}
		if r := c.Cmd("RCPT TO:<" + rcpt + ">"); !strings.HasPrefix(r, "250") {
			t.Fatalf("RCPT: %q", r)
		}
		msg := headers + "From: " + senderAddr + "\r\nTo: " + rcpt + "\r\nSubject: requiretls\r\n\r\nHello.\r\n"
		return acceptedID(t, c.Data([]byte(msg)))
	}

	// Before STARTTLS: not offered, and refused.
	c := dialSMTP(t, "127.0.0.1", tlsAddr)
	if r := c.Cmd("EHLO go.e2e.test"); strings.Contains(r, "REQUIRETLS") || !strings.Contains(r, "STARTTLS") {
		t.Errorf("EHLO before STARTTLS: %q", r)
	}
	if r := c.Cmd("MAIL FROM:<" + senderAddr + "> REQUIRETLS"); !strings.HasPrefix(r, "530 5.7.10") {
		t.Errorf("MAIL REQUIRETLS in the clear: %q, want 530 5.7.10", r)
	}
	c.Quit()

	idOK := send("a@ok.rtls.test", "", true)
	idNo := send("b@no.rtls.test", "", true)
	idBad := send("c@bad.rtls.test", "TLS-Required: No\r\n", false)

	d := g.WaitRecords(recordFilter{Type: "Delivery", ID: idOK}, 1, deliveryMax)[0]
	if !strings.Contains(d.Raw, `"tls_policy":"sts-enforce"`) || d.TLSProtocolVersion == "" {
		t.Errorf("ok.rtls.test delivery: %s", d.Raw)
	}
	if a := offer.arrivals(t); len(a) != 1 || !a[0].TLS || !slices.Contains(a[0].MailOptions, "REQUIRETLS") {
		t.Errorf("mx.offer.rtls.test: %+v, want one message over TLS with REQUIRETLS on MAIL", a)
	}

	d = g.WaitRecords(recordFilter{Type: "Delivery", ID: idBad}, 1, deliveryMax)[0]
	if !strings.Contains(string(d.PeerAddress), "mx.wrong.rtls.test") {
		t.Errorf("TLS-Required: No delivery: %s", d.Raw)
	}
	if n := countRcpts(t, wrong); n != 1 {
		t.Errorf("mx.wrong.rtls.test got %d recipients, want the TLS-Required: No one", n)
	}

	tf := g.WaitRecords(recordFilter{Type: "TransientFailure", ID: idNo}, 1, deliveryMax)
	for _, r := range tf {
		if r.Response.EnhancedCode() != "4.7.10" || !strings.Contains(r.Response.Content, "does not offer REQUIRETLS") {
			t.Errorf("no.rtls.test attempt: %s", r.Raw)
		}
	}
	b := g.WaitRecords(recordFilter{Type: "Bounce", ID: idNo}, 1, deliveryMax)[0]
	if b.Response.Code != 550 || b.Response.EnhancedCode() != "5.7.10" || !strings.Contains(b.Response.Content, "REQUIRETLS") {
		t.Errorf("no.rtls.test at max_retry_age: %s, want a Bounce 550 5.7.10", b.Raw)
	}
	if exp := selectRecords(g.Records(), recordFilter{Type: "Expiration", ID: idNo}); len(exp) != 0 {
		t.Errorf("no.rtls.test expired instead of bouncing: %s", exp[0].Raw)
	}
	time.Sleep(settleTime)
	if n := countRcpts(t, plain); n != 0 {
		t.Errorf("mx.plain.rtls.test, which does not offer REQUIRETLS, got %d recipients", n)
	}
}
