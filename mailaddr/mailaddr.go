// Package mailaddr is the one place where a mail address is taken apart and
// its domain put into the form Gannet compares, indexes and looks up.
//
// An address is split at its last "@" (RFC 5321 §4.1.2: the local part may
// itself hold a quoted "@"). A domain has one canonical form everywhere —
// queue names, suspensions, bounces, shaping and TLS policy tables, DKIM keys,
// metrics: lower-case ASCII without a trailing dot, every internationalized
// label as its A-label ("xn--…", RFC 5890 §2.3.2.1) made with the IDNA2008
// lookup profile of golang.org/x/net/idna. So "例子.test", "XN--FSQU00A.test."
// and "xn--fsqu00a.test" are one domain. Address literals ("[192.0.2.1]",
// RFC 5321 §4.1.3) are kept as written, lower-cased.
//
// The address itself is never rewritten: the local part is case-sensitive
// (RFC 5321 §2.4) and an SMTPUTF8 recipient is delivered as the client wrote
// it; only its domain is normalized for comparison.
package mailaddr

import (
	"strings"
	"unicode/utf8"

	"golang.org/x/net/idna"
)

// Split returns the local part and the domain of addr as written, split at the
// last "@". Without an "@" (the null path, "postmaster") domain is "".
func Split(addr string) (local, domain string) {
	i := strings.LastIndexByte(addr, '@')
	if i < 0 {
		return addr, ""
	}
	return addr[:i], addr[i+1:]
}

// Domain returns the canonical domain of addr ("" when it has none). Angle
// brackets around a path ("<a@b>") are ignored.
func Domain(addr string) string {
	addr = strings.TrimSuffix(strings.TrimPrefix(addr, "<"), ">")
	_, d := Split(addr)
	return CanonicalDomain(d)
}

// CanonicalDomain returns d in canonical form: lower-case ASCII, no trailing
// dots, U-labels converted to A-labels. A name the IDNA lookup profile refuses
// (a label with a disallowed code point, invalid UTF-8) is only lower-cased,
// so that it still compares equal to itself; it fails later where it is
// looked up (ToASCII). It does not allocate when d is already canonical.
func CanonicalDomain(d string) string {
	d = strings.TrimRight(d, ".")
	if canonicalASCII(d) {
		return d
	}
	d = strings.ToLower(d)
	if isASCII(d) {
		return d
	}
	if a, err := ToASCII(d); err == nil {
		return a
	}
	return d
}

// ToASCII converts a domain to its A-label form with the IDNA2008 lookup
// profile (RFC 5891 §5: mapping, then validation), lower-cased and without
// a trailing dot. It fails on invalid UTF-8 and on labels the profile
// refuses. An ASCII domain is only lower-cased: its syntax is the caller's
// to check (DNS names in the wild hold "_", which the profile refuses).
func ToASCII(d string) (string, error) {
	d = strings.TrimRight(d, ".")
	if isASCII(d) {
		return strings.ToLower(d), nil
	}
	if !utf8.ValidString(d) {
		return "", &idnaError{d}
	}
	a, err := idna.Lookup.ToASCII(d)
	if err != nil {
		return "", err
	}
	// Mapping may turn a full stop such as U+3002 into a trailing ".".
	return strings.ToLower(strings.TrimRight(a, ".")), nil
}

// ToUnicode returns d with its A-labels shown as U-labels, for people to
// read (admin output, logs). A label that does not decode is left as is.
func ToUnicode(d string) string {
	d = CanonicalDomain(d)
	if !strings.Contains(d, "xn--") {
		return d
	}
	u, err := idna.Display.ToUnicode(d)
	if err != nil {
		return d
	}
	return u
}

// IsASCII reports whether s is all 7-bit ASCII (an address that needs no
// SMTPUTF8, RFC 6531).
func IsASCII(s string) bool { return isASCII(s) }

// canonicalASCII reports whether d is ASCII with no upper-case letter.
func canonicalASCII(d string) bool {
	for i := 0; i < len(d); i++ {
		if c := d[i]; c >= 0x80 || c >= 'A' && c <= 'Z' {
			return false
		}
	}
	return true
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// idnaError reports a domain that is not valid UTF-8.
type idnaError struct{ domain string }

func (e *idnaError) Error() string {
	return "mailaddr: domain " + strconvQuote(e.domain) + " is not valid UTF-8"
}

func strconvQuote(s string) string { return "\"" + strings.ToValidUTF8(s, "\uFFFD") + "\"" }
