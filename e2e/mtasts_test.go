package e2e

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"gannet/resolver/dnstest"
)

// MTA-STS (RFC 8461) end to end with the gannet binary: an in-process
// miekg/dns server for sts.test with the _mta-sts TXT records, an HTTPS
// policy server on port 443 of 127.18.62.1 with a certificate from a CA
// made here (trusted through [tls] ca_file), and aiosmtpd receivers with a
// good certificate, a certificate for another name, and no STARTTLS.
const (
	e2eSTSPolicyIP = "127.18.62.1"
	e2eSTSGoodIP   = "127.18.62.2" // mx.good.sts.test
	e2eSTSWrongIP  = "127.18.62.3" // mx.wrong.sts.test: certificate for other.sts.test
	e2eSTSNoTLSIP  = "127.18.62.4" // mx.notls.sts.test: no STARTTLS
)

// e2eCA is a test certificate authority.
type e2eCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
}

func newE2ECA(t *testing.T) *e2eCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "Gannet e2e CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true, IsCA: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return &e2eCA{cert: cert, key: key}
}

// issue writes a certificate for names signed by the CA, and its key, as
// PEM files in a temporary directory.
func (ca *e2eCA) issue(t *testing.T, names ...string) (certFile, keyFile string, pair tls.Certificate) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{SerialNumber: serial, Subject: pkix.Name{CommonName: names[0]}, DNSNames: names,
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kb})
	os.WriteFile(certFile, certPEM, 0o600)
	os.WriteFile(keyFile, keyPEM, 0o600)
	pair, err = tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile, pair
}

// e2ePolicyServer serves policies by Host and counts fetches.
type e2ePolicyServer struct {
	mu       sync.Mutex
	policies map[string]string
	fetches  map[string]int
}

func (p *e2ePolicyServer) set(domain, text string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.policies[domain] = text
}

func (p *e2ePolicyServer) count(domain string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.fetches[domain]
}

func (p *e2ePolicyServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	domain, ok := strings.CutPrefix(r.Host, "mta-sts.")
	p.mu.Lock()
	text, have := p.policies[domain]
	if ok {
		p.fetches[domain]++
	}
	p.mu.Unlock()
	if !have || r.URL.Path != "/.well-known/mta-sts.txt" {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", "text/plain")
	io.WriteString(w, text)
}

func e2eSTSZone(enfID string) string {
	return fmt.Sprintf(`$ORIGIN sts.test.
$TTL 1
@                  IN SOA ns hostmaster 1 3600 600 86400 1
mx.good            IN A   %s
mx.wrong           IN A   %s
mx.notls           IN A   %s
enf                IN MX  5 mx.notls
enf                IN MX  10 mx.good
enfbad             IN MX  10 mx.wrong
tst                IN MX  10 mx.wrong
mta-sts.enf        IN A   %s
mta-sts.enfbad     IN A   %s
mta-sts.tst        IN A   %s
_mta-sts.enf       IN TXT "v=STSv1; id=%s;"
_mta-sts.enfbad    IN TXT "v=STSv1; id=1;"
_mta-sts.tst       IN TXT "v=STSv1; id=1;"
`, e2eSTSGoodIP, e2eSTSWrongIP, e2eSTSNoTLSIP, e2eSTSPolicyIP, e2eSTSPolicyIP, e2eSTSPolicyIP, enfID)
}

// TestE2EMTASTS: enforce delivers to the MX host its policy names, over
// TLS, passing over a preferred MX host outside the policy; enforce never
// delivers to an MX host with a wrong-name certificate (the message stays
// queued, each attempt a TransientFailure 4.7.5 saying why); testing
// delivers to that host; the delivery records carry tls_policy, and the
// failed attempts tls_result_type too; the
// policies fetched survive a restart of the process without a refetch;
// a new TXT id makes a refetch whose policy applies.
func TestE2EMTASTS(t *testing.T) {
	gannetBinary(t)
	ca := newE2ECA(t)
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.cert.Raw}), 0o600)

	ps := &e2ePolicyServer{policies: map[string]string{}, fetches: map[string]int{}}
	ps.set("enf.sts.test", "version: STSv1\nmode: enforce\nmx: mx.good.sts.test\nmax_age: 86400\n")
	ps.set("enfbad.sts.test", "version: STSv1\nmode: enforce\nmx: *.wrong.sts.test\nmax_age: 86400\n")
	ps.set("tst.sts.test", "version: STSv1\nmode: testing\nmx: mx.wrong.sts.test\nmax_age: 86400\n")
	ln, err := net.Listen("tcp", e2eSTSPolicyIP+":443")
	if err != nil {
		t.Fatalf("policy server: %v", err)
	}
	_, _, policyPair := ca.issue(t, "mta-sts.enf.sts.test", "mta-sts.enfbad.sts.test", "mta-sts.tst.sts.test")
	hs := &http.Server{Handler: ps, TLSConfig: &tls.Config{Certificates: []tls.Certificate{policyPair}},
		ErrorLog: log.New(io.Discard, "", 0)}
	go hs.ServeTLS(ln, "", "")
	t.Cleanup(func() { hs.Close() })

	dns := dnstest.NewServer(t, e2eSTSZone("1"))
	port := freePort(t, false, e2eSTSGoodIP, e2eSTSWrongIP, e2eSTSNoTLSIP)
	goodCert, goodKey, _ := ca.issue(t, "mx.good.sts.test")
	wrongCert, wrongKey, _ := ca.issue(t, "other.sts.test")
	good := startAiosmtpd(t, hostPort(e2eSTSGoodIP, port), aioOptions{TLSCert: goodCert, TLSKey: goodKey})
	wrong := startAiosmtpd(t, hostPort(e2eSTSWrongIP, port), aioOptions{TLSCert: wrongCert, TLSKey: wrongKey})
	notls := startAiosmtpd(t, hostPort(e2eSTSNoTLSIP, port), aioOptions{})

	g := startGannet(t, gannetConfig{DNS: dns.Addr, DeliveryPort: port, CAFile: caFile, MaxRetryAge: "1h"})
	idEnf := dlvSend(t, g, "a@enf.sts.test", "")
	idBad := dlvSend(t, g, "b@enfbad.sts.test", "")
	idTst := dlvSend(t, g, "c@tst.sts.test", "")

	d := g.WaitRecords(recordFilter{Type: "Delivery", ID: idEnf}, 1, deliveryMax)[0]
	if !strings.Contains(d.Raw, `"tls_policy":"sts-enforce"`) || strings.Contains(d.Raw, "tls_result_type") ||
		d.TLSProtocolVersion == "" || !strings.Contains(string(d.PeerAddress), "mx.good.sts.test") {
		t.Errorf("enf.sts.test delivery: %s", d.Raw)
	}
	tf := g.WaitRecords(recordFilter{Type: "TransientFailure", ID: idBad}, 2, deliveryMax)
	for _, r := range tf {
		if r.Response.EnhancedCode() != "4.7.5" || !strings.Contains(r.Response.Content, "MTA-STS: policy of enfbad.sts.test enforced: TLS handshake with mx.wrong.sts.test") ||
			!strings.Contains(r.Raw, `"tls_policy":"sts-enforce","tls_result_type":"certificate-host-mismatch"`) {
			t.Errorf("enfbad.sts.test attempt: %s", r.Raw)
		}
	}
	d = g.WaitRecords(recordFilter{Type: "Delivery", ID: idTst}, 1, deliveryMax)[0]
	if !strings.Contains(d.Raw, `"tls_policy":"sts-testing"`) || !strings.Contains(string(d.PeerAddress), "mx.wrong.sts.test") {
		t.Errorf("tst.sts.test delivery: %s", d.Raw)
	}
	time.Sleep(settleTime)
	for _, a := range wrong.arrivals(t) {
		for _, r := range a.Rcpts {
			if strings.HasSuffix(r, "@enfbad.sts.test") {
				t.Errorf("enfbad.sts.test delivered to the MX host with a wrong-name certificate")
			}
		}
	}
	if n := countRcpts(t, notls); n != 0 {
		t.Errorf("%d recipients at mx.notls.sts.test, which no policy names", n)
	}
	if a := good.arrivals(t); len(a) != 1 || !a[0].TLS {
		t.Errorf("mx.good.sts.test: %+v, want one message over TLS", a)
	}
	for d, want := range map[string]int{"enf.sts.test": 1, "enfbad.sts.test": 1, "tst.sts.test": 1} {
		if n := ps.count(d); n != want {
			t.Errorf("%s fetched %d times, want %d", d, n, want)
		}
	}

	// A restart: the policy comes from the cache in the spool directory.
	g.Stop()
	g.Restart()
	id2 := dlvSend(t, g, "a2@enf.sts.test", "")
	if d = g.WaitRecords(recordFilter{Type: "Delivery", ID: id2}, 1, deliveryMax)[0]; !strings.Contains(d.Raw, `"tls_policy":"sts-enforce"`) {
		t.Errorf("after restart: %s", d.Raw)
	}
	if n := ps.count("enf.sts.test"); n != 1 {
		t.Errorf("enf.sts.test fetched %d times across a restart, want 1", n)
	}

	// A new id and a policy that names no host of the domain: refetched,
	// and mail stays queued.
	ps.set("enf.sts.test", "version: STSv1\nmode: enforce\nmx: mx.elsewhere.test\nmax_age: 86400\n")
	if err := dns.SetZone(e2eSTSZone("2")); err != nil {
		t.Fatal(err)
	}
	time.Sleep(5500 * time.Millisecond) // the resolver keeps answers at least 5 s
	id3 := dlvSend(t, g, "a3@enf.sts.test", "")
	r := g.WaitRecords(recordFilter{Type: "TransientFailure", ID: id3}, 1, deliveryMax)[0]
	if r.Response.EnhancedCode() != "4.7.5" || !strings.Contains(r.Response.Content, "does not match the policy of enf.sts.test") {
		t.Errorf("after the id change: %s", r.Raw)
	}
	if n := ps.count("enf.sts.test"); n != 2 {
		t.Errorf("enf.sts.test fetched %d times after the id change, want 2", n)
	}
}
