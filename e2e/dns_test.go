package e2e

import (
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// The test zone. Every domain a test mails to is here; anything else under
// .test is NXDOMAIN (dnsmasq --local=/test/).
const (
	domain1    = "d1.test"     // MX 10 mx.d1.test → 127.0.0.2
	domain2    = "d2.test"     // MX 10 mx.d2.test → 127.0.0.3
	domain3    = "d3.test"     // MX 10 mx.d3.test → 127.0.0.4
	domainNull = "nullmx.test" // MX 0 . (RFC 7505 null MX)
	domainNX   = "nx.test"     // NXDOMAIN
	// Two internationalized domains, stored in the zone as A-labels and
	// served by mx.d1.test: 例子.holdout.test and 测试.holdout.test.
	domainIDN1  = "xn--fsqu00a.holdout.test"
	domainIDN2  = "xn--0zwm56d.holdout.test"
	mxIP1       = "127.0.0.2"
	mxIP2       = "127.0.0.3"
	mxIP3       = "127.0.0.4"
	foreignIP   = "127.0.0.9" // a client address outside relay_hosts
	senderAddr  = "sender@src.test"
	dnsStartMax = 5 * time.Second
)

// zoneMX maps each mail domain of the test zone to its MX host and address.
var zoneMX = []struct{ domain, host, ip string }{
	{domain1, "mx.d1.test", mxIP1},
	{domain2, "mx.d2.test", mxIP2},
	{domain3, "mx.d3.test", mxIP3},
}

// testDNS is a dnsmasq serving the test zone on 127.0.0.1.
type testDNS struct {
	Addr string // "127.0.0.1:port", for [resolver] nameservers
	p    *proc
}

// startDNS starts dnsmasq with the test zone and waits until it answers.
// dnsmasq reads no config file, no /etc/hosts and no resolv.conf, forwards
// nothing, and binds only 127.0.0.1:<free port>.
func startDNS(t testing.TB) *testDNS {
	t.Helper()
	return startDNSAt(t, "127.0.0.1", 0)
}

// startDNSAt is startDNS on ip:port (port 0: a free one) with more dnsmasq
// options, e.g. "--txt-record=NAME,STRING,STRING" for DKIM keys (each
// STRING one DNS character-string of at most 255 bytes; no quotes).
func startDNSAt(t testing.TB, ip string, port int, extra ...string) *testDNS {
	t.Helper()
	bin := needExecutable(t, "/usr/sbin/dnsmasq", "dnsmasq-base")
	if port == 0 {
		port = freePort(t, true, ip)
	}
	args := []string{
		"--conf-file=/dev/null", "--no-daemon", "--no-resolv", "--no-hosts", "--no-poll",
		"--user=root", "--pid-file=", "--log-facility=-",
		fmt.Sprintf("--port=%d", port), "--listen-address=" + ip, "--bind-interfaces",
		"--local=/test/",
	}
	args = append(args, extra...)
	for _, z := range zoneMX {
		args = append(args,
			fmt.Sprintf("--mx-host=%s,%s,10", z.domain, z.host),
			fmt.Sprintf("--host-record=%s,%s", z.host, z.ip))
	}
	for _, d := range []string{domainIDN1, domainIDN2} {
		args = append(args, fmt.Sprintf("--mx-host=%s,mx.d1.test,10", d))
	}
	// A null MX is "MX 0 ." (RFC 7505 §3); dnsmasq's --mx-host cannot name the
	// root, so the record is given as raw RDATA: preference 0x0000, root 0x00.
	args = append(args, "--dns-rr="+domainNull+",15,000000")
	d := &testDNS{Addr: hostPort(ip, port)}
	d.p = startProc(t, bin, args...)
	deadline := time.Now().Add(dnsStartMax)
	for {
		if d.p.exited() {
			t.Fatalf("dnsmasq exited: %v\n%s", d.p.err, d.p.out.String())
		}
		if r, err := d.query(domain1, dns.TypeMX); err == nil && len(r.Answer) > 0 {
			return d
		}
		if time.Now().After(deadline) {
			t.Fatalf("dnsmasq on %s did not answer within %v\n%s", d.Addr, dnsStartMax, d.p.out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// query asks the test DNS server one question over UDP.
func (d *testDNS) query(name string, qtype uint16) (*dns.Msg, error) {
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), qtype)
	c := &dns.Client{Net: "udp", Timeout: 500 * time.Millisecond}
	r, _, err := c.Exchange(m, d.Addr)
	return r, err
}

// receiverIPs are the MX addresses of the three mail domains.
var receiverIPs = []string{mxIP1, mxIP2, mxIP3}

// receiverPort picks the one [delivery] smtp_port that is free on every MX
// address, so that a receiver can run on each of them.
func receiverPort(t testing.TB) int {
	t.Helper()
	return freePort(t, false, receiverIPs...)
}

// checkLoopbackAlias fails when ip cannot be bound (127.0.0.0/8 is normally
// all on lo on Linux).
func checkLoopbackAlias(t testing.TB, ip string) {
	t.Helper()
	l, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
	if err != nil {
		t.Fatalf("cannot bind %s: %v (the e2e tests need all of 127.0.0.0/8 on loopback)", ip, err)
	}
	l.Close()
}
