package e2e

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The account of the SASL smarthost.
const (
	smarthostUser = "relay@smarthost.e2e.test"
	smarthostPass = "e2e-s3cret"
)

// TestE2ESmarthostSASL: gannet hands its mail to a real Postfix smarthost
// with Cyrus SASL (sasldb) that relays only for authenticated clients and
// offers AUTH only after STARTTLS. With relay_user and relay_password_file
// the message arrives at the sink behind the smarthost, and Postfix logs
// the login; with a wrong password the message stays queued with a 451
// that names relay_user and quotes the 535, and expires after
// max_retry_age.
func TestE2ESmarthostSASL(t *testing.T) {
	gannetBinary(t)
	sink := startSmtpSink(t, hostPort("127.0.0.1", freePort(t, false, "127.0.0.1")))
	cert, key := ipCert(t, "127.0.0.1")
	pf, maillog := startSASLSmarthost(t, sink.addr(), cert, key)

	relay := func(password string, maxAge string) *gannet {
		pw := filepath.Join(t.TempDir(), "relay.password")
		if err := os.WriteFile(pw, []byte(password+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		return startGannet(t, gannetConfig{DNS: "127.0.0.1:1", DeliveryPort: 1, CAFile: cert, MaxRetryAge: maxAge,
			RetryInterval: "1s", MaxRetryInterval: "1s",
			DeliveryExtra: fmt.Sprintf("relay_to = %q\nrelay_user = %q\nrelay_password_file = %q\nrelay_tls = \"starttls\"\n", pf, smarthostUser, pw)})
	}

	t.Run("login", func(t *testing.T) {
		g := relay(smarthostPass, "10m")
		rcpt := "user@far.example"
		id := swaksRelay(t, g.SMTPAddr, senderAddr, []string{rcpt}, simpleMessage(senderAddr, rcpt, "via smarthost", "Hello through the smarthost.\n"))
		del := g.WaitRecords(recordFilter{Type: "Delivery", ID: id}, 1, deliveryMax)[0]
		if del.TLSProtocolVersion == "" {
			t.Errorf("delivered without TLS: %s", del.Raw)
		}
		got := waitArrivals(t, sink, 1, deliveryMax)
		if findArrival(got, rcpt) == nil {
			t.Fatalf("%s did not arrive behind the smarthost: %+v", rcpt, got)
		}
		log := maillog()
		if !strings.Contains(log, "sasl_method=PLAIN, sasl_username="+smarthostUser) {
			t.Errorf("Postfix did not log the PLAIN login of %s:\n%s", smarthostUser, tail(log, 3000))
		}
	})

	// [relay."DOMAIN"] and [[tenant]] smarthosts: [delivery] relay_to is
	// the sink itself (no login); mail to sasl.example and mail of tenant
	// acme goes through the SASL smarthost, each with its own login.
	t.Run("overrides", func(t *testing.T) {
		pw := filepath.Join(t.TempDir(), "relay.password")
		if err := os.WriteFile(pw, []byte(smarthostPass+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		g := startGannet(t, gannetConfig{DNS: "127.0.0.1:1", DeliveryPort: 1, CAFile: cert,
			DeliveryExtra: fmt.Sprintf("relay_to = %q\n", sink.addr()),
			Extra: fmt.Sprintf("\n[relay.\"sasl.example\"]\nrelay_to = %q\nrelay_user = %q\nrelay_password_file = %q\n"+
				"\n[[tenant]]\nname = \"acme\"\nrelay_to = %q\nrelay_user = %q\nrelay_password = %q\n",
				pf, smarthostUser, pw, pf, smarthostUser, smarthostPass)})
		direct, byDomain, byTenant := "direct@plain.example", "user@sasl.example", "acme@plain.example"
		ids := map[string]string{
			direct:   swaksRelay(t, g.SMTPAddr, senderAddr, []string{direct}, simpleMessage(senderAddr, direct, "direct", "To the sink.\n")),
			byDomain: swaksRelay(t, g.SMTPAddr, senderAddr, []string{byDomain}, simpleMessage(senderAddr, byDomain, "by domain", "Via the smarthost.\n")),
			byTenant: swaksRelay(t, g.SMTPAddr, senderAddr, []string{byTenant},
				append([]byte("X-Tenant: acme\r\n"), simpleMessage(senderAddr, byTenant, "by tenant", "Via the smarthost.\n")...)),
		}
		for rcpt, id := range ids {
			g.WaitRecords(recordFilter{Type: "Delivery", ID: id}, 1, deliveryMax)
			waitFor(t, deliveryMax, rcpt+" at the sink", func() (bool, string) { return findArrival(sink.arrivals(t), rcpt) != nil, "" })
		}
		log := maillog()
		for rcpt, via := range map[string]bool{direct: false, byDomain: true, byTenant: true} {
			if got := strings.Contains(log, "to=<"+rcpt+">"); got != via {
				t.Errorf("%s went through the smarthost: %v, want %v", rcpt, got, via)
			}
		}
	})

	t.Run("wrong password", func(t *testing.T) {
		g := relay("not-the-password", "6s")
		rcpt := "refused@far.example"
		id := swaksRelay(t, g.SMTPAddr, senderAddr, []string{rcpt}, simpleMessage(senderAddr, rcpt, "refused login", "Never arrives.\n"))
		tf := g.WaitRecords(recordFilter{Type: "TransientFailure", ID: id}, 1, deliveryMax)[0]
		if tf.Response.Code != 451 || !strings.Contains(tf.Response.Content, `refused the credentials of relay_user "`+smarthostUser+`"`) ||
			!strings.Contains(tf.Response.Content, "535") {
			t.Errorf("transient failure %s, want a 451 naming relay_user and quoting the 535", tf.Raw)
		}
		if strings.Contains(tf.Raw, "not-the-password") {
			t.Errorf("the log record shows the password: %s", tf.Raw)
		}
		g.WaitRecords(recordFilter{Type: "Expiration", ID: id}, 1, deliveryMax)
		// The operational log says it once per refused connection, without
		// the password.
		stderr := g.p.out.String()
		if n := strings.Count(stderr, "smarthost refused the relay credentials"); n == 0 || strings.Contains(stderr, "not-the-password") {
			t.Errorf("operational log: %d refusal lines, password shown %v:\n%s", n, strings.Contains(stderr, "not-the-password"), tail(stderr, 3000))
		}
		if findArrival(sink.arrivals(t), rcpt) != nil {
			t.Error("a message arrived without a login")
		}
	})
}

// ipCert writes a self-signed certificate for an IP address (its own CA:
// gannet's [tls] ca_file names it) and its key, readable by Postfix.
func ipCert(t testing.TB, ip string) (certFile, keyFile string) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(7),
		Subject:               pkix.Name{CommonName: ip},
		IPAddresses:           []net.IP{net.ParseIP(ip)},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	os.Chmod(dir, 0o755)
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), 0o644)
	return certFile, keyFile
}

// startSASLSmarthost runs a private Postfix (its own config and queue under
// a temp dir) as a submission smarthost: smtpd on a free loopback port with
// STARTTLS (cert, key), AUTH PLAIN and LOGIN only after STARTTLS, checked
// by Cyrus SASL against a sasldb holding smarthostUser, relaying only for
// authenticated clients, to relayTo. It returns the smtpd address and a
// function that reads Postfix's log.
func startSASLSmarthost(t *testing.T, relayTo, cert, key string) (string, func() string) {
	t.Helper()
	saslpasswd := needExecutable(t, "/usr/sbin/saslpasswd2", "sasl2-bin")
	if m, _ := filepath.Glob("/usr/lib/*/sasl2/libsasldb.so*"); len(m) == 0 {
		missingPeer(t, "Cyrus SASL sasldb and PLAIN modules", "Debian package libsasl2-modules")
	}
	p := newPrivatePostfix(t)
	// The account, in a sasldb that smtpd (user postfix, chrooted to the
	// queue directory) finds at Cyrus' default /etc/sasldb2. Debian's
	// Postfix reads the SASL configuration from /etc/postfix/sasl whatever
	// cyrus_sasl_config_path says, so the chroot is what keeps the test's
	// account apart from the machine's.
	if err := os.MkdirAll(filepath.Join(p.spool, "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	sasldb := filepath.Join(p.spool, "etc", "sasldb2")
	user, realm, _ := strings.Cut(smarthostUser, "@")
	cmd := exec.Command(saslpasswd, "-p", "-c", "-f", sasldb, "-u", realm, user)
	cmd.Stdin = strings.NewReader(smarthostPass)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("saslpasswd2: %v %s", err, out)
	}
	if out, err := exec.Command("chown", "postfix", sasldb).CombinedOutput(); err != nil {
		t.Fatalf("chown sasldb: %v %s", err, out)
	}
	port := freePort(t, false, "127.0.0.1")
	smtpd := hostPort("127.0.0.1", port)
	rhost, rport, _ := net.SplitHostPort(relayTo)
	main := p.mainCF("smarthost.e2e.test", "e2e.test", "127.0.0.1", fmt.Sprintf(`# Nobody relays by address: only a login lets mail through.
mynetworks = 127.0.0.254/32
smtpd_relay_restrictions = permit_sasl_authenticated, reject
relayhost = [%s]:%s
smtp_tls_security_level = none
smtpd_sasl_auth_enable = yes
smtpd_sasl_type = cyrus
smtpd_sasl_path = smtpd
smtpd_sasl_security_options = noanonymous
smtpd_tls_security_level = may
smtpd_tls_auth_only = yes
smtpd_tls_cert_file = %s
smtpd_tls_key_file = %s
smtpd_tls_loglevel = 1
`, rhost, rport, cert, key))
	// smtpd chrooted (the "y"): it finds the sasldb under the queue directory.
	p.start(t, main, masterCF(smtpd+" inet n - y - - smtpd"), nil, smtpd)
	return smtpd, p.logs
}
