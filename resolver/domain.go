package resolver

import (
	"net/netip"
	"strings"

	"gannet/mailaddr"
)

// normalizeDomain returns domain in the form used for lookups and cache keys:
// ASCII, lower-case, without the trailing dot. Internationalized names are
// converted to their A-label form (RFC 5890 §2.3.2.1, IDNA2008 lookup
// profile). It rejects names that are not valid host names (RFC 1035 §2.3.1,
// relaxed to accept "_" as real-world zones do): empty labels, labels over 63
// octets, names over 253 octets, and characters other than letters, digits,
// "-" and "_".
func normalizeDomain(domain string) (string, error) {
	domain, err := mailaddr.ToASCII(domain)
	if err != nil {
		return "", ErrInvalidDomain
	}
	if !validHostName(domain) {
		return "", ErrInvalidDomain
	}
	return domain, nil
}

// validHostName checks the syntax of a lower-case name without trailing dot.
func validHostName(s string) bool {
	if len(s) == 0 || len(s) > 253 {
		return false
	}
	label := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '.':
			if label == 0 {
				return false
			}
			label = 0
			continue
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '-', c == '_':
		default:
			return false
		}
		label++
		if label > 63 {
			return false
		}
	}
	return label > 0
}

// parseAddressLiteral parses an SMTP address literal, the domain part
// "[192.0.2.1]" or "[IPv6:2001:db8::1]" (RFC 5321 §4.1.3). Mail to a literal
// goes straight to that address, with no DNS lookup (RFC 5321 §5.1).
func parseAddressLiteral(domain string) (netip.Addr, bool) {
	if len(domain) < 3 || domain[0] != '[' || domain[len(domain)-1] != ']' {
		return netip.Addr{}, false
	}
	inner := domain[1 : len(domain)-1]
	if len(inner) > 5 && strings.EqualFold(inner[:5], "IPv6:") {
		ip, err := netip.ParseAddr(inner[5:])
		if err != nil || !ip.Is6() || ip.Zone() != "" {
			return netip.Addr{}, false
		}
		return ip, true
	}
	ip, err := netip.ParseAddr(inner)
	if err != nil || !ip.Is4() {
		return netip.Addr{}, false
	}
	return ip, true
}
