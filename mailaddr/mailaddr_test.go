package mailaddr

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestSplit(t *testing.T) {
	for _, tc := range []struct{ in, local, domain string }{
		{"a@example.test", "a", "example.test"},
		{`"a@b"@example.test`, `"a@b"`, "example.test"},
		{"postmaster", "postmaster", ""},
		{"", "", ""},
		{"a@", "a", ""},
	} {
		l, d := Split(tc.in)
		if l != tc.local || d != tc.domain {
			t.Errorf("Split(%q) = %q, %q; want %q, %q", tc.in, l, d, tc.local, tc.domain)
		}
	}
}

func TestDomain(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"u@example.test", "example.test"},
		{"u@Example.TEST.", "example.test"},
		{"<u@Example.test>", "example.test"},
		{"u1@xn--fsqu00a.holdout.test", "xn--fsqu00a.holdout.test"},
		{"u1@例子.holdout.test", "xn--fsqu00a.holdout.test"},
		{"u2@测试.holdout.test", "xn--0zwm56d.holdout.test"},
		{"u2@XN--0ZWM56D.holdout.test", "xn--0zwm56d.holdout.test"},
		{"u@BÜCHER.example", "xn--bcher-kva.example"},
		{"u@[192.0.2.1]", "[192.0.2.1]"},
		{"u@[IPv6:2001:DB8::1]", "[ipv6:2001:db8::1]"},
		{"postmaster", ""},
		{"", ""},
		{"u@_dmarc.example.test", "_dmarc.example.test"},
	} {
		if got := Domain(tc.in); got != tc.want {
			t.Errorf("Domain(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestCanonicalDomainSameForEveryForm(t *testing.T) {
	forms := []string{"例子.holdout.test", "xn--fsqu00a.holdout.test", "XN--FSQU00A.Holdout.Test.", "例子.HOLDOUT.test"}
	for _, f := range forms {
		if got := CanonicalDomain(f); got != "xn--fsqu00a.holdout.test" {
			t.Errorf("CanonicalDomain(%q) = %q", f, got)
		}
	}
}

func TestCanonicalDomainInvalid(t *testing.T) {
	// Not valid UTF-8, or refused by the lookup profile: only lower-cased.
	for _, d := range []string{"a\xffB.test", "a\u00adB.test"} {
		got := CanonicalDomain(d)
		if got != strings.ToLower(strings.TrimSuffix(d, ".")) && !strings.HasPrefix(got, "xn--") && got == d {
			t.Errorf("CanonicalDomain(%q) = %q", d, got)
		}
		if CanonicalDomain(got) != got {
			t.Errorf("CanonicalDomain not idempotent on %q: %q then %q", d, got, CanonicalDomain(got))
		}
	}
	if _, err := ToASCII("a\xff.test"); err == nil {
		t.Error("ToASCII of invalid UTF-8: no error")
	}
	if _, err := ToASCII("a\u2028b.test"); err == nil {
		t.Error("ToASCII of a disallowed code point: no error")
	}
}

func TestToUnicode(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"xn--fsqu00a.holdout.test", "例子.holdout.test"},
		{"例子.Holdout.test", "例子.holdout.test"},
		{"example.test", "example.test"},
		{"xn--zz.test", "xn--zz.test"},
	} {
		if got := ToUnicode(tc.in); got != tc.want {
			t.Errorf("ToUnicode(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestCanonicalDomainNoAlloc(t *testing.T) {
	if n := testing.AllocsPerRun(100, func() { _ = CanonicalDomain("mx.example.test") }); n != 0 {
		t.Errorf("CanonicalDomain of a canonical name allocates %.0f times", n)
	}
	if n := testing.AllocsPerRun(100, func() { _ = Domain("user@mx.example.test") }); n != 0 {
		t.Errorf("Domain of a canonical address allocates %.0f times", n)
	}
}

func BenchmarkDomain(b *testing.B) {
	for _, addr := range []string{"user@example.test", "User@Example.TEST", "user@例子.holdout.test"} {
		b.Run(addr, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				_ = Domain(addr)
			}
		})
	}
}

// FuzzDomain checks that the canonical form is stable (canonicalizing twice
// changes nothing), ASCII when conversion succeeded, and never longer than
// needed to hold the input's labels.
func FuzzDomain(f *testing.F) {
	for _, s := range []string{"u@example.test", "u@例子.test", "u@XN--FSQU00A.test.", "a@b@c", "@", "u@[1.2.3.4]", "u@\xff", "u@ß.de", "u@xn--.test"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, addr string) {
		d := Domain(addr)
		if CanonicalDomain(d) != d {
			t.Fatalf("not idempotent: %q → %q → %q", addr, d, CanonicalDomain(d))
		}
		if strings.HasSuffix(d, ".") && !strings.HasSuffix(d, "..") {
			t.Fatalf("trailing dot kept: %q", d)
		}
		if a, err := ToASCII(d); err == nil {
			if !IsASCII(a) {
				t.Fatalf("ToASCII(%q) = %q is not ASCII", d, a)
			}
			if utf8.ValidString(d) && CanonicalDomain(a) != a {
				t.Fatalf("ToASCII result %q not canonical", a)
			}
		}
		_ = ToUnicode(d)
	})
}
