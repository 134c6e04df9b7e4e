package dane

import (
	"crypto/x509"
	"testing"
	"time"
)

// FuzzVerify feeds Verify TLSA records made of arbitrary bytes (the
// association data comes from DNS and is untrusted) against a fixed chain
// and a chain made of arbitrary DER: it must never panic, and a success
// must come from a record that really matches.
func FuzzVerify(f *testing.F) {
	from, to := testNow.Add(-time.Hour), testNow.Add(time.Hour)
	ca := makeCert(f, nil, true, from, to)
	leaf := makeCert(f, ca, false, from, to, "mx.example.test")
	for _, r := range []Record{tlsa(3, 1, 1, leaf.cert), tlsa(2, 0, 2, ca.cert), tlsa(3, 0, 0, leaf.cert), {1, 1, 1, make([]byte, 32)}} {
		f.Add(r.Usage, r.Selector, r.MatchingType, r.Data, []byte(nil))
	}
	f.Add(uint8(3), uint8(1), uint8(1), make([]byte, 32), leaf.cert.Raw)
	f.Fuzz(func(t *testing.T, usage, selector, mtype uint8, data, der []byte) {
		rs := []Record{{Usage: usage, Selector: selector, MatchingType: mtype, Data: data}}
		chain := []*x509.Certificate{leaf.cert, ca.cert}
		if c, err := x509.ParseCertificate(der); err == nil {
			chain = []*x509.Certificate{c, ca.cert}
		}
		err := Verify(rs, chain, []string{"mx.example.test"}, testNow)
		if err == nil {
			matched := false
			for _, c := range chain {
				if Matches(rs[0], c) {
					matched = true
				}
			}
			if !matched || !Usable(rs[0]) {
				t.Fatalf("Verify accepted %v, which matches no certificate of the chain", rs[0])
			}
		}
	})
}
