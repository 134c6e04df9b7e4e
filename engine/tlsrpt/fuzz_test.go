package tlsrpt

import (
	"strings"
	"testing"
)

// FuzzTLSRPTRecord: the TXT parser never panics, and what it accepts has
// between 1 and MaxRUA mailto:/https: addresses that re-parse.
func FuzzTLSRPTRecord(f *testing.F) {
	for _, s := range []string{
		"v=TLSRPTv1; rua=mailto:reports@example.com",
		"v=TLSRPTv1;rua=https://reporting.example.com/v1/tlsrpt",
		"v=TLSRPTv1; rua=mailto:a@b.test , https://x.test/r; ext=1;",
		"v=TLSRPTv1; rua=mailto:%61@b.test",
		"v=TLSRPTv1;;",
		"v=TLSRPTv1; rua=,",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := ParseRecord(s)
		if err != nil {
			return
		}
		if len(r.RUA) == 0 || len(r.RUA) > MaxRUA {
			t.Fatalf("%q: %d addresses", s, len(r.RUA))
		}
		for _, u := range r.RUA {
			if !strings.HasPrefix(strings.ToLower(u), "mailto:") && !strings.HasPrefix(strings.ToLower(u), "https:") {
				t.Fatalf("%q: address %q", s, u)
			}
			if _, err := ParseRecord("v=TLSRPTv1; rua=" + u); err != nil {
				t.Fatalf("%q: address %q does not re-parse: %v", s, u, err)
			}
		}
		SelectRecord([]string{s, "x"})
	})
}
