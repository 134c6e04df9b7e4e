package dnstest

import (
	"testing"
	"time"

	"github.com/miekg/dns"
)

const zoneText = `
$ORIGIN example.test.
$TTL 300
@        IN SOA ns hostmaster 1 3600 600 86400 60
@        IN MX  10 mx
mx       IN A   127.0.0.2
www      IN CNAME mx
deep.ent IN A   127.0.0.3
`

func ask(t *testing.T, addr, name string, qtype uint16, network string) *dns.Msg {
	t.Helper()
	c := dns.Client{Net: network, Timeout: 2 * time.Second}
	q := new(dns.Msg)
	q.SetQuestion(name, qtype)
	resp, _, err := c.Exchange(q, addr)
	if err != nil {
		t.Fatalf("%s %s over %s: %v", name, dns.TypeToString[qtype], network, err)
	}
	return resp
}

func TestServerAnswers(t *testing.T) {
	s := NewServer(t, zoneText)
	for _, network := range []string{"udp", "tcp"} {
		r := ask(t, s.Addr, "EXAMPLE.test.", dns.TypeMX, network)
		if r.Rcode != dns.RcodeSuccess || len(r.Answer) != 1 || r.Answer[0].(*dns.MX).Mx != "mx.example.test." {
			t.Fatalf("%s: MX answer %v", network, r)
		}
	}
	r := ask(t, s.Addr, "www.example.test.", dns.TypeA, "udp")
	if len(r.Answer) != 2 || r.Answer[0].Header().Rrtype != dns.TypeCNAME || r.Answer[1].(*dns.A).A.String() != "127.0.0.2" {
		t.Fatalf("CNAME chase: %v", r)
	}
	r = ask(t, s.Addr, "nothing.example.test.", dns.TypeA, "udp")
	if r.Rcode != dns.RcodeNameError || len(r.Ns) != 1 || r.Ns[0].Header().Rrtype != dns.TypeSOA {
		t.Fatalf("NXDOMAIN: %v", r)
	}
	r = ask(t, s.Addr, "mx.example.test.", dns.TypeAAAA, "udp")
	if r.Rcode != dns.RcodeSuccess || len(r.Answer) != 0 || len(r.Ns) != 1 {
		t.Fatalf("NODATA: %v", r)
	}
	r = ask(t, s.Addr, "ent.example.test.", dns.TypeA, "udp")
	if r.Rcode != dns.RcodeSuccess || len(r.Answer) != 0 {
		t.Fatalf("empty non-terminal must be NODATA: %v", r)
	}
	r = ask(t, s.Addr, "other.invalid.", dns.TypeA, "udp")
	if r.Rcode != dns.RcodeRefused {
		t.Fatalf("outside the zone: %v", r)
	}
	if n := s.QueryCount("example.test", dns.TypeMX); n != 2 {
		t.Fatalf("QueryCount = %d, want 2", n)
	}
}

func TestServerMisbehaves(t *testing.T) {
	s := NewServer(t, zoneText)
	s.Fail("mx.example.test")
	if r := ask(t, s.Addr, "mx.example.test.", dns.TypeA, "udp"); r.Rcode != dns.RcodeServerFailure {
		t.Fatalf("Fail: %v", r)
	}
	s.Heal("mx.example.test")
	s.Truncate("mx.example.test")
	if r := ask(t, s.Addr, "mx.example.test.", dns.TypeA, "udp"); !r.Truncated || len(r.Answer) != 0 {
		t.Fatalf("Truncate over UDP: %v", r)
	}
	if r := ask(t, s.Addr, "mx.example.test.", dns.TypeA, "tcp"); r.Truncated || len(r.Answer) != 1 {
		t.Fatalf("Truncate over TCP: %v", r)
	}
	s.Heal("mx.example.test")
	s.Delay("mx.example.test", 100*time.Millisecond)
	start := time.Now()
	ask(t, s.Addr, "mx.example.test.", dns.TypeA, "udp")
	if time.Since(start) < 100*time.Millisecond {
		t.Fatal("Delay did not delay")
	}
	s.Hang("mx.example.test")
	c := dns.Client{Timeout: 100 * time.Millisecond}
	q := new(dns.Msg)
	q.SetQuestion("mx.example.test.", dns.TypeA)
	if _, _, err := c.Exchange(q, s.Addr); err == nil {
		t.Fatal("Hang answered")
	}
	if err := s.SetZone("$ORIGIN example.test.\n@ 60 IN SOA ns hm 1 1 1 1 1\nnew 60 IN A 127.0.0.9\n"); err != nil {
		t.Fatal(err)
	}
	if r := ask(t, s.Addr, "new.example.test.", dns.TypeA, "tcp"); len(r.Answer) != 1 {
		t.Fatalf("SetZone: %v", r)
	}
	if err := s.SetZone("bad zone line"); err == nil {
		t.Fatal("SetZone accepted bad text")
	}
}

func TestServerCloseStops(t *testing.T) {
	s, err := Start(zoneText)
	if err != nil {
		t.Fatal(err)
	}
	s.Hang("mx.example.test") // a held query must not block Close
	go func() {
		c := dns.Client{Timeout: time.Second}
		q := new(dns.Msg)
		q.SetQuestion("mx.example.test.", dns.TypeA)
		c.Exchange(q, s.Addr)
	}()
	time.Sleep(50 * time.Millisecond)
	done := make(chan struct{})
	go func() { s.Close(); s.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Close blocked")
	}
	c := dns.Client{Timeout: 200 * time.Millisecond, Net: "tcp"}
	q := new(dns.Msg)
	q.SetQuestion("example.test.", dns.TypeMX)
	if _, _, err := c.Exchange(q, s.Addr); err == nil {
		t.Fatal("server still answers after Close")
	}
}

func TestStartRejectsBadZone(t *testing.T) {
	if _, err := Start("$ORIGIN x.test.\n@ IN MX notanumber host\n"); err == nil {
		t.Fatal("bad zone accepted")
	}
}
