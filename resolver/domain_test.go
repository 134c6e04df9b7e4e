package resolver

import (
	"errors"
	"net/netip"
	"strings"
	"testing"

	"gannet/mailaddr"
)

func TestNormalizeDomain(t *testing.T) {
	good := map[string]string{
		"Example.TEST.":         "example.test",
		"a-b_c.test":            "a-b_c.test",
		"bücher.test":           "xn--bcher-kva.test",
		"xn--bcher-kva.test":    "xn--bcher-kva.test",
		strings.Repeat("a", 63): strings.Repeat("a", 63),
		"localhost":             "localhost",
	}
	for in, want := range good {
		got, err := normalizeDomain(in)
		if err != nil || got != want {
			t.Errorf("normalizeDomain(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"", ".", "..", "a..b", ".a", "a b", "a/b", "a,b.test", strings.Repeat("a", 64),
		strings.Repeat("abcdefghi.", 26) + "test", "\xff.test"} {
		if got, err := normalizeDomain(in); !errors.Is(err, ErrInvalidDomain) {
			t.Errorf("normalizeDomain(%q) = %q, %v; want ErrInvalidDomain", in, got, err)
		}
	}
}

func TestParseAddressLiteral(t *testing.T) {
	good := map[string]string{"[192.0.2.1]": "192.0.2.1", "[IPv6:2001:db8::1]": "2001:db8::1", "[ipv6:::1]": "::1"}
	for in, want := range good {
		ip, ok := parseAddressLiteral(in)
		if !ok || ip != netip.MustParseAddr(want) {
			t.Errorf("parseAddressLiteral(%q) = %v, %v", in, ip, ok)
		}
	}
	for _, in := range []string{"[]", "[2001:db8::1]", "[IPv6:192.0.2.1]", "[IPv6:fe80::1%eth0]", "192.0.2.1", "[300.1.1.1]", "[x]"} {
		if ip, ok := parseAddressLiteral(in); ok {
			t.Errorf("parseAddressLiteral(%q) = %v, want refusal", in, ip)
		}
	}
}

// FuzzNormalizeDomain: recipient domains come from untrusted SMTP clients.
// Whatever normalizeDomain accepts must be a valid lower-case ASCII name,
// and normalizing it again must not change it.
func FuzzNormalizeDomain(f *testing.F) {
	for _, s := range []string{"example.test", "EXAMPLE.test.", "bücher.test", "a..b", "", "[127.0.0.1]", "xn--zz.test", "_dmarc.test"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := normalizeDomain(s)
		if err != nil {
			return
		}
		if !validHostName(d) || strings.ToLower(d) != d || !mailaddr.IsASCII(d) {
			t.Fatalf("normalizeDomain(%q) = %q: not a lower-case ASCII host name", s, d)
		}
		if d2, err := normalizeDomain(d); err != nil || d2 != d {
			t.Fatalf("not idempotent: %q -> %q -> %q, %v", s, d, d2, err)
		}
		parseAddressLiteral(s)
	})
}
