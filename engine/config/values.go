package config

import (
	"crypto/tls"
	"fmt"
	"math"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// valueError is returned by the UnmarshalText methods of the typed values. Its
// message starts with the offending text, quoted, and says what to write
// instead; the decoder puts the key path and line before it.
type valueError struct {
	text string
	what string
}

func (e *valueError) Error() string { return strconv.Quote(e.text) + " " + e.what }

// Duration is a Go duration written as a string: "30s", "5m", "72h",
// "1h30m", or a whole number of days: "7d".
type Duration struct{ time.Duration }

// UnmarshalText implements encoding.TextUnmarshaler.
func (d *Duration) UnmarshalText(b []byte) error {
	s := strings.TrimSpace(string(b))
	if days, ok := strings.CutSuffix(s, "d"); ok {
		if n, err := strconv.Atoi(days); err == nil && n >= 0 && n <= 36500 {
			d.Duration = time.Duration(n) * 24 * time.Hour
			return nil
		}
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return &valueError{string(b), `is not a duration (write a Go duration such as "30s", "5m" or "72h")`}
	}
	d.Duration = v
	return nil
}

// MarshalText implements encoding.TextMarshaler.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.Duration.String()), nil }

// TLSVersion is a TLS protocol version as written in the file: "1.0",
// "1.1", "1.2" or "1.3"; empty means 1.2, the default minimum everywhere
// (RFC 8996 deprecates 1.0 and 1.1). The checker refuses any other text, so
// ID is the one place it is turned into a crypto/tls constant.
type TLSVersion string

// tlsVersionNames are the accepted texts, in order.
var tlsVersionNames = []string{"1.0", "1.1", "1.2", "1.3"}

// ID returns the crypto/tls constant (tls.VersionTLS12 for "" and for text
// the checker would refuse).
func (v TLSVersion) ID() uint16 {
	switch v {
	case "1.0":
		return tls.VersionTLS10
	case "1.1":
		return tls.VersionTLS11
	case "1.3":
		return tls.VersionTLS13
	}
	return tls.VersionTLS12
}

// Size is a number of bytes. In the file it is an integer (bytes) or a string
// with a unit: "512KiB", "20MiB", "1GiB" (powers of 1024) or "10MB", "1GB"
// (powers of 1000); "B" and a space before the unit are allowed.
type Size int64

var sizeUnits = map[string]int64{
	"":    1,
	"b":   1,
	"k":   1 << 10,
	"kb":  1000,
	"kib": 1 << 10,
	"m":   1 << 20,
	"mb":  1000 * 1000,
	"mib": 1 << 20,
	"g":   1 << 30,
	"gb":  1000 * 1000 * 1000,
	"gib": 1 << 30,
	"t":   1 << 40,
	"tb":  1000 * 1000 * 1000 * 1000,
	"tib": 1 << 40,
}

// ParseSize parses a size as written in the config file.
func ParseSize(s string) (Size, error) {
	t := strings.TrimSpace(s)
	i := 0
	for i < len(t) && (t[i] >= '0' && t[i] <= '9' || t[i] == '.') {
		i++
	}
	num, unit := t[:i], strings.ToLower(strings.TrimSpace(t[i:]))
	mult, ok := sizeUnits[unit]
	if num == "" || !ok {
		return 0, &valueError{s, `is not a size (write bytes as an integer, or "512KiB", "20MiB", "10MB", "1GiB")`}
	}
	if !strings.Contains(num, ".") {
		n, err := strconv.ParseInt(num, 10, 64)
		if err != nil || n > math.MaxInt64/mult {
			return 0, &valueError{s, "is too large a size"}
		}
		return Size(n * mult), nil
	}
	f, err := strconv.ParseFloat(num, 64)
	if err != nil {
		return 0, &valueError{s, "is not a size"}
	}
	v := f * float64(mult)
	if v >= math.MaxInt64 {
		return 0, &valueError{s, "is too large a size"}
	}
	return Size(v), nil
}

// UnmarshalText implements encoding.TextUnmarshaler.
func (z *Size) UnmarshalText(b []byte) error {
	v, err := ParseSize(string(b))
	if err != nil {
		return err
	}
	*z = v
	return nil
}

// Bytes returns the size as an int64.
func (z Size) Bytes() int64 { return int64(z) }

// String formats the size with the largest binary unit that divides it.
func (z Size) String() string {
	for _, u := range []struct {
		name string
		n    int64
	}{{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if z != 0 && int64(z)%u.n == 0 {
			return strconv.FormatInt(int64(z)/u.n, 10) + u.name
		}
	}
	return strconv.FormatInt(int64(z), 10)
}

// MarshalText implements encoding.TextMarshaler.
func (z Size) MarshalText() ([]byte, error) { return []byte(z.String()), nil }

// Rate is a number of events per period: "100/s", "1000/m", "5000/h",
// "20000/d", or with a Go duration as the period: "10/30s". The zero Rate
// (written "" or "unlimited") means no limit.
type Rate struct {
	Count int64
	Per   time.Duration
}

var ratePeriods = map[string]time.Duration{
	"s": time.Second, "sec": time.Second, "second": time.Second,
	"m": time.Minute, "min": time.Minute, "minute": time.Minute,
	"h": time.Hour, "hr": time.Hour, "hour": time.Hour,
	"d": 24 * time.Hour, "day": 24 * time.Hour,
}

// ParseRate parses a rate as written in the config file.
func ParseRate(s string) (Rate, error) {
	t := strings.TrimSpace(s)
	if t == "" || strings.EqualFold(t, "unlimited") {
		return Rate{}, nil
	}
	bad := &valueError{s, `is not a rate (write COUNT/PERIOD such as "100/s", "1000/m", "5000/h" or "unlimited")`}
	num, per, ok := strings.Cut(t, "/")
	if !ok {
		return Rate{}, bad
	}
	n, err := strconv.ParseInt(strings.TrimSpace(num), 10, 64)
	if err != nil || n <= 0 {
		return Rate{}, bad
	}
	per = strings.ToLower(strings.TrimSpace(per))
	d, ok := ratePeriods[per]
	if !ok {
		d, err = time.ParseDuration(per)
		if err != nil || d <= 0 {
			return Rate{}, bad
		}
	}
	return Rate{Count: n, Per: d}, nil
}

// UnmarshalText implements encoding.TextUnmarshaler.
func (r *Rate) UnmarshalText(b []byte) error {
	v, err := ParseRate(string(b))
	if err != nil {
		return err
	}
	*r = v
	return nil
}

// Unlimited reports whether r sets no limit.
func (r Rate) Unlimited() bool { return r.Count <= 0 || r.Per <= 0 }

// PerSecond returns the rate in events per second; 0 when unlimited.
func (r Rate) PerSecond() float64 {
	if r.Unlimited() {
		return 0
	}
	return float64(r.Count) / r.Per.Seconds()
}

// Interval returns the mean time between two events; 0 when unlimited.
func (r Rate) Interval() time.Duration {
	if r.Unlimited() {
		return 0
	}
	return r.Per / time.Duration(r.Count)
}

// String formats the rate as it is written in the config file.
func (r Rate) String() string {
	if r.Unlimited() {
		return "unlimited"
	}
	per := r.Per.String()
	switch r.Per {
	case time.Second:
		per = "s"
	case time.Minute:
		per = "m"
	case time.Hour:
		per = "h"
	case 24 * time.Hour:
		per = "d"
	}
	return strconv.FormatInt(r.Count, 10) + "/" + per
}

// MarshalText implements encoding.TextMarshaler.
func (r Rate) MarshalText() ([]byte, error) { return []byte(r.String()), nil }

// CIDR is one network: "10.0.0.0/8", "::1/128", or a bare address, which
// means that one host (/32 or /128). The address is masked to the prefix
// ("10.1.2.3/8" becomes "10.0.0.0/8").
type CIDR struct{ netip.Prefix }

// ParseCIDR parses a network or a bare address.
func ParseCIDR(s string) (CIDR, error) {
	t := strings.TrimSpace(s)
	if !strings.Contains(t, "/") {
		a, err := netip.ParseAddr(t)
		if err != nil || a.Zone() != "" {
			return CIDR{}, &valueError{s, `is not an IP address or network (write "192.0.2.0/24", "::1/128" or "127.0.0.1")`}
		}
		a = a.Unmap()
		return CIDR{netip.PrefixFrom(a, a.BitLen())}, nil
	}
	p, err := netip.ParsePrefix(t)
	if err != nil {
		return CIDR{}, &valueError{s, `is not an IP network (write "192.0.2.0/24", "::1/128" or "127.0.0.1")`}
	}
	if p.Addr().Is4In6() && p.Bits() >= 96 {
		p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
	}
	return CIDR{p.Masked()}, nil
}

// UnmarshalText implements encoding.TextUnmarshaler.
func (c *CIDR) UnmarshalText(b []byte) error {
	v, err := ParseCIDR(string(b))
	if err != nil {
		return err
	}
	*c = v
	return nil
}

// MarshalText implements encoding.TextMarshaler.
func (c CIDR) MarshalText() ([]byte, error) { return []byte(c.Prefix.String()), nil }

// CIDRList is a list of networks, such as relay_hosts or trusted_hosts.
type CIDRList []CIDR

// Contains reports whether a (IPv4-mapped IPv6 addresses are unmapped first)
// lies in one of the networks.
func (l CIDRList) Contains(a netip.Addr) bool {
	a = a.Unmap().WithZone("")
	for _, c := range l {
		if c.Prefix.Contains(a) {
			return true
		}
	}
	return false
}

// Prefixes returns the networks as netip.Prefix values.
func (l CIDRList) Prefixes() []netip.Prefix {
	out := make([]netip.Prefix, len(l))
	for i, c := range l {
		out[i] = c.Prefix
	}
	return out
}

// String formats the list for messages: "[127.0.0.0/8 ::1/128]".
func (l CIDRList) String() string { return fmt.Sprint(l.Prefixes()) }
