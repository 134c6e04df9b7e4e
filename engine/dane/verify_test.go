package dane

import (
	"crypto/x509"
	"errors"
	"fmt"
	"testing"
	"time"
)

func TestUsable(t *testing.T) {
	d32, d64 := make([]byte, 32), make([]byte, 64)
	for _, tc := range []struct {
		r    Record
		want bool
	}{
		{Record{3, 1, 1, d32}, true},
		{Record{3, 0, 1, d32}, true},
		{Record{2, 0, 2, d64}, true},
		{Record{2, 1, 0, []byte{0x30}}, true},
		{Record{0, 1, 1, d32}, false}, // PKIX-TA: unusable for SMTP (RFC 7672 §3.1.3)
		{Record{1, 1, 1, d32}, false}, // PKIX-EE
		{Record{4, 1, 1, d32}, false}, // unknown usage
		{Record{3, 2, 1, d32}, false}, // unknown selector
		{Record{3, 1, 3, d32}, false}, // unknown matching type
		{Record{3, 1, 1, d64}, false}, // SHA-256 of the wrong length
		{Record{3, 1, 2, d32}, false}, // SHA-512 of the wrong length
		{Record{3, 1, 0, nil}, false}, // empty full data
	} {
		if got := Usable(tc.r); got != tc.want {
			t.Errorf("Usable(%v) = %v, want %v", tc.r, got, tc.want)
		}
	}
	if got := UsableRecords([]Record{{0, 1, 1, d32}, {3, 1, 1, d32}}); len(got) != 1 || got[0].Usage != 3 {
		t.Errorf("UsableRecords = %v", got)
	}
}

// TestVerify covers both selectors and all matching types for DANE-EE and
// DANE-TA, and the failures Verify names.
func TestVerify(t *testing.T) {
	day := 24 * time.Hour
	from, to := testNow.Add(-day), testNow.Add(30*day)
	ca := makeCert(t, nil, true, from, to)
	inter := makeCert(t, ca, true, from, to)
	mxName := "mx.example.test"
	leaf := makeCert(t, inter, false, from, to, mxName)
	wild := makeCert(t, inter, false, from, to, "*.example.test")
	other := makeCert(t, inter, false, from, to, "other.example.test")
	expired := makeCert(t, inter, false, testNow.Add(-10*day), testNow.Add(-day), mxName)
	// A self-signed, expired certificate for another name: DANE-EE does not
	// care (RFC 7672 §3.1.1).
	selfOld := makeCert(t, nil, false, testNow.Add(-10*day), testNow.Add(-day), "unrelated.invalid")
	stranger := makeCert(t, nil, true, from, to)

	chain := []*x509.Certificate{leaf.cert, inter.cert, ca.cert}
	names := []string{mxName}

	type tcase struct {
		name  string
		rs    []Record
		chain []*x509.Certificate
		names []string
		want  error // nil: authenticated
	}
	var cases []tcase
	for _, sel := range []uint8{SelectorCert, SelectorSPKI} {
		for _, mt := range []uint8{MatchFull, MatchSHA256, MatchSHA512} {
			cases = append(cases,
				tcase{fmt.Sprintf("EE %d %d leaf", sel, mt), []Record{tlsa(3, sel, mt, leaf.cert)}, chain, names, nil},
				tcase{fmt.Sprintf("EE %d %d self-signed expired other name", sel, mt), []Record{tlsa(3, sel, mt, selfOld.cert)}, []*x509.Certificate{selfOld.cert}, names, nil},
				tcase{fmt.Sprintf("EE %d %d other cert", sel, mt), []Record{tlsa(3, sel, mt, other.cert)}, chain, names, ErrNoMatch},
				tcase{fmt.Sprintf("EE %d %d matching the CA only", sel, mt), []Record{tlsa(3, sel, mt, ca.cert)}, chain, names, ErrNoMatch},
				tcase{fmt.Sprintf("TA %d %d root", sel, mt), []Record{tlsa(2, sel, mt, ca.cert)}, chain, names, nil},
				tcase{fmt.Sprintf("TA %d %d intermediate", sel, mt), []Record{tlsa(2, sel, mt, inter.cert)}, chain, names, nil},
				tcase{fmt.Sprintf("TA %d %d stranger", sel, mt), []Record{tlsa(2, sel, mt, stranger.cert)}, chain, names, ErrNoMatch},
				tcase{fmt.Sprintf("PKIX-EE %d %d unusable", sel, mt), []Record{tlsa(1, sel, mt, leaf.cert)}, chain, names, ErrNoUsableRecord},
				tcase{fmt.Sprintf("PKIX-TA %d %d unusable", sel, mt), []Record{tlsa(0, sel, mt, ca.cert)}, chain, names, ErrNoUsableRecord},
			)
		}
	}
	cases = append(cases,
		tcase{"TA wrong name", []Record{tlsa(2, 1, 1, ca.cert)}, []*x509.Certificate{other.cert, inter.cert, ca.cert}, names, ErrName},
		tcase{"TA wildcard", []Record{tlsa(2, 1, 1, ca.cert)}, []*x509.Certificate{wild.cert, inter.cert, ca.cert}, names, nil},
		tcase{"TA wildcard not two labels", []Record{tlsa(2, 1, 1, ca.cert)}, []*x509.Certificate{wild.cert, inter.cert, ca.cert}, []string{"a.mx.example.test"}, ErrName},
		tcase{"TA second reference name", []Record{tlsa(2, 1, 1, ca.cert)}, []*x509.Certificate{other.cert, inter.cert, ca.cert}, []string{mxName, "other.example.test."}, nil},
		tcase{"TA expired leaf", []Record{tlsa(2, 1, 1, ca.cert)}, []*x509.Certificate{expired.cert, inter.cert, ca.cert}, names, ErrChain},
		tcase{"TA chain missing the intermediate", []Record{tlsa(2, 1, 1, ca.cert)}, []*x509.Certificate{leaf.cert, ca.cert}, names, ErrChain},
		tcase{"TA not in the chain", []Record{tlsa(2, 1, 1, ca.cert)}, []*x509.Certificate{leaf.cert, inter.cert}, names, ErrNoMatch},
		tcase{"EE and TA, EE matches", []Record{tlsa(2, 1, 1, stranger.cert), tlsa(3, 1, 1, leaf.cert)}, chain, names, nil},
		tcase{"unusable and usable, the usable matches", []Record{tlsa(1, 1, 1, other.cert), tlsa(3, 0, 2, leaf.cert)}, chain, names, nil},
		tcase{"no certificate", []Record{tlsa(3, 1, 1, leaf.cert)}, nil, names, ErrNoCertificate},
		tcase{"no records", nil, chain, names, ErrNoUsableRecord},
		tcase{"corrupt digest", []Record{{3, 1, 1, make([]byte, 32)}}, chain, names, ErrNoMatch},
	)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := Verify(tc.rs, tc.chain, tc.names, testNow)
			if tc.want == nil {
				if err != nil {
					t.Fatalf("Verify: %v, want success", err)
				}
				return
			}
			if !errors.Is(err, tc.want) {
				t.Fatalf("Verify: %v, want %v", err, tc.want)
			}
		})
	}
}

func TestRecordString(t *testing.T) {
	if got := (Record{3, 1, 1, []byte{0xab, 0x01}}).String(); got != "3 1 1 ab01" {
		t.Errorf("String = %q", got)
	}
}
