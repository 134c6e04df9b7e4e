package dane

import (
	"crypto/x509"
	"testing"
	"time"
)

// BenchmarkVerify is the per-connection cost of the DANE check once the
// TLSA records are known (a warm resolver cache): the usual published
// records, "3 1 1" and "2 1 1".
func BenchmarkVerify(b *testing.B) {
	from, to := testNow.Add(-time.Hour), testNow.Add(time.Hour)
	ca := makeCert(b, nil, true, from, to)
	leaf := makeCert(b, ca, false, from, to, "mx.example.test")
	chain := []*x509.Certificate{leaf.cert, ca.cert}
	names := []string{"mx.example.test"}
	for _, bc := range []struct {
		name string
		rs   []Record
	}{
		{"DANE-EE-3-1-1", []Record{tlsa(3, 1, 1, leaf.cert)}},
		{"DANE-TA-2-1-1", []Record{tlsa(2, 1, 1, ca.cert)}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if err := Verify(bc.rs, chain, names, testNow); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
