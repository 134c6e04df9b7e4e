package smtpwire

import (
	"strings"
	"testing"
)

func TestParsePath(t *testing.T) {
	good := []struct{ in, addr, domain string }{
		{"<a@b.example>", "a@b.example", "b.example"},
		{"<>", "", ""},
		{"a@b.example", "a@b.example", "b.example"},
		{"<John.Doe@Example.COM>", "John.Doe@Example.COM", "example.com"},
		{"<@r1.example,@r2.example:a@b.example>", "a@b.example", "b.example"},
		{`<"john doe"@b.example>`, `"john doe"@b.example`, "b.example"},
		{`<"a>b\"c"@b.example>`, `"a>b\"c"@b.example`, "b.example"},
		{"<a@[192.0.2.1]>", "a@[192.0.2.1]", "[192.0.2.1]"},
		{"<a@[IPv6:2001:db8::1]>", "a@[IPv6:2001:db8::1]", "[ipv6:2001:db8::1]"},
		{"<Postmaster>", "Postmaster", ""},
		{"<john..doe@b.example>", "john..doe@b.example", "b.example"},
		{"<a+tag=x@sub_domain.b.example>", "a+tag=x@sub_domain.b.example", "sub_domain.b.example"},
		{"<用户@例子.example>", "用户@例子.example", "xn--fsqu00a.example"},
		{"<a@Bücher.example>", "a@Bücher.example", "xn--bcher-kva.example"},
		{"<a@münchen.example>", "a@münchen.example", "xn--mnchen-3ya.example"},
		{"<" + strings.Repeat("l", MaxLocalPart) + "@b.example>", strings.Repeat("l", MaxLocalPart) + "@b.example", "b.example"},
	}
	for _, tt := range good {
		p, err := ParsePath(tt.in)
		if err != nil || p.Addr != tt.addr || p.Domain() != tt.domain {
			t.Errorf("%q: got %q domain %q err %v; want %q %q", tt.in, p.Addr, p.Domain(), err, tt.addr, tt.domain)
		}
	}
	bad := []string{
		"", "<", "<a@b.example", "a@b.example>", "<a@>", "<@b.example>", "<a b@c.example>",
		"<a@b..example>", "<a@.b.example>", "<a@b.example.>", "<a@-b.example>", "<a@b-.example>",
		"<a@[300.1.1.1]>", "<a@[IPv6:1.2.3.4]>", "<a@[2001:db8::1]>", "<a@b.example> x",
		"<@route.example>", "<@route.example:>", "<nobody>", `<"unterminated@b.example>`,
		"<a\x00b@c.example>", "<a@b\x01.example>", "<\xff@b.example>", "<a@b.example\xff>",
		"<" + strings.Repeat("l", MaxLocalPart+1) + "@b.example>",
		"<a@" + strings.Repeat("d", 250) + ".example>",
		"<a@0ܧ>", // no A-label form: a digit then a right-to-left letter breaks the Bidi rule (RFC 5893)
	}
	for _, in := range bad {
		if p, err := ParsePath(in); err == nil {
			t.Errorf("%q: accepted as %q", in, p.Addr)
		}
	}
}

func TestPathMethods(t *testing.T) {
	p := Path{Addr: `"x@y"@Host.Example`}
	if p.Local() != `"x@y"` || p.Domain() != "host.example" || p.String() != `<"x@y"@Host.Example>` || p.IsNull() || !p.IsASCII() {
		t.Errorf("methods of %q: %q %q %q", p.Addr, p.Local(), p.Domain(), p.String())
	}
	if !(Path{}).IsNull() || (Path{}).String() != "<>" || (Path{Addr: "é@x"}).IsASCII() {
		t.Error("null path / IsASCII")
	}
}

func FuzzParsePath(f *testing.F) {
	for _, s := range []string{"<a@b.example>", "<>", "<@r:a@b>", `<"q\"x"@b>`, "<a@[IPv6:::1]>", "<用户@例子.example>", "postmaster"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ParsePath(s)
		if err != nil {
			return
		}
		if len(p.Addr) > MaxAddress {
			t.Fatalf("address of %d bytes accepted", len(p.Addr))
		}
		// An accepted address parses again to itself, and its domain is ASCII.
		q, err := ParsePath(p.String())
		if err != nil || q != p {
			t.Fatalf("%q → %q → %q, %v", s, p.Addr, q.Addr, err)
		}
		if !isASCII(p.Domain()) {
			t.Fatalf("domain %q not ASCII", p.Domain())
		}
	})
}
