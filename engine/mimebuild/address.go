package mimebuild

import (
	"errors"
	"fmt"
	"net/mail"
	"net/netip"
	"strings"
)

// Address is one mailbox: an optional display name and an addr-spec
// ("local@domain", no angle brackets).
type Address struct {
	Name  string
	Email string
}

// Errors about addresses. They wrap into the errors Build returns.
var (
	// ErrBadAddress: the address is not an RFC 5321 §4.1.2 Mailbox
	// (local-part "@" domain), or it is longer than the limits.
	ErrBadAddress = errors.New("invalid email address")
	// ErrHeaderInjection: CR or LF inside a header value, name, address or
	// file name, which would start a new header field.
	ErrHeaderInjection = errors.New("CR or LF inside a header value")
)

// Length limits. RFC 5321 §4.5.3.1 allows 64 octets of local part; SRS and
// VERP addresses exceed it in practice, so (as smtpwire) up to 128 is taken.
const (
	maxLocalPart = 128
	maxDomain    = 255
	maxLabel     = 63
)

// HasCRLF reports whether s contains a CR or LF.
func HasCRLF(s string) bool { return strings.ContainsAny(s, "\r\n") }

// CheckAddress reports whether addr is a Mailbox of RFC 5321 §4.1.2:
// Local-part "@" ( Domain / address-literal ), where the local part is a
// Dot-string or a Quoted-string. A domain is required, and only ASCII is
// accepted (no SMTPUTF8 addresses yet).
func CheckAddress(addr string) error {
	if HasCRLF(addr) {
		return fmt.Errorf("%w: %q", ErrHeaderInjection, addr)
	}
	at := strings.LastIndexByte(addr, '@')
	if at <= 0 || at == len(addr)-1 {
		return fmt.Errorf("%w: %q: want local@domain", ErrBadAddress, addr)
	}
	local, domain := addr[:at], addr[at+1:]
	if len(local) > maxLocalPart {
		return fmt.Errorf("%w: local part longer than %d", ErrBadAddress, maxLocalPart)
	}
	if !isDotString(local) && !isQuotedString(local) {
		return fmt.Errorf("%w: %q: bad local part", ErrBadAddress, addr)
	}
	if !isDomain(domain) && !isAddressLiteral(domain) {
		return fmt.Errorf("%w: %q: bad domain", ErrBadAddress, addr)
	}
	return nil
}

// ParseAddress reads one mailbox as people write it: "a@b.example",
// "<a@b.example>", "Name <a@b.example>" or "\"Last, First\" <a@b.example>"
// (RFC 5322 §3.4), with encoded-word names decoded. The addr-spec must pass
// CheckAddress.
func ParseAddress(s string) (Address, error) {
	if HasCRLF(s) {
		return Address{}, fmt.Errorf("%w: %q", ErrHeaderInjection, s)
	}
	a, err := mail.ParseAddress(s)
	if err != nil {
		return Address{}, fmt.Errorf("%w: %q: %v", ErrBadAddress, s, err)
	}
	email := a.Address
	// net/mail returns a quoted local part unquoted; quote it again.
	if at := strings.LastIndexByte(email, '@'); at > 0 && !isDotString(email[:at]) {
		email = quoteLocal(email[:at]) + email[at:]
	}
	if err := CheckAddress(email); err != nil {
		return Address{}, err
	}
	if HasCRLF(a.Name) {
		return Address{}, fmt.Errorf("%w: %q", ErrHeaderInjection, s)
	}
	return Address{Name: a.Name, Email: email}, nil
}

// quoteLocal makes a Quoted-string of a local part (RFC 5321 §4.1.2).
func quoteLocal(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		if s[i] == '"' || s[i] == '\\' {
			b.WriteByte('\\')
		}
		b.WriteByte(s[i])
	}
	b.WriteByte('"')
	return b.String()
}

// isAtext reports whether c is atext (RFC 5322 §3.2.3, RFC 5321 §4.1.2).
func isAtext(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return strings.IndexByte("!#$%&'*+-/=?^_`{|}~", c) >= 0
}

// isDotString: Dot-string = Atom *("." Atom).
func isDotString(s string) bool {
	if s == "" || s[0] == '.' || s[len(s)-1] == '.' {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '.' {
			if s[i-1] == '.' {
				return false
			}
			continue
		}
		if !isAtext(c) {
			return false
		}
	}
	return true
}

// isQuotedString: DQUOTE *QcontentSMTP DQUOTE, where qtextSMTP is
// %d32-33 / %d35-91 / %d93-126 and quoted-pairSMTP is "\" %d32-126 — but
// not empty: RFC 5321 §4.1.2 allows `""@domain`, yet it names no mailbox,
// and RFC 5322 readers (Go's net/mail among them) refuse it in a header.
func isQuotedString(s string) bool {
	if len(s) < 3 || s[0] != '"' || s[len(s)-1] != '"' {
		return false
	}
	for i := 1; i < len(s)-1; i++ {
		c := s[i]
		switch {
		case c == '\\':
			i++
			if i >= len(s)-1 || s[i] < 32 || s[i] > 126 {
				return false
			}
		case c == '"' || c < 32 || c > 126:
			return false
		}
	}
	return true
}

// isDomain: sub-domain *("." sub-domain), sub-domain = Let-dig [Ldh-str]
// (RFC 5321 §4.1.2), labels of at most 63 octets (RFC 1035 §2.3.4).
func isDomain(s string) bool {
	if s == "" || len(s) > maxDomain {
		return false
	}
	for _, label := range strings.Split(s, ".") {
		if label == "" || len(label) > maxLabel || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-') {
				return false
			}
		}
	}
	return true
}

// isAddressLiteral: "[" IPv4 "]" or "[IPv6:" IPv6 "]" (RFC 5321 §4.1.3).
func isAddressLiteral(s string) bool {
	if len(s) < 3 || s[0] != '[' || s[len(s)-1] != ']' {
		return false
	}
	inner := s[1 : len(s)-1]
	if len(inner) > 5 && strings.EqualFold(inner[:5], "IPv6:") {
		a, err := netip.ParseAddr(inner[5:])
		return err == nil && a.Is6() && a.Zone() == ""
	}
	a, err := netip.ParseAddr(inner)
	return err == nil && a.Is4()
}
