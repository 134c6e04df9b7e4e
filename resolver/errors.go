package resolver

import (
	"errors"
	"fmt"
)

// Causes of resolution failures. They sit inside an *Error (see Error.Err) and
// can be tested with errors.Is.
var (
	// ErrNullMX: the domain publishes a lone "MX 0 ." record and so declares
	// that it accepts no mail (RFC 7505 §3).
	ErrNullMX = errors.New("domain accepts no mail (null MX, RFC 7505)")
	// ErrNoSuchDomain: the server answered NXDOMAIN (RFC 1035 §4.1.1, RCODE 3).
	ErrNoSuchDomain = errors.New("no such domain (NXDOMAIN)")
	// ErrNoMailHost: the domain has no MX and no A or AAAA records, so no
	// implicit MX exists either (RFC 5321 §5.1).
	ErrNoMailHost = errors.New("domain has neither MX nor address records")
	// ErrNoAddress: MX records exist but none of their hosts has an address.
	ErrNoAddress = errors.New("no MX host has an address")
	// ErrServerFailure: the server answered SERVFAIL (RCODE 2).
	ErrServerFailure = errors.New("DNS server failure (SERVFAIL)")
	// ErrRefused: the server answered REFUSED (RCODE 5).
	ErrRefused = errors.New("DNS query refused (REFUSED)")
	// ErrCNAMELoop: a CNAME chain led back to a name already visited.
	ErrCNAMELoop = errors.New("CNAME loop")
	// ErrCNAMEChain: a CNAME chain was longer than MaxCNAMEChain.
	ErrCNAMEChain = errors.New("CNAME chain too long")
	// ErrBadResponse: the answer did not match the question or carried an
	// unexpected RCODE.
	ErrBadResponse = errors.New("malformed or unexpected DNS response")
	// ErrInvalidDomain: the domain is not a syntactically valid host name.
	ErrInvalidDomain = errors.New("invalid domain name")
)

// Error is a failed resolution. Code and Enhanced are the SMTP reply code and
// enhanced status code (RFC 3463) that delivery uses when it bounces or
// defers a message because of it; Message is generic text that is safe to
// show to a peer; Err is the real cause for the log.
type Error struct {
	Domain   string
	Code     int    // 451, 550 or 556
	Enhanced string // "4.4.3", "5.1.2", "5.1.10", "5.4.4"
	Message  string
	Err      error
}

// Error returns "<code> <enhanced> <message>: <domain>: <cause>".
func (e *Error) Error() string {
	if e.Err == nil {
		return fmt.Sprintf("%d %s %s: %s", e.Code, e.Enhanced, e.Message, e.Domain)
	}
	return fmt.Sprintf("%d %s %s: %s: %v", e.Code, e.Enhanced, e.Message, e.Domain, e.Err)
}

// Unwrap returns the cause so that errors.Is(err, ErrNullMX) works.
func (e *Error) Unwrap() error { return e.Err }

// Permanent reports whether the failure is final (a 5xx code): the message
// should bounce instead of being retried.
func (e *Error) Permanent() bool { return e.Code >= 500 }

// Temporary reports whether a later retry may succeed (a 4xx code).
func (e *Error) Temporary() bool { return e.Code < 500 }

// transientError is the default: "temporary unless known permanent".
// 451 4.4.3 is "Directory server failure" (RFC 3463 §3.5).
func transientError(domain string, cause error) *Error {
	return &Error{Domain: domain, Code: 451, Enhanced: "4.4.3", Message: "temporary DNS failure", Err: cause}
}

// noSuchDomainError: 550 5.1.2 "Bad destination system address" (RFC 3463 §3.2).
func noSuchDomainError(domain string, cause error) *Error {
	return &Error{Domain: domain, Code: 550, Enhanced: "5.1.2", Message: "destination domain does not exist", Err: cause}
}

// nullMXError: 556 5.1.10 "Recipient address has null MX" (RFC 7505 §4.2, §4.3).
func nullMXError(domain string) *Error {
	return &Error{Domain: domain, Code: 556, Enhanced: "5.1.10", Message: "domain does not accept mail", Err: ErrNullMX}
}

// noRouteError: 550 5.4.4 "Unable to route" (RFC 3463 §3.5), used when every
// MX host is known not to exist.
func noRouteError(domain string, cause error) *Error {
	return &Error{Domain: domain, Code: 550, Enhanced: "5.4.4", Message: "unable to route to domain", Err: cause}
}
