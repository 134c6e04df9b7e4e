package e2e

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// DANE (RFC 7672) end to end with real parts: the zone dane.test is signed
// with ldns-signzone (ldnsutils) and served by nsd with the unsigned zone
// plain.test; unbound validates, with the key of dane.test as its only
// trust anchor, and gannet asks unbound with [resolver] dnssec =
// "trust-ad". The receivers are aiosmtpd with STARTTLS.
const (
	e2eDANEGoodIP  = "127.18.72.2"  // mx.good.dane.test: TLSA 3 1 1 of its key
	e2eDANEBadIP   = "127.18.72.3"  // mx.bad.dane.test: TLSA 3 1 1 of another key
	e2eDANEOpenIP  = "127.18.72.4"  // mx.open.plain.test: insecure zone, TLSA ignored
	e2eDANETAIP    = "127.18.72.5"  // mx.ta.dane.test: TLSA 2 0 1 of the CA that issued its certificate
	e2eDANEBogusIP = "127.18.72.6"  // mx.bogus.dane.test: TLSA changed after signing (bogus)
	e2eDANEUnbound = "127.18.72.53" // the validating resolver
	e2eDANENSD     = "127.18.72.54" // the authoritative server
)

// certSHA256 is the "x 0 1" association data of a DER certificate.
func certSHA256(der []byte) string {
	sum := sha256.Sum256(der)
	return hex.EncodeToString(sum[:])
}

// spkiSHA256 is the "3 1 1" association data of the certificate in PEM file.
func spkiSHA256(t *testing.T, certFile string) string {
	t.Helper()
	b, err := os.ReadFile(certFile)
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		t.Fatalf("%s: no PEM", certFile)
	}
	c, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(c.RawSubjectPublicKeyInfo)
	return hex.EncodeToString(sum[:])
}

// startSignedDNS signs dane.test, serves it and plain.test with nsd, and
// starts unbound in front with the zone's DS as trust anchor. It returns
// unbound's address. Each pair in tamper replaces a string of the signed
// zone (so that the records no longer match their signatures).
func startSignedDNS(t *testing.T, daneZone, plainZone string, tamper ...string) string {
	t.Helper()
	keygen := needExecutable(t, "ldns-keygen", "ldnsutils")
	signzone := needExecutable(t, "ldns-signzone", "ldnsutils")
	nsd := needExecutable(t, "/usr/sbin/nsd", "nsd")
	unbound := needExecutable(t, "/usr/sbin/unbound", "unbound")
	dir := t.TempDir()
	run := func(name string, args ...string) string {
		t.Helper()
		cmd := exec.Command(name, args...)
		cmd.Dir = dir
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%s %v: %v\n%s", name, args, err, out)
		}
		return strings.TrimSpace(string(out))
	}
	os.WriteFile(filepath.Join(dir, "dane.test.zone"), []byte(daneZone), 0o600)
	os.WriteFile(filepath.Join(dir, "plain.test.zone"), []byte(plainZone), 0o600)
	// One ECDSA P-256 key as KSK and ZSK; -n: NSEC3 for the negative answers.
	key := run(keygen, "-a", "ECDSAP256SHA256", "-k", "dane.test")
	run(signzone, "-n", "dane.test.zone", key)
	if len(tamper) > 0 {
		signedPath := filepath.Join(dir, "dane.test.zone.signed")
		signed, err := os.ReadFile(signedPath)
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i+1 < len(tamper); i += 2 {
			if !strings.Contains(string(signed), tamper[i]) {
				t.Fatalf("signed zone has no %q to tamper with:\n%s", tamper[i], signed)
			}
		}
		os.WriteFile(signedPath, []byte(strings.NewReplacer(tamper...).Replace(string(signed))), 0o600)
	}
	ds, err := os.ReadFile(filepath.Join(dir, key+".ds"))
	if err != nil {
		t.Fatal(err)
	}
	anchor := strings.Join(strings.Fields(string(ds)), " ")

	nsdPort := freePort(t, true, e2eDANENSD)
	os.WriteFile(filepath.Join(dir, "nsd.conf"), []byte(fmt.Sprintf(`server:
  ip-address: %s@%d
  do-ip6: no
  username: ""
  chroot: ""
  zonesdir: %q
  pidfile: %q
  database: ""
  xfrdfile: %q
  zonelistfile: %q
  xfrdir: %q
  server-count: 1
  verbosity: 1
remote-control:
  control-enable: no
zone:
  name: dane.test
  zonefile: dane.test.zone.signed
zone:
  name: plain.test
  zonefile: plain.test.zone
`, e2eDANENSD, nsdPort, dir, filepath.Join(dir, "nsd.pid"), filepath.Join(dir, "xfrd.state"), filepath.Join(dir, "zone.list"), dir)), 0o600)
	startProc(t, nsd, "-d", "-c", filepath.Join(dir, "nsd.conf"))

	ubPort := freePort(t, true, e2eDANEUnbound)
	os.WriteFile(filepath.Join(dir, "unbound.conf"), []byte(fmt.Sprintf(`server:
  interface: %s@%d
  do-daemonize: no
  username: ""
  chroot: ""
  directory: %q
  pidfile: %q
  use-syslog: no
  logfile: ""
  verbosity: 1
  val-log-level: 2
  do-ip6: no
  access-control: 127.0.0.0/8 allow
  do-not-query-localhost: no
  module-config: "validator iterator"
  qname-minimisation: no
  root-hints: ""
  # "test." is a locally served zone by default (RFC 6761): let it through.
  local-zone: "test." nodefault
  trust-anchor: %q
stub-zone:
  name: "dane.test"
  stub-addr: %s@%d
stub-zone:
  name: "plain.test"
  stub-addr: %s@%d
`, e2eDANEUnbound, ubPort, dir, filepath.Join(dir, "unbound.pid"), anchor, e2eDANENSD, nsdPort, e2eDANENSD, nsdPort)), 0o600)
	ub := startProc(t, unbound, "-d", "-c", filepath.Join(dir, "unbound.conf"))
	addr := hostPort(e2eDANEUnbound, ubPort)

	// Wait until unbound answers, validated, from nsd.
	deadline := time.Now().Add(15 * time.Second)
	for {
		m := new(dns.Msg)
		m.SetQuestion("good.dane.test.", dns.TypeMX)
		m.AuthenticatedData = true
		m.SetEdns0(1232, true)
		r, _, err := (&dns.Client{Timeout: time.Second}).Exchange(m, addr)
		if err == nil && r.Rcode == dns.RcodeSuccess && r.AuthenticatedData {
			return addr
		}
		if time.Now().After(deadline) {
			t.Fatalf("unbound at %s gives no validated answer (last: %v %v)\n%s", addr, r, err, ub.out.String())
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// TestE2EDANE: a secure MX host with a matching DANE-EE record gets the
// mail over TLS (tls_policy dane) although no CA vouches for its
// certificate; so does one whose DANE-TA record names the CA in the chain
// it presents; a secure MX host whose record matches nothing gets nothing,
// the message stays queued with 451 4.7.5 and the reason; an MX host in an
// insecure zone gets the mail as before (opportunistic), its TLSA record
// ignored; a secure MX host whose TLSA RRset is bogus (unbound answers
// SERVFAIL) gets nothing either (RFC 7672 §2.2). The failed attempts'
// records carry tls_result_type (tlsa-invalid, dnssec-invalid), and the
// day's TLS report of each domain has a "tlsa" policy with the host's
// records and what happened.
func TestE2EDANE(t *testing.T) {
	gannetBinary(t)
	port := freePort(t, false, e2eDANEGoodIP, e2eDANEBadIP, e2eDANEOpenIP, e2eDANETAIP, e2eDANEBogusIP)
	ca := newE2ECA(t) // not trusted by gannet: only DANE can vouch
	goodCert, goodKey, _ := ca.issue(t, "mx.good.dane.test")
	badCert, badKey, _ := ca.issue(t, "mx.bad.dane.test")
	otherCert, _, _ := ca.issue(t, "mx.bad.dane.test")
	openCert, openKey, _ := ca.issue(t, "mx.open.plain.test")
	taCert, taKey, _ := ca.issue(t, "mx.ta.dane.test")
	// DANE-TA: the server presents the trust anchor in its chain (RFC 7672 §3.1.2).
	chainPEM, _ := os.ReadFile(taCert)
	chainPEM = append(chainPEM, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.cert.Raw})...)
	if err := os.WriteFile(taCert, chainPEM, 0o600); err != nil {
		t.Fatal(err)
	}

	daneZone := fmt.Sprintf(`$ORIGIN dane.test.
$TTL 60
@                   IN SOA  ns hostmaster 1 3600 600 86400 60
@                   IN NS   ns
ns                  IN A    %[1]s
good                IN MX   10 mx.good
mx.good             IN A    %[2]s
_%[5]d._tcp.mx.good IN TLSA 3 1 1 %[6]s
bad                 IN MX   10 mx.bad
mx.bad              IN A    %[3]s
_%[5]d._tcp.mx.bad  IN TLSA 3 1 1 %[7]s
ta                  IN MX   10 mx.ta
mx.ta               IN A    %[8]s
_%[5]d._tcp.mx.ta   IN TLSA 2 0 1 %[9]s
bogus               IN MX   10 mx.bogus
mx.bogus            IN A    %[10]s
_%[5]d._tcp.mx.bogus IN TLSA 3 1 2 %[11]s
`, e2eDANENSD, e2eDANEGoodIP, e2eDANEBadIP, e2eDANEOpenIP, port, spkiSHA256(t, goodCert), spkiSHA256(t, otherCert),
		e2eDANETAIP, certSHA256(ca.cert.Raw), e2eDANEBogusIP, strings.Repeat("ab", 64))
	plainZone := fmt.Sprintf(`$ORIGIN plain.test.
$TTL 60
@                   IN SOA  ns hostmaster 1 3600 600 86400 60
@                   IN NS   ns.dane.test.
open                IN MX   10 mx.open
mx.open             IN A    %[1]s
_%[2]d._tcp.mx.open IN TLSA 3 1 1 %[3]s
`, e2eDANEOpenIP, port, spkiSHA256(t, otherCert))
	// The bogus host's TLSA data is changed after signing: its RRSIG no
	// longer verifies.
	resolverAddr := startSignedDNS(t, daneZone, plainZone, strings.Repeat("ab", 64), strings.Repeat("cd", 64))

	good := startAiosmtpd(t, hostPort(e2eDANEGoodIP, port), aioOptions{TLSCert: goodCert, TLSKey: goodKey})
	bad := startAiosmtpd(t, hostPort(e2eDANEBadIP, port), aioOptions{TLSCert: badCert, TLSKey: badKey})
	open := startAiosmtpd(t, hostPort(e2eDANEOpenIP, port), aioOptions{TLSCert: openCert, TLSKey: openKey})
	ta := startAiosmtpd(t, hostPort(e2eDANETAIP, port), aioOptions{TLSCert: taCert, TLSKey: taKey})
	bogus := startAiosmtpd(t, hostPort(e2eDANEBogusIP, port), aioOptions{TLSCert: goodCert, TLSKey: goodKey})

	g := startGannet(t, gannetConfig{DNS: resolverAddr, DNSSEC: "trust-ad", DeliveryPort: port, MaxRetryAge: "1h"})
	idGood := dlvSend(t, g, "a@good.dane.test", "")
	idBad := dlvSend(t, g, "b@bad.dane.test", "")
	idOpen := dlvSend(t, g, "c@open.plain.test", "")
	idTA := dlvSend(t, g, "d@ta.dane.test", "")
	idBogus := dlvSend(t, g, "e@bogus.dane.test", "")

	d := g.WaitRecords(recordFilter{Type: "Delivery", ID: idGood}, 1, deliveryMax)[0]
	if !strings.Contains(d.Raw, `"tls_policy":"dane"`) || d.TLSProtocolVersion == "" || !strings.Contains(string(d.PeerAddress), "mx.good.dane.test") {
		t.Errorf("good.dane.test delivery: %s", d.Raw)
	}
	d = g.WaitRecords(recordFilter{Type: "Delivery", ID: idTA}, 1, deliveryMax)[0]
	if !strings.Contains(d.Raw, `"tls_policy":"dane"`) || d.TLSProtocolVersion == "" || !strings.Contains(string(d.PeerAddress), "mx.ta.dane.test") {
		t.Errorf("ta.dane.test delivery: %s", d.Raw)
	}
	tf := g.WaitRecords(recordFilter{Type: "TransientFailure", ID: idBad}, 2, deliveryMax)
	for _, r := range tf {
		if r.Response.EnhancedCode() != "4.7.5" || !strings.Contains(r.Response.Content, "DANE: no TLSA record matches the certificate of mx.bad.dane.test") ||
			!strings.Contains(r.Raw, `"tls_policy":"dane","tls_result_type":"tlsa-invalid"`) {
			t.Errorf("bad.dane.test attempt: %s", r.Raw)
		}
	}
	r := g.WaitRecords(recordFilter{Type: "TransientFailure", ID: idBogus}, 1, deliveryMax)[0]
	if r.Response.EnhancedCode() != "4.7.5" || !strings.Contains(r.Response.Content, fmt.Sprintf("DANE: TLSA lookup for _%d._tcp.mx.bogus.dane.test failed", port)) ||
		!strings.Contains(r.Raw, `"tls_result_type":"dnssec-invalid"`) {
		t.Errorf("bogus.dane.test attempt: %s", r.Raw)
	}
	d = g.WaitRecords(recordFilter{Type: "Delivery", ID: idOpen}, 1, deliveryMax)[0]
	if !strings.Contains(d.Raw, `"tls_policy":"opportunistic"`) || !strings.Contains(string(d.PeerAddress), "mx.open.plain.test") {
		t.Errorf("open.plain.test delivery: %s", d.Raw)
	}
	time.Sleep(settleTime)
	if n := countRcpts(t, bad); n != 0 {
		t.Errorf("%d recipients at mx.bad.dane.test, whose certificate matches no TLSA record", n)
	}
	if a := good.arrivals(t); len(a) != 1 || !a[0].TLS {
		t.Errorf("mx.good.dane.test: %+v, want one message over TLS", a)
	}
	if n := countRcpts(t, bogus); n != 0 {
		t.Errorf("%d recipients at mx.bogus.dane.test, whose TLSA RRset is bogus", n)
	}
	if a := ta.arrivals(t); len(a) != 1 || !a[0].TLS {
		t.Errorf("mx.ta.dane.test: %+v, want one message over TLS", a)
	}
	if n := countRcpts(t, open); n != 1 {
		t.Errorf("mx.open.plain.test: %d recipients, want 1", n)
	}
	s := scrapeMetrics(t, g.HTTPAddr)
	var n float64
	for _, rt := range []string{"tlsa-invalid", "dnssec-invalid"} {
		n += s.get(t, `gannet_tls_failures_total{policy="dane",result_type="`+rt+`"}`)
	}
	if n < 3 {
		t.Errorf(`gannet_tls_failures_total{policy="dane",result_type="tlsa-invalid"|"dnssec-invalid"} = %v, want ≥ 3`, n)
	}

	// TLS reports: each host under DANE is a "tlsa" policy of its domain,
	// its TLSA records the policy-string and the host the mx-host.
	day := time.Now().UTC().Format("2006-01-02")
	for _, c := range []struct {
		domain, mx, tlsa, result string
	}{
		{"good.dane.test", "mx.good.dane.test", "3 1 1 " + spkiSHA256(t, goodCert), ""},
		{"bad.dane.test", "mx.bad.dane.test", "3 1 1 " + spkiSHA256(t, otherCert), "tlsa-invalid"},
		{"bogus.dane.test", "mx.bogus.dane.test", "", "dnssec-invalid"},
	} {
		var detail struct {
			JSON rptJSON `json:"json"`
		}
		adminCurl(t, g, "GET", "/api/admin/tls-reports/v1?domain="+c.domain+"&day="+day, "").want(t, "show "+c.domain, 200).decode(t, &detail)
		ps := detail.JSON.Policies
		if len(ps) != 1 || ps[0].Policy.Type != "tlsa" || ps[0].Policy.Domain != c.domain || strings.Join(ps[0].Policy.MX, ",") != c.mx ||
			strings.Join(ps[0].Policy.String, ",") != c.tlsa {
			t.Errorf("%s TLS report policies: %+v", c.domain, ps)
			continue
		}
		p := ps[0]
		if c.result == "" {
			if p.Summary.Successful != 1 || p.Summary.Failed != 0 {
				t.Errorf("%s TLS report summary: %+v", c.domain, p.Summary)
			}
		} else if p.Summary.Failed < 1 || len(p.Details) == 0 || p.Details[0].ResultType != c.result || p.Details[0].ReceivingMX != c.mx {
			t.Errorf("%s TLS report: %+v, want %s failures", c.domain, p, c.result)
		}
	}
}
