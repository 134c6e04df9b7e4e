package engine

// The end-to-end test of MTA-STS (RFC 8461) with real parts on loopback: an
// in-process miekg/dns server for a .test zone with the _mta-sts TXT
// records, an HTTPS policy server on port 443 of 127.18.61.1 with a
// certificate from a CA made by the test ([tls] ca_file trusts it), and
// bench/smtpsink receivers offering a good certificate, a certificate for
// another name, and no STARTTLS.

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	bsink "gannet/bench/smtpsink/sink"
	"gannet/engine/config"
	"gannet/engine/httpapi"
	"gannet/engine/logrec"
	"gannet/engine/mtasts"
	"gannet/resolver/dnstest"
)

// Addresses of the test: an unusual 127/8 block so that parallel tests do
// not collide on port 443.
const (
	stsPolicyIP = "127.18.61.1" // mta-sts.*.test: the HTTPS policy server
	stsGoodIP   = "127.18.61.2" // mx.good.test: certificate for its name
	stsWrongIP  = "127.18.61.3" // mx.wrong.test: certificate for other.test
	stsNoTLSIP  = "127.18.61.4" // mx.notls.test: no STARTTLS
)

// testCA is a certificate authority made for one test.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  []byte
}

func newTestCA(t testing.TB) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "Gannet test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature, BasicConstraintsValid: true, IsCA: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return &testCA{cert: cert, key: key, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

// issue returns a server certificate for names signed by the CA.
func (ca *testCA) issue(t testing.TB, names ...string) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{
		SerialNumber: serial, Subject: pkix.Name{CommonName: names[0]}, DNSNames: names,
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(der)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}
}

// policyServer serves MTA-STS policy files over HTTPS and counts fetches
// per domain.
type policyServer struct {
	mu       sync.Mutex
	policies map[string]string // domain → policy text
	fetches  map[string]int
}

func (p *policyServer) set(domain, text string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.policies[domain] = text
}

func (p *policyServer) count(domain string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.fetches[domain]
}

func (p *policyServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	host, _, err := net.SplitHostPort(r.Host)
	if err != nil {
		host = r.Host
	}
	domain, ok := strings.CutPrefix(host, "mta-sts.")
	p.mu.Lock()
	text, have := p.policies[domain]
	if ok {
		p.fetches[domain]++
	}
	p.mu.Unlock()
	if !ok || !have || r.URL.Path != "/.well-known/mta-sts.txt" {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", "text/plain")
	fmt.Fprint(w, text)
}

// stsZone is the test zone; ids gives the TXT id of each policy domain.
func stsZone(ids map[string]string) string {
	var b strings.Builder
	fmt.Fprintf(&b, `$ORIGIN test.
$TTL 1
@              IN SOA ns hostmaster 1 3600 600 86400 1
mx.good        IN A   %s
mx.wrong       IN A   %s
mx.notls       IN A   %s
enf            IN MX  5 mx.notls
enf            IN MX  10 mx.good
enfbad         IN MX  10 mx.wrong
nomatch        IN MX  10 mx.good
tst            IN MX  10 mx.wrong
off            IN MX  10 mx.wrong
`, stsGoodIP, stsWrongIP, stsNoTLSIP)
	for _, d := range []string{"enf", "enfbad", "nomatch", "tst", "off"} {
		fmt.Fprintf(&b, "mta-sts.%s IN A %s\n", d, stsPolicyIP)
		fmt.Fprintf(&b, "_mta-sts.%s IN TXT \"v=STSv1; id=%s;\"\n", d, ids[d])
	}
	return b.String()
}

// startSinksOnOnePort starts a receiver on each address at one port (the
// engine's smtp_port), returning the port.
func startSinksOnOnePort(t *testing.T, cfgs map[string]*bsink.Config) (int, map[string]*bsink.Sink) {
	t.Helper()
	for try := 0; try < 10; try++ {
		ln, err := net.Listen("tcp", stsGoodIP+":0")
		if err != nil {
			t.Fatal(err)
		}
		port := ln.Addr().(*net.TCPAddr).Port
		ln.Close()
		sinks := map[string]*bsink.Sink{}
		ok := true
		for ip, c := range cfgs {
			c.Listen = []string{fmt.Sprintf("%s:%d", ip, port)}
			s, err := bsink.Start(*c)
			if err != nil {
				ok = false
				break
			}
			sinks[ip] = s
		}
		if ok {
			for _, s := range sinks {
				t.Cleanup(func() { s.Close() })
			}
			return port, sinks
		}
		for _, s := range sinks {
			s.Close()
		}
	}
	t.Fatal("no common free port for the receivers")
	return 0, nil
}

// TestMTASTSEndToEnd: enforce delivers to the matching MX over verified
// TLS and never to an MX with a wrong-name certificate, without STARTTLS
// or outside the policy (the message stays queued with a 4.7.5 that says
// why); testing delivers to the bad MX and counts the failure; mta_sts =
// false per domain ignores the policy; a cached policy survives a restart
// without a refetch; a new TXT id makes a refetch and the new policy
// applies.
func TestMTASTSEndToEnd(t *testing.T) {
	ca := newTestCA(t)
	dir := t.TempDir()
	caFile := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(caFile, ca.pem, 0o600); err != nil {
		t.Fatal(err)
	}

	// The policy server, on port 443 as RFC 8461 §3.3 wants.
	ps := &policyServer{policies: map[string]string{}, fetches: map[string]int{}}
	ps.set("enf.test", "version: STSv1\nmode: enforce\nmx: mx.good.test\nmax_age: 86400\n")
	ps.set("enfbad.test", "version: STSv1\nmode: enforce\nmx: mx.wrong.test\nmax_age: 86400\n")
	ps.set("nomatch.test", "version: STSv1\nmode: enforce\nmx: *.elsewhere.test\nmax_age: 86400\n")
	ps.set("tst.test", "version: STSv1\nmode: testing\nmx: mx.wrong.test\nmax_age: 86400\n")
	ps.set("off.test", "version: STSv1\nmode: enforce\nmx: mx.nowhere.test\nmax_age: 86400\n")
	ln, err := net.Listen("tcp", stsPolicyIP+":443")
	if err != nil {
		t.Fatalf("policy server on %s:443: %v", stsPolicyIP, err)
	}
	hs := &http.Server{Handler: ps, TLSConfig: &tls.Config{Certificates: []tls.Certificate{
		ca.issue(t, "mta-sts.enf.test", "mta-sts.enfbad.test", "mta-sts.nomatch.test", "mta-sts.tst.test", "mta-sts.off.test")}}}
	go hs.ServeTLS(ln, "", "")
	t.Cleanup(func() { hs.Close() })

	ids := map[string]string{"enf": "1", "enfbad": "1", "nomatch": "1", "tst": "1", "off": "1"}
	dns := dnstest.NewServer(t, stsZone(ids))

	port, sinks := startSinksOnOnePort(t, map[string]*bsink.Config{
		stsGoodIP:  {Hostname: "mx.good.test", Keep: true, TLS: &tls.Config{Certificates: []tls.Certificate{ca.issue(t, "mx.good.test")}}},
		stsWrongIP: {Hostname: "mx.wrong.test", Keep: true, TLS: &tls.Config{Certificates: []tls.Certificate{ca.issue(t, "other.test")}}},
		stsNoTLSIP: {Hostname: "mx.notls.test", Keep: true},
	})

	cfgText := fmt.Sprintf(`smtp_listener = []
http_listener = []
[spool]
path = %q
[log]
path = %q
[resolver]
nameservers = [%q]
[delivery]
smtp_port = %d
ehlo_name = "relay.sts.test"
[tls]
ca_file = %q
[tls_policy."off.test"]
mta_sts = false
`, filepath.Join(dir, "spool"), filepath.Join(dir, "logs"), dns.Addr, port, caFile)
	cfg, err := config.Parse("sts.toml", []byte(cfgText))
	if err != nil {
		t.Fatal(err)
	}
	logs := new(syncBuffer)
	start := func() *Engine {
		t.Helper()
		e, err := New(cfg, Options{Logger: slog.New(slog.NewTextHandler(logs, nil))})
		if err != nil {
			t.Fatal(err)
		}
		if err := e.Start(); err != nil {
			t.Fatal(err)
		}
		return e
	}
	stop := func(e *Engine) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		e.Stop(ctx)
	}
	send := func(e *Engine, rcpt string) {
		t.Helper()
		msg := httpapi.Message{From: "a@src.test", Recipients: []string{rcpt},
			Body: []byte("From: a@src.test\r\nTo: " + rcpt + "\r\nSubject: sts\r\n\r\nhi\r\n")}
		if _, err := e.Inject(context.Background(), []httpapi.Message{msg}); err != nil {
			t.Fatal(err)
		}
	}
	// outcome waits for the first delivery or transient failure record of
	// rcpt.
	outcome := func(rcpt string) logrec.Record {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for {
			var found *logrec.Record
			logrec.ReadDir(filepath.Join(dir, "logs"), func(r *logrec.Record) error {
				if found == nil && r.Recipient == rcpt && r.Type != logrec.Reception {
					c := *r
					found = &c
				}
				return nil
			})
			if found != nil {
				return *found
			}
			if time.Now().After(deadline) {
				t.Fatalf("no delivery record for %s; log:\n%s", rcpt, logs.String())
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	received := func(ip, rcpt string) (got, withTLS bool) {
		for _, m := range sinks[ip].Messages() {
			for _, r := range m.Rcpts {
				if r == rcpt {
					return true, m.TLS
				}
			}
		}
		return false, false
	}

	e := start()
	for _, r := range []string{"u@enf.test", "u@enfbad.test", "u@nomatch.test", "u@tst.test", "u@off.test"} {
		send(e, r)
	}

	// enforce: past mx.notls.test (preferred, but not in the policy) to
	// mx.good.test, over verified TLS.
	r := outcome("u@enf.test")
	if r.Type != logrec.Delivery || r.PeerAddress.Name != "mx.good.test" || r.TLSPolicy != "sts-enforce" || r.TLSProtocolVersion == "" || r.TLSResultType != "" {
		t.Errorf("enf.test: %+v", r)
	}
	if got, withTLS := received(stsGoodIP, "u@enf.test"); !got || !withTLS {
		t.Errorf("enf.test at mx.good.test: received %v, TLS %v", got, withTLS)
	}
	// enforce, wrong-name certificate: not delivered, 4.7.5 saying why.
	r = outcome("u@enfbad.test")
	if r.Type != logrec.TransientFailure || r.Response.EnhancedCode != "4.7.5" || r.TLSPolicy != "sts-enforce" ||
		r.TLSResultType != "certificate-host-mismatch" || !strings.Contains(r.Response.Content, "MTA-STS: policy of enfbad.test enforced: TLS handshake with mx.wrong.test") {
		t.Errorf("enfbad.test: %+v", r)
	}
	// enforce, MX outside the policy.
	r = outcome("u@nomatch.test")
	if r.Type != logrec.TransientFailure || r.Response.EnhancedCode != "4.7.5" || r.TLSResultType != "validation-failure" ||
		!strings.Contains(r.Response.Content, "MTA-STS: mx.good.test does not match the policy of nomatch.test") {
		t.Errorf("nomatch.test: %+v", r)
	}
	// testing: delivered to the bad MX (in the clear after the failed
	// handshake, fallback_plaintext), failure counted.
	r = outcome("u@tst.test")
	if r.Type != logrec.Delivery || r.PeerAddress.Name != "mx.wrong.test" || r.TLSPolicy != "sts-testing" {
		t.Errorf("tst.test: %+v", r)
	}
	// mta_sts = false: the enforce policy of off.test is not even fetched.
	r = outcome("u@off.test")
	if r.Type != logrec.Delivery || r.TLSPolicy != "opportunistic" {
		t.Errorf("off.test: %+v", r)
	}
	for _, rcpt := range []string{"u@enfbad.test", "u@nomatch.test"} {
		for ip := range sinks {
			if got, _ := received(ip, rcpt); got {
				t.Errorf("%s delivered to %s under an enforced policy", rcpt, ip)
			}
		}
	}
	if got, _ := received(stsNoTLSIP, "u@enf.test"); got {
		t.Error("enf.test delivered to mx.notls.test")
	}
	text := scrapeText(e.metrics)
	if v := sample(text, `gannet_mta_sts_policy_fetches_total{result="ok"}`); v != "4" {
		t.Errorf("policy fetches ok = %s, want 4", v)
	}
	if v := sample(text, `gannet_tls_failures_total{policy="sts",result_type="certificate-host-mismatch"}`); v == "0" || v == "" {
		t.Errorf("gannet_tls_failures_total{policy=\"sts\",result_type=\"certificate-host-mismatch\"} = %q", v)
	}
	for d, want := range map[string]int{"enf.test": 1, "enfbad.test": 1, "nomatch.test": 1, "tst.test": 1, "off.test": 0} {
		if n := ps.count(d); n != want {
			t.Errorf("%s fetched %d times, want %d", d, n, want)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "spool", "mta-sts", mtasts.CacheFile)); err != nil {
		t.Errorf("policy cache file: %v", err)
	}

	// A restart: the cached policy is used, not fetched again.
	stop(e)
	e = start()
	defer func() { stop(e) }()
	send(e, "v@enf.test")
	if r = outcome("v@enf.test"); r.Type != logrec.Delivery || r.TLSPolicy != "sts-enforce" || r.PeerAddress.Name != "mx.good.test" {
		t.Errorf("after restart: %+v", r)
	}
	if n := ps.count("enf.test"); n != 1 {
		t.Errorf("enf.test fetched %d times across a restart, want 1", n)
	}

	// A new id: fetched again, and the new policy (no longer naming
	// mx.good.test) holds.
	ps.set("enf.test", "version: STSv1\nmode: enforce\nmx: *.elsewhere.test\nmax_age: 86400\n")
	ids["enf"] = "2"
	if err := dns.SetZone(stsZone(ids)); err != nil {
		t.Fatal(err)
	}
	time.Sleep(5500 * time.Millisecond) // the resolver keeps answers at least 5 s (MinTTL)
	send(e, "w@enf.test")
	r = outcome("w@enf.test")
	if r.Type != logrec.TransientFailure || r.Response.EnhancedCode != "4.7.5" || !strings.Contains(r.Response.Content, "does not match the policy of enf.test") {
		t.Errorf("after the id change: %+v", r)
	}
	if n := ps.count("enf.test"); n != 2 {
		t.Errorf("enf.test fetched %d times after the id change, want 2", n)
	}
}

// pemKey returns the private key of a test certificate as PEM.
func pemKey(t testing.TB, c tls.Certificate) []byte {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(c.PrivateKey)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
}
