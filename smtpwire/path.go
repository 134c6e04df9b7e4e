package smtpwire

import (
	"bytes"
	"errors"
	"net/netip"
	"unicode/utf8"

	"gannet/mailaddr"
)

// Path is a reverse-path or forward-path (RFC 5321 §4.1.2) without its angle
// brackets and without a source route: "local@domain". The null reverse-path
// "<>" has Addr "". The local part is kept exactly as sent (quoted or not);
// domains are compared case-insensitively through Domain.
type Path struct {
	Addr string
	// Notify and ORcpt are the DSN parameters of a forward-path (RCPT,
	// RFC 3461 §4.1, §4.2); zero in a reverse-path. ORcpt is
	// "addr-type;address" with the address xtext-decoded.
	Notify DSNNotify
	ORcpt  string
}

// Address length limits. RFC 5321 §4.5.3.1 sets 64 octets for the local part,
// 255 for the domain and 256 for the whole path. Real senders exceed the local
// limit (SRS and VERP addresses), so Gannet allows twice that; the domain
// limit is the DNS one and stays; the address limit follows from the two.
const (
	MaxLocalPart = 128
	MaxDomain    = 255
	MaxAddress   = MaxLocalPart + 1 + MaxDomain
)

// Errors of ParsePath and of the MAIL/RCPT argument parsers. Each is an *Error
// carrying the reply the session sends.
var (
	ErrPathSyntax  = &Error{Reply: ReplySyntaxPath, Cause: errors.New("smtpwire: malformed address")}
	ErrPathTooLong = &Error{Reply: ReplySyntaxPath, Cause: errors.New("smtpwire: address too long")}
	ErrNeedUTF8    = &Error{Reply: ReplyNeedSMTPUTF8, Cause: errors.New("smtpwire: non-ASCII address without SMTPUTF8")}
)

// ParsePath parses a path as it appears in MAIL FROM or RCPT TO: "<a@b>",
// "<>" (null), "<@route,@route:a@b>" (the source route is ignored, RFC 5321
// §4.1.2 and Appendix C), or, leniently, a bare "a@b" without brackets.
// UTF-8 local parts and domains (RFC 6531) are accepted here when they are
// valid UTF-8; whether the transaction allows them is the caller's check
// (Path.IsASCII). Nothing may follow the path.
func ParsePath(s string) (Path, error) {
	addr, rest, err := splitPath([]byte(s))
	if err != nil {
		return Path{}, err
	}
	if len(bytes.TrimLeft(rest, " \t")) > 0 {
		return Path{}, ErrPathSyntax
	}
	return Path{Addr: string(addr)}, nil
}

// splitPath takes the path at the start of arg and returns the address (no
// brackets, no route) and what follows the path.
func splitPath(arg []byte) (addr, rest []byte, err *Error) {
	if len(arg) == 0 {
		return nil, nil, ErrPathSyntax
	}
	if arg[0] != '<' {
		// Lenient: some clients omit the brackets. Then the address ends at
		// the first space and cannot be null.
		end := bytes.IndexByte(arg, ' ')
		if end < 0 {
			end = len(arg)
		}
		if end == 0 {
			return nil, nil, ErrPathSyntax
		}
		addr, err = checkMailbox(arg[:end])
		return addr, arg[end:], err
	}
	// Find the closing bracket outside a quoted local part.
	inQuote := false
	for i := 1; i < len(arg); i++ {
		switch c := arg[i]; {
		case inQuote && c == '\\':
			i++
		case c == '"':
			inQuote = !inQuote
		case !inQuote && c == '>':
			addr, err = checkMailbox(arg[1:i])
			return addr, arg[i+1:], err
		}
	}
	return nil, nil, ErrPathSyntax
}

// checkMailbox validates the text between the brackets: an optional source
// route, then Mailbox = Local-part "@" ( Domain / address-literal ) (RFC 5321
// §4.1.2). It returns the mailbox without the route; empty means null path.
func checkMailbox(b []byte) ([]byte, *Error) {
	if len(b) > 0 && b[0] == '@' {
		colon := bytes.IndexByte(b, ':')
		if colon < 0 {
			return nil, ErrPathSyntax
		}
		for _, c := range b[:colon] {
			if c != '@' && c != ',' && c != '.' && !isLetDig(c) && c != '-' && c != '[' && c != ']' {
				return nil, ErrPathSyntax
			}
		}
		b = b[colon+1:]
		if len(b) == 0 {
			return nil, ErrPathSyntax
		}
	}
	if len(b) == 0 {
		return b, nil
	}
	if len(b) > MaxAddress {
		return nil, ErrPathTooLong
	}
	i := 0
	if b[0] == '"' {
		// Quoted-string: qtextSMTP / quoted-pairSMTP (RFC 5321 §4.1.2), with
		// UTF-8 allowed by RFC 6531 §3.3.
		for i = 1; i < len(b); i++ {
			c := b[i]
			if c == '\\' {
				i++
				if i >= len(b) || b[i] < ' ' || b[i] == 0x7f {
					return nil, ErrPathSyntax
				}
				continue
			}
			if c == '"' {
				break
			}
			if c < ' ' || c == 0x7f {
				return nil, ErrPathSyntax
			}
		}
		if i >= len(b) {
			return nil, ErrPathSyntax
		}
		i++
	} else {
		// Dot-string, leniently: atext and dots in any order ("john..doe"
		// is seen in the wild), plus UTF-8 (RFC 6531 §3.3).
		for i < len(b) && b[i] != '@' {
			if c := b[i]; c < 0x80 && !isAtext(c) && c != '.' {
				return nil, ErrPathSyntax
			}
			i++
		}
		if i == 0 {
			return nil, ErrPathSyntax
		}
	}
	if i > MaxLocalPart {
		return nil, ErrPathTooLong
	}
	if i == len(b) {
		// RFC 5321 §4.1.1.3: "Postmaster" without a domain must be accepted.
		if asciiEqualFold(b, "postmaster") {
			return b, nil
		}
		return nil, ErrPathSyntax
	}
	if b[i] != '@' {
		return nil, ErrPathSyntax
	}
	if err := checkDomain(b[i+1:]); err != nil {
		return nil, err
	}
	if !isASCII(b) && !utf8.Valid(b) {
		return nil, ErrPathSyntax
	}
	return b, nil
}

// checkDomain validates Domain or address-literal (RFC 5321 §4.1.2, §4.1.3).
// Labels may hold letters, digits, '-', '_' (seen in the wild) and UTF-8.
func checkDomain(d []byte) *Error {
	if len(d) == 0 {
		return ErrPathSyntax
	}
	if len(d) > MaxDomain {
		return ErrPathTooLong
	}
	if d[0] == '[' {
		if d[len(d)-1] != ']' {
			return ErrPathSyntax
		}
		lit := d[1 : len(d)-1]
		if hasPrefixFold(lit, "IPv6:") {
			a, err := netip.ParseAddr(string(lit[5:]))
			if err != nil || !a.Is6() || a.Zone() != "" {
				return ErrPathSyntax
			}
			return nil
		}
		a, err := netip.ParseAddr(string(lit))
		if err != nil || !a.Is4() {
			return ErrPathSyntax
		}
		return nil
	}
	// sub-domain = Let-dig [Ldh-str]: no empty label, no '-' at either end.
	label, prev := 0, byte(0)
	for _, c := range d {
		switch {
		case c == '.':
			if label == 0 || prev == '-' {
				return ErrPathSyntax
			}
			label = 0
		case c == '-':
			if label == 0 {
				return ErrPathSyntax
			}
			label++
		case isLetDig(c) || c == '_' || c >= 0x80:
			label++
		default:
			return ErrPathSyntax
		}
		prev = c
	}
	if label == 0 || prev == '-' {
		return ErrPathSyntax
	}
	// An internationalized domain (RFC 6531 §3.3) must have an A-label
	// form (IDNA2008 lookup profile, RFC 5891 §5): one that has none (a
	// disallowed code point, a label breaking the Bidi rule of RFC 5893)
	// could never be looked up, so it is refused here, with a reply,
	// rather than bounced later.
	if !isASCII(d) {
		if _, err := mailaddr.ToASCII(string(d)); err != nil {
			return ErrPathSyntax
		}
	}
	return nil
}

// IsNull reports the null reverse-path "<>".
func (p Path) IsNull() bool { return p.Addr == "" }

// IsASCII reports whether the address needs no SMTPUTF8 (RFC 6531).
func (p Path) IsASCII() bool { return isASCII(p.Addr) }

// String returns the path with brackets: "<a@b>", "<>".
func (p Path) String() string { return "<" + p.Addr + ">" }

// AppendTo appends the path with its brackets.
func (p Path) AppendTo(dst []byte) []byte {
	dst = append(dst, '<')
	dst = append(dst, p.Addr...)
	return append(dst, '>')
}

// Local returns the local part as sent (quotes included).
func (p Path) Local() string {
	local, _ := mailaddr.Split(p.Addr)
	return local
}

// Domain returns the domain part in canonical form (mailaddr.Domain):
// lower-case ASCII with U-labels turned into A-labels, so that it can be
// looked up in the DNS. It is "" for the null path and for "postmaster".
func (p Path) Domain() string { return mailaddr.Domain(p.Addr) }

// isAtext reports RFC 5322 §3.2.3 atext.
func isAtext(c byte) bool {
	if isLetDig(c) {
		return true
	}
	switch c {
	case '!', '#', '$', '%', '&', '\'', '*', '+', '-', '/', '=', '?', '^', '_', '`', '{', '|', '}', '~':
		return true
	}
	return false
}

func isLetDig(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

func isASCII[T string | []byte](s T) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

func lowerASCII(c byte) byte {
	if c >= 'A' && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

// asciiEqualFold reports b == s ignoring ASCII case; s must be ASCII.
func asciiEqualFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := 0; i < len(b); i++ {
		if lowerASCII(b[i]) != lowerASCII(s[i]) {
			return false
		}
	}
	return true
}

func hasPrefixFold(b []byte, prefix string) bool {
	return len(b) >= len(prefix) && asciiEqualFold(b[:len(prefix)], prefix)
}
