package outbound

import (
	"crypto/x509"
	"errors"
	"net"
	"net/netip"

	"gannet/engine/tlsrpt"
)

// This file is what outbound tells of its TLS sessions for TLS reporting
// (RFC 8460; engine/tlsrpt counts and reports them): Options.TLSObserver
// hears of every STARTTLS negotiation on a new connection to an MX host,
// success or failure with its result type (§4.3), and of deliveries that
// an enforced MTA-STS policy stopped because no MX host matched it. A host
// under DANE is reported under its TLSA records (TLSSession.DANE, policy
// type "tlsa"), with DANEError's result type on failure, including a
// failed TLSA lookup (dnssec-invalid, no session and no address).
// Connections to relay_to or to an address literal are not reported: they
// have no policy domain.

// TLSObserver is told of TLS sessions (engine's TLS-RPT store is one).
// ObserveTLS is called on the delivery goroutine: it must be quick.
type TLSObserver interface {
	ObserveTLS(s TLSSession)
}

// TLSSession is one TLS negotiation with one MX address, or one MX host
// refused by its name under an MTA-STS policy.
type TLSSession struct {
	// Domain is the destination domain: the policy domain of the report.
	Domain string
	// STS is the MTA-STS policy the session ran under (Mode STSNone: none;
	// always for a DANE session).
	STS STSPolicy
	// DANE: the session ran under DANE (RFC 7672), the host's TLSA records,
	// not under STS. TLSA are the host's usable TLSA records in
	// presentation form ("3 1 1 ab12…"), the report's policy-string for
	// policy-type "tlsa" (RFC 8460 §4.4); none when the lookup failed or no
	// record was usable.
	DANE bool
	TLSA []string
	// Host is the MX host name; Peer its address (zero when the host was
	// refused by its name); Local the address Gannet connected from.
	Host  string
	Peer  netip.AddrPort
	Local netip.Addr
	// ResultType is "" for a session that negotiated TLS (and, under an
	// enforced policy, validated it), else an RFC 8460 result type
	// (tlsrpt.ResultSTARTTLSNotSupported, …).
	ResultType string
	// Err is the failure (nil on success); its text becomes the report's
	// failure-reason-code.
	Err error
	// From is the envelope sender of the transaction the session was
	// opened for (RFC 8460 §5.3: the sessions that carry TLS reports
	// should not be counted in the next report).
	From string
}

// errNoSTARTTLS is the failure of a server that did not offer STARTTLS
// under an opportunistic policy (the session went on in the clear).
var errNoSTARTTLS = errors.New("STARTTLS not offered")

// errDataAfterSTARTTLS is the cause of a STARTTLS refused because the
// server sent bytes after its 220 (a validation-failure in TLS reports).
var errDataAfterSTARTTLS = errors.New("data sent after 220 to STARTTLS")

// tlsResultType maps the failure of a STARTTLS stage to its result type
// (§4.3.1): no STARTTLS or a refused one is starttls-not-supported; a
// certificate for other names, expired or from an unknown authority have
// their own types; any other handshake failure is validation-failure.
func tlsResultType(serr *sessionError) string {
	cause := serr.refusal.Cause
	if cause == nil {
		return tlsrpt.ResultSTARTTLSNotSupported
	}
	var host x509.HostnameError
	var hostp *x509.HostnameError
	var inv x509.CertificateInvalidError
	var invp *x509.CertificateInvalidError
	var unk x509.UnknownAuthorityError
	var unkp *x509.UnknownAuthorityError
	switch {
	case errors.As(cause, &host), errors.As(cause, &hostp):
		return tlsrpt.ResultCertHostMismatch
	case errors.As(cause, &inv) && inv.Reason == x509.Expired, errors.As(cause, &invp) && invp.Reason == x509.Expired:
		return tlsrpt.ResultCertExpired
	case errors.As(cause, &unk), errors.As(cause, &unkp):
		return tlsrpt.ResultCertNotTrusted
	}
	return tlsrpt.ResultValidationFailure
}

// observeTLS reports the session of one dial with tryTLS set: c when it
// succeeded, serr when it did not (only STARTTLS failures count; a host
// that could not be reached had no TLS session).
func (m *Manager) observeTLS(p *sitePool, domain, from string, cd candidate, c *Client, serr *sessionError, asked *STSPolicy) {
	if m.opts.TLSObserver == nil || domain == "" || p.dial.tls.Mode == TLSDisabled {
		return
	}
	s := TLSSession{Domain: domain, STS: p.dial.sts, Host: cd.host, Peer: cd.addr, From: from}
	switch {
	case serr == nil && c.tls != nil:
		s.Local = c.local
	case serr == nil:
		s.Local, s.ResultType, s.Err = c.local, tlsrpt.ResultSTARTTLSNotSupported, errNoSTARTTLS
	case serr.stage == "STARTTLS":
		s.Local, s.ResultType, s.Err = serr.local, tlsResultType(serr), serr
		if serr.refusal.Cause != nil {
			s.Err = serr.refusal.Cause
		}
	default:
		return
	}
	if s.STS.Mode == STSNone && asked.FetchFailure != "" {
		// The domain's policy could not be fetched (RFC 8460 §4.3.2.2):
		// that is the session's failure, whatever TLS did.
		s.STS, s.ResultType, s.Err = *asked, asked.FetchFailure, asked.FetchErr
		if s.Err == nil {
			s.Err = errors.New(asked.FetchFailure)
		}
	}
	if s.ResultType == "" && s.STS.Mode != STSNone && !s.STS.allows(cd.host) {
		// Testing mode: a host outside the policy took the session; it
		// fails the policy's validation all the same (RFC 8461 §4.1).
		s.ResultType, s.Err = tlsrpt.ResultValidationFailure, stsMismatch(cd.host, s.STS.Domain)
	}
	m.opts.TLSObserver.ObserveTLS(s)
}

// observeRefused reports the MX hosts an enforced policy left no session
// with.
func (m *Manager) observeRefused(p *sitePool, domain, from string, hosts []string) {
	if m.opts.TLSObserver == nil || domain == "" {
		return
	}
	for _, h := range hosts {
		m.opts.TLSObserver.ObserveTLS(TLSSession{Domain: domain, STS: p.dial.sts, Host: h, From: from,
			ResultType: tlsrpt.ResultValidationFailure, Err: stsMismatch(h, p.dial.sts.Domain)})
	}
}

// observeDANE reports the session of one dial to a host under DANE: a
// success when de is nil, else the failure de says (its result type);
// local is the address connected from (zero when the TLSA lookup failed
// and no connection was made, and peer with it).
func (m *Manager) observeDANE(domain, from string, cd candidate, local netip.Addr, de *DANEError) {
	if m.opts.TLSObserver == nil || domain == "" || cd.dane == nil {
		return
	}
	s := TLSSession{Domain: domain, DANE: true, Host: cd.host, Peer: cd.addr, Local: local, From: from}
	for _, r := range cd.dane.Records {
		s.TLSA = append(s.TLSA, r.String())
	}
	if de != nil {
		s.ResultType, s.Err = de.ResultType, de.Err
		if de.ResultType == ResultDNSSECInvalid {
			s.Peer = netip.AddrPort{}
		}
	}
	m.opts.TLSObserver.ObserveTLS(s)
}

// localAddrOf returns the local address of a connection.
func localAddrOf(c net.Conn) netip.Addr {
	if ta, ok := c.LocalAddr().(*net.TCPAddr); ok {
		if a, ok := netip.AddrFromSlice(ta.IP); ok {
			return a.Unmap()
		}
	}
	return netip.Addr{}
}
