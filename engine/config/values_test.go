package config

import (
	"crypto/tls"
	"net/netip"
	"testing"
	"time"
)

func TestParseSize(t *testing.T) {
	tests := []struct {
		in   string
		want Size
		ok   bool
	}{
		{"0", 0, true},
		{"1024", 1024, true},
		{"512KiB", 512 << 10, true},
		{"20MiB", 20 << 20, true},
		{"20 MiB", 20 << 20, true},
		{"20mib", 20 << 20, true},
		{"10MB", 10_000_000, true},
		{"1GB", 1_000_000_000, true},
		{"1GiB", 1 << 30, true},
		{"2TiB", 2 << 40, true},
		{"100B", 100, true},
		{"1.5MiB", 3 << 19, true},
		{"64K", 64 << 10, true},
		{"", 0, false},
		{"MiB", 0, false},
		{"20XB", 0, false},
		{"-5", 0, false},
		{"1e6", 0, false},
		{"9999999999TiB", 0, false},
		{"99999999999999999999", 0, false},
	}
	for _, tt := range tests {
		got, err := ParseSize(tt.in)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d, ok=%v", tt.in, got, err, tt.want, tt.ok)
		}
	}
	if s := Size(20 << 20).String(); s != "20MiB" {
		t.Errorf("String = %q", s)
	}
	if s := Size(1000).String(); s != "1000" {
		t.Errorf("String = %q", s)
	}
}

func TestParseRate(t *testing.T) {
	tests := []struct {
		in     string
		want   Rate
		perSec float64
		ok     bool
	}{
		{"100/s", Rate{100, time.Second}, 100, true},
		{"1000/m", Rate{1000, time.Minute}, 1000.0 / 60, true},
		{"5000/h", Rate{5000, time.Hour}, 5000.0 / 3600, true},
		{"86400/d", Rate{86400, 24 * time.Hour}, 1, true},
		{"10/30s", Rate{10, 30 * time.Second}, 10.0 / 30, true},
		{" 7 / min ", Rate{7, time.Minute}, 7.0 / 60, true},
		{"unlimited", Rate{}, 0, true},
		{"", Rate{}, 0, true},
		{"100", Rate{}, 0, false},
		{"0/s", Rate{}, 0, false},
		{"-1/s", Rate{}, 0, false},
		{"1/fortnight", Rate{}, 0, false},
		{"1/-5s", Rate{}, 0, false},
		{"x/s", Rate{}, 0, false},
	}
	for _, tt := range tests {
		got, err := ParseRate(tt.in)
		if (err == nil) != tt.ok || got != tt.want || got.PerSecond() != tt.perSec {
			t.Errorf("ParseRate(%q) = %+v (%v/s), %v; want %+v, ok=%v", tt.in, got, got.PerSecond(), err, tt.want, tt.ok)
		}
	}
	if r := (Rate{100, time.Second}); r.Interval() != 10*time.Millisecond || r.String() != "100/s" {
		t.Errorf("Interval/String = %v %q", r.Interval(), r.String())
	}
	if !(Rate{}).Unlimited() || (Rate{}).String() != "unlimited" {
		t.Error("zero rate is not unlimited")
	}
}

func TestDuration(t *testing.T) {
	tests := []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"5m", 5 * time.Minute, true},
		{"72h", 72 * time.Hour, true},
		{"1h30m", 90 * time.Minute, true},
		{"250ms", 250 * time.Millisecond, true},
		{"0", 0, true},
		{"300", 0, false},
		{"5 minutes", 0, false},
		{"", 0, false},
	}
	for _, tt := range tests {
		var d Duration
		err := d.UnmarshalText([]byte(tt.in))
		if (err == nil) != tt.ok || d.Duration != tt.want {
			t.Errorf("Duration(%q) = %v, %v; want %v, ok=%v", tt.in, d.Duration, err, tt.want, tt.ok)
		}
	}
}

func TestCIDR(t *testing.T) {
	tests := []struct {
		in   string
		want string
		ok   bool
	}{
		{"127.0.0.0/8", "127.0.0.0/8", true},
		{"10.1.2.3/8", "10.0.0.0/8", true},
		{"192.0.2.7", "192.0.2.7/32", true},
		{"::1", "::1/128", true},
		{"::1/128", "::1/128", true},
		{"2001:db8::/32", "2001:db8::/32", true},
		{"::ffff:10.0.0.1", "10.0.0.1/32", true},
		{"::ffff:10.0.0.0/104", "10.0.0.0/8", true},
		{"10.0.0.0/33", "", false},
		{"localhost", "", false},
		{"fe80::1%eth0", "", false},
		{"", "", false},
	}
	for _, tt := range tests {
		got, err := ParseCIDR(tt.in)
		if (err == nil) != tt.ok || (tt.ok && got.Prefix.String() != tt.want) {
			t.Errorf("ParseCIDR(%q) = %v, %v; want %q, ok=%v", tt.in, got.Prefix, err, tt.want, tt.ok)
		}
	}
	l := CIDRList{mustCIDR(t, "127.0.0.0/8"), mustCIDR(t, "::1")}
	for addr, want := range map[string]bool{
		"127.0.0.1": true, "::ffff:127.0.0.9": true, "::1": true, "128.0.0.1": false, "::2": false,
	} {
		if got := l.Contains(netip.MustParseAddr(addr)); got != want {
			t.Errorf("Contains(%s) = %v", addr, got)
		}
	}
}

func mustCIDR(t *testing.T, s string) CIDR {
	t.Helper()
	c, err := ParseCIDR(s)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// FuzzValues checks that the value parsers never panic and that what they
// accept formats back to an equal value.
func FuzzValues(f *testing.F) {
	for _, s := range []string{"20MiB", "1.5GB", "100/s", "10/30s", "127.0.0.1", "::1/128", "5m", "unlimited"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if z, err := ParseSize(s); err == nil {
			if z < 0 {
				t.Fatalf("ParseSize(%q) = %d", s, z)
			}
			if back, err := ParseSize(z.String()); err != nil || back != z {
				t.Fatalf("Size %d → %q → %d, %v", z, z.String(), back, err)
			}
		}
		if r, err := ParseRate(s); err == nil {
			if back, err := ParseRate(r.String()); err != nil || back.PerSecond() != r.PerSecond() {
				t.Fatalf("Rate %+v → %q → %+v, %v", r, r.String(), back, err)
			}
		}
		if c, err := ParseCIDR(s); err == nil {
			if back, err := ParseCIDR(c.Prefix.String()); err != nil || back != c {
				t.Fatalf("CIDR %v → %v, %v", c, back, err)
			}
		}
		var d Duration
		_ = d.UnmarshalText([]byte(s))
	})
}

func TestTLSVersionID(t *testing.T) {
	for _, tc := range []struct {
		v    TLSVersion
		want uint16
	}{{"", tls.VersionTLS12}, {"1.0", tls.VersionTLS10}, {"1.1", tls.VersionTLS11}, {"1.2", tls.VersionTLS12}, {"1.3", tls.VersionTLS13}} {
		if got := tc.v.ID(); got != tc.want {
			t.Errorf("TLSVersion(%q).ID() = %#x, want %#x", tc.v, got, tc.want)
		}
	}
	for _, name := range tlsVersionNames {
		if TLSVersion(name).ID() == 0 {
			t.Errorf("%q has no ID", name)
		}
	}
}
