package resolver

import (
	"errors"
	"testing"

	"github.com/miekg/dns"
)

func rr(t testing.TB, s string) dns.RR {
	t.Helper()
	r, err := dns.NewRR(s)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func response(t testing.TB, qname string, qtype uint16, rcode int, answer, ns []string) *dns.Msg {
	m := new(dns.Msg)
	m.SetQuestion(qname, qtype)
	m.Response = true
	m.Rcode = rcode
	for _, s := range answer {
		m.Answer = append(m.Answer, rr(t, s))
	}
	for _, s := range ns {
		m.Ns = append(m.Ns, rr(t, s))
	}
	return m
}

const soa = "test. 300 IN SOA ns.test. hm.test. 1 3600 600 86400 60"

func TestParseResponse(t *testing.T) {
	tests := []struct {
		name    string
		msg     *dns.Msg
		qtype   uint16
		outcome outcome
		ttl     uint32
		next    string
		err     error
		n       int // records kept
	}{
		{name: "mx", qtype: dns.TypeMX, msg: response(t, "a.test.", dns.TypeMX, 0,
			[]string{"a.test. 300 IN MX 10 MX.A.test.", "a.test. 100 IN MX 20 mx2.a.test."}, nil),
			outcome: outcomeAnswer, ttl: 100, n: 2},
		{name: "unrelated records ignored", qtype: dns.TypeA, msg: response(t, "a.test.", dns.TypeA, 0,
			[]string{"a.test. 300 IN A 192.0.2.1", "evil.test. 5 IN A 192.0.2.66", "a.test. 5 IN AAAA ::1"}, nil),
			outcome: outcomeAnswer, ttl: 300, n: 1},
		{name: "cname chain ttl", qtype: dns.TypeA, msg: response(t, "a.test.", dns.TypeA, 0,
			[]string{"a.test. 30 IN CNAME b.test.", "b.test. 300 IN CNAME c.test.", "c.test. 600 IN A 192.0.2.1"}, nil),
			outcome: outcomeAnswer, ttl: 30, n: 1},
		{name: "nxdomain with soa", qtype: dns.TypeMX, msg: response(t, "a.test.", dns.TypeMX, dns.RcodeNameError, nil, []string{soa}),
			outcome: outcomeNXDomain, ttl: 60},
		{name: "nodata soa ttl below minimum", qtype: dns.TypeMX, msg: response(t, "a.test.", dns.TypeMX, 0, nil,
			[]string{"test. 20 IN SOA ns.test. hm.test. 1 3600 600 86400 60"}),
			outcome: outcomeNoData, ttl: 20},
		{name: "nodata without soa", qtype: dns.TypeMX, msg: response(t, "a.test.", dns.TypeMX, 0, nil, nil),
			outcome: outcomeNoData, ttl: noTTL},
		{name: "unfinished chain", qtype: dns.TypeMX, msg: response(t, "a.test.", dns.TypeMX, 0,
			[]string{"a.test. 30 IN CNAME Elsewhere.example."}, nil),
			next: "elsewhere.example.", ttl: 30},
		{name: "chain ends in nxdomain", qtype: dns.TypeMX, msg: response(t, "a.test.", dns.TypeMX, dns.RcodeNameError,
			[]string{"a.test. 30 IN CNAME b.test."}, []string{soa}),
			outcome: outcomeNXDomain, ttl: 30},
		{name: "loop", qtype: dns.TypeA, msg: response(t, "a.test.", dns.TypeA, 0,
			[]string{"a.test. 30 IN CNAME b.test.", "b.test. 30 IN CNAME a.test."}, nil), err: ErrCNAMELoop},
		{name: "self loop", qtype: dns.TypeA, msg: response(t, "a.test.", dns.TypeA, 0,
			[]string{"a.test. 30 IN CNAME a.test."}, nil), err: ErrCNAMELoop},
		{name: "servfail", qtype: dns.TypeA, msg: response(t, "a.test.", dns.TypeA, dns.RcodeServerFailure, nil, nil), err: ErrServerFailure},
		{name: "refused", qtype: dns.TypeA, msg: response(t, "a.test.", dns.TypeA, dns.RcodeRefused, nil, nil), err: ErrRefused},
		{name: "notimp", qtype: dns.TypeA, msg: response(t, "a.test.", dns.TypeA, dns.RcodeNotImplemented, nil, nil), err: ErrBadResponse},
		{name: "wrong question", qtype: dns.TypeA, msg: response(t, "b.test.", dns.TypeA, 0, nil, nil), err: ErrBadResponse},
		{name: "wrong type", qtype: dns.TypeAAAA, msg: response(t, "a.test.", dns.TypeA, 0, nil, nil), err: ErrBadResponse},
		{name: "unspecified address dropped", qtype: dns.TypeA, msg: response(t, "a.test.", dns.TypeA, 0,
			[]string{"a.test. 300 IN A 0.0.0.0", "a.test. 300 IN A 192.0.2.1", "a.test. 300 IN A 192.0.2.1"}, nil),
			outcome: outcomeAnswer, ttl: 300, n: 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a, next, err := parseResponse("a.test.", tc.qtype, tc.msg)
			if tc.err != nil {
				if !errors.Is(err, tc.err) {
					t.Fatalf("err = %v, want %v", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if next != tc.next || a.ttl != tc.ttl || (next == "" && a.outcome != tc.outcome) || len(a.mx)+len(a.addrs) != tc.n {
				t.Fatalf("got outcome %d ttl %d next %q records %d; want %d %d %q %d",
					a.outcome, a.ttl, next, len(a.mx)+len(a.addrs), tc.outcome, tc.ttl, tc.next, tc.n)
			}
		})
	}
}

func TestParseResponseMXNames(t *testing.T) {
	m := response(t, "a.test.", dns.TypeMX, 0, []string{"a.test. 300 IN MX 10 MX.A.test.", "a.test. 300 IN MX 0 ."}, nil)
	a, _, err := parseResponse("a.test.", dns.TypeMX, m)
	if err != nil {
		t.Fatal(err)
	}
	if a.mx[0] != (mxRecord{host: "mx.a.test", pref: 10}) || a.mx[1] != (mxRecord{host: "", pref: 0}) {
		t.Fatalf("mx = %+v", a.mx)
	}
}

func TestParseResponseNil(t *testing.T) {
	if _, _, err := parseResponse("a.test.", dns.TypeA, nil); !errors.Is(err, ErrBadResponse) {
		t.Fatal(err)
	}
	q := new(dns.Msg)
	q.SetQuestion("a.test.", dns.TypeA) // a query, not a response
	if _, _, err := parseResponse("a.test.", dns.TypeA, q); !errors.Is(err, ErrBadResponse) {
		t.Fatal(err)
	}
}

// FuzzParseResponse feeds arbitrary bytes, as a server or an attacker on the
// path could send them, through unpacking and answer processing: nothing
// may panic, and every answer kept must belong to the question asked.
func FuzzParseResponse(f *testing.F) {
	seeds := []*dns.Msg{
		response(f, "a.test.", dns.TypeMX, 0, []string{"a.test. 300 IN MX 10 mx.a.test.", "a.test. 300 IN MX 0 ."}, nil),
		response(f, "a.test.", dns.TypeA, 0, []string{"a.test. 30 IN CNAME b.test.", "b.test. 300 IN A 192.0.2.1"}, nil),
		response(f, "a.test.", dns.TypeAAAA, 0, []string{"a.test. 30 IN AAAA 2001:db8::1"}, nil),
		response(f, "a.test.", dns.TypeMX, dns.RcodeNameError, nil, []string{soa}),
		response(f, "a.test.", dns.TypeA, 0, []string{"a.test. 30 IN CNAME b.test.", "b.test. 30 IN CNAME a.test."}, nil),
		response(f, "a.test.", dns.TypeMX, 0, []string{"a.test. 30 IN CNAME other.example."}, nil),
		response(f, "a.test.", dns.TypeTLSA, 0, []string{"a.test. 30 IN TLSA 3 1 1 0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f20"}, nil),
	}
	for _, m := range seeds {
		b, err := m.Pack()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte{})
	f.Add([]byte{0, 0, 0x81, 0x80, 0, 1, 0, 1, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		m := new(dns.Msg)
		if err := m.Unpack(b); err != nil {
			return
		}
		for _, qtype := range []uint16{dns.TypeMX, dns.TypeA, dns.TypeAAAA, dns.TypeTLSA} {
			qname := "a.test."
			if len(m.Question) == 1 {
				qname = m.Question[0].Name
			}
			a, _, err := parseResponse(qname, qtype, m)
			if err != nil {
				continue
			}
			if qtype != dns.TypeMX && len(a.mx) > 0 {
				t.Fatalf("MX records kept for type %d", qtype)
			}
			for _, ip := range a.addrs {
				if qtype == dns.TypeA && !ip.Is4() || qtype == dns.TypeAAAA && !ip.Is6() || ip.IsUnspecified() {
					t.Fatalf("address %v kept for type %d", ip, qtype)
				}
			}
		}
	})
}
