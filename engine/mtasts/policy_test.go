package mtasts

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

// rfcPolicy is the example of RFC 8461 §3.2.
const rfcPolicy = "version: STSv1\r\nmode: enforce\r\nmx: mail.example.com\r\nmx: *.example.net\r\nmx: backupmx.example.com\r\nmax_age: 604800\r\n"

func TestParsePolicy(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want *Policy
	}{
		{"RFC 8461 §3.2 example", rfcPolicy, &Policy{Mode: ModeEnforce, MX: []string{"mail.example.com", "*.example.net", "backupmx.example.com"}, MaxAge: 604800}},
		{"LF line ends, no final newline", "version: STSv1\nmode: testing\nmx: mx.a.test\nmax_age: 86400", &Policy{Mode: ModeTesting, MX: []string{"mx.a.test"}, MaxAge: 86400}},
		{"no space after colon, trailing space", "version:STSv1\nmode:enforce \nmx:MX.A.Test.\nmax_age:0\n", &Policy{Mode: ModeEnforce, MX: []string{"mx.a.test"}, MaxAge: 0}},
		{"mode none needs no mx", "version: STSv1\nmode: none\nmax_age: 86400\n", &Policy{Mode: ModeNone, MaxAge: 86400}},
		{"extension fields ignored", "version: STSv1\nmode: enforce\nx-extra: whatever: here\nmx: a.test\nmax_age: 1\n", &Policy{Mode: ModeEnforce, MX: []string{"a.test"}, MaxAge: 1}},
		{"max_age over a year is a year", "version: STSv1\nmode: enforce\nmx: a.test\nmax_age: 9999999999\n", &Policy{Mode: ModeEnforce, MX: []string{"a.test"}, MaxAge: MaxMaxAge}},
		{"blank lines", "\nversion: STSv1\n\nmode: enforce\r\n\r\nmx: a.test\nmax_age: 5\n\n", &Policy{Mode: ModeEnforce, MX: []string{"a.test"}, MaxAge: 5}},
	}
	for _, tt := range tests {
		got, err := ParsePolicy([]byte(tt.in))
		if err != nil || !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%s: ParsePolicy = %+v, %v; want %+v", tt.name, got, err, tt.want)
		}
	}
}

func TestParsePolicyRejects(t *testing.T) {
	const ok = "version: STSv1\nmode: enforce\nmx: a.test\nmax_age: 86400\n"
	tests := map[string]string{
		"empty":              "",
		"no version":         "mode: enforce\nmx: a.test\nmax_age: 86400\n",
		"other version":      strings.Replace(ok, "STSv1", "STSv2", 1),
		"version lowercase":  strings.Replace(ok, "STSv1", "stsv1", 1),
		"no mode":            "version: STSv1\nmx: a.test\nmax_age: 86400\n",
		"bad mode":           strings.Replace(ok, "enforce", "Enforce", 1),
		"two modes":          ok + "mode: testing\n",
		"no max_age":         "version: STSv1\nmode: enforce\nmx: a.test\n",
		"negative max_age":   strings.Replace(ok, "86400", "-1", 1),
		"11-digit max_age":   strings.Replace(ok, "86400", "12345678901", 1),
		"max_age not digit":  strings.Replace(ok, "86400", "1d", 1),
		"two max_age":        ok + "max_age: 1\n",
		"no mx in enforce":   "version: STSv1\nmode: enforce\nmax_age: 86400\n",
		"bad mx":             strings.Replace(ok, "a.test", "a..test", 1),
		"mx mid wildcard":    strings.Replace(ok, "a.test", "a.*.test", 1),
		"mx bare wildcard":   strings.Replace(ok, "a.test", "*", 1),
		"line without colon": ok + "garbage\n",
		"bad field name":     ok + "-x: y\n",
		"too large":          ok + strings.Repeat("x: y\n", MaxPolicySize/5+1),
	}
	for name, in := range tests {
		if p, err := ParsePolicy([]byte(in)); !errors.Is(err, ErrBadPolicy) {
			t.Errorf("%s: ParsePolicy = %+v, %v; want ErrBadPolicy", name, p, err)
		}
	}
}

func TestPolicyMatch(t *testing.T) {
	p, err := ParsePolicy([]byte(rfcPolicy))
	if err != nil {
		t.Fatal(err)
	}
	tests := map[string]bool{
		"mail.example.com":      true,
		"MAIL.Example.COM.":     true,
		"backupmx.example.com":  true,
		"mx1.example.net":       true, // §4.1: "*.example.net" matches one label
		"example.net":           false,
		"a.b.example.net":       false, // not two labels
		".example.net":          false,
		"other.example.com":     false,
		"mail.example.com.evil": false,
		"xmail.example.com":     false,
		"":                      false,
	}
	for host, want := range tests {
		if got := p.Match(host); got != want {
			t.Errorf("Match(%q) = %v, want %v", host, got, want)
		}
	}
}

// FuzzSTSPolicy: ParsePolicy never panics; an accepted policy has a mode,
// a max_age in range, mx patterns in normal form (each one a pattern that
// its own name matches) and at least one unless the mode is none.
func FuzzSTSPolicy(f *testing.F) {
	for _, s := range []string{rfcPolicy, "version: STSv1\nmode: none\nmax_age: 1\n", "version: STSv1\nmode: testing\nmx: *.a.test\nmax_age: 9999999999", "", "a:b\n", ":\r\n"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := ParsePolicy(b)
		if err != nil {
			if !errors.Is(err, ErrBadPolicy) {
				t.Fatalf("error %v does not wrap ErrBadPolicy", err)
			}
			return
		}
		if p.Mode > ModeEnforce || p.MaxAge < 0 || p.MaxAge > MaxMaxAge || (p.Mode != ModeNone && len(p.MX) == 0) {
			t.Fatalf("accepted %q as %+v", b, p)
		}
		for _, m := range p.MX {
			host := strings.Replace(m, "*", "x", 1)
			if m != strings.ToLower(m) || strings.HasSuffix(m, ".") || !p.Match(host) {
				t.Fatalf("pattern %q of %q does not match %q", m, b, host)
			}
		}
	})
}
