package resolver

import (
	"errors"

	"gannet/smtpwire"
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

// Failures are *smtpwire.Error values (the one error model): the reply is
// the SMTP code, enhanced status code (RFC 3463) and generic text naming the
// domain, safe to show to a peer, that delivery uses when it bounces or
// defers a message because of the failure; the cause is one of the Err…
// values above (or a transport error), reachable with errors.Is.

// failure builds the *smtpwire.Error of a failed resolution of domain.
func failure(code int, enhanced, text, domain string, cause error) *smtpwire.Error {
	return &smtpwire.Error{
		Reply: smtpwire.Reply{Code: code, Enhanced: enhanced, Lines: []string{text + ": " + domain}},
		Cause: cause,
	}
}

// transientError is the default: "temporary unless known permanent".
// 451 4.4.3 is "Directory server failure" (RFC 3463 §3.5).
func transientError(domain string, cause error) *smtpwire.Error {
	return failure(451, "4.4.3", "temporary DNS failure", domain, cause)
}

// noSuchDomainError: 550 5.1.2 "Bad destination system address" (RFC 3463 §3.2).
func noSuchDomainError(domain string, cause error) *smtpwire.Error {
	return failure(550, "5.1.2", "destination domain does not exist", domain, cause)
}

// nullMXError: 556 5.1.10 "Recipient address has null MX" (RFC 7505 §4.2, §4.3).
func nullMXError(domain string) *smtpwire.Error {
	return failure(556, "5.1.10", "domain does not accept mail", domain, ErrNullMX)
}

// noRouteError: 550 5.4.4 "Unable to route" (RFC 3463 §3.5), used when every
// MX host is known not to exist.
func noRouteError(domain string, cause error) *smtpwire.Error {
	return failure(550, "5.4.4", "unable to route to domain", domain, cause)
}
