package outbound

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"gannet/engine/dane"
)

// This file is how DANE for SMTP (RFC 7672) bears on a delivery. The
// resolver says which MX hosts were found securely (DNSSEC, the AD bit);
// for those the Manager asks Options.DANE for the TLSA records of the
// host. A secure TLSA RRset with usable records makes TLS mandatory to
// that host (TLS 1.2 or later, no fallback to the clear) and the server's
// certificate is checked against the records (engine/dane) instead of the
// WebPKI; a failure is a transient 451 4.7.5 for that host that says why,
// reported with policy "dane" and its RFC 8460 result type. DANE takes
// precedence over MTA-STS for such a host (RFC 8461 §2). Hosts found
// insecurely are delivered to as before (MTA-STS or the [tls] mode).

// DANEHost is the DANE state of one MX host, as Options.DANE returns it.
type DANEHost struct {
	// Secure: a DNSSEC-validated TLSA RRset with at least one record
	// exists for the host. DANE then applies: TLS is mandatory.
	Secure bool
	// Records are the usable records of that RRset (dane.Usable). With
	// Secure set and no usable record, TLS is mandatory but the certificate
	// is not checked (RFC 7672 §2.2: unusable records still rule out the
	// clear).
	Records []dane.Record
	// Err: the TLSA lookup failed (SERVFAIL, which is how a validating
	// resolver answers a bogus RRset, or a timeout). RFC 7672 §2.2 forbids
	// delivery to the host then.
	Err error
	// Names are reference identifiers for DANE-TA besides the MX host name:
	// the TLSA base domain when the records were found at the end of the
	// host's CNAME chain (RFC 7672 §3.2.2).
	Names []string
}

// applies reports whether DANE rules the connection to the host.
func (d *DANEHost) applies() bool { return d.Secure || d.Err != nil }

// TLSPolicyDANE is the Outcome.TLSPolicy (tls_policy) of a delivery to an
// MX host authenticated by DANE, and FailurePolicyDANE the policy label
// given to Options.OnTLSFailure for failures under DANE.
const (
	TLSPolicyDANE     = "dane"
	FailurePolicyDANE = "dane"
)

// Result types (RFC 8460 §4.3.2.1) of DANEError.
const (
	// ResultTLSAInvalid: no usable TLSA record matches the certificate
	// chain the server presented.
	ResultTLSAInvalid = "tlsa-invalid"
	// ResultDNSSECInvalid: the TLSA lookup for the host failed (no valid
	// answer from the validating resolver).
	ResultDNSSECInvalid = "dnssec-invalid"
	// ResultDANERequired: the TLSA records made TLS mandatory but the
	// host did not complete STARTTLS (not offered, refused, or the
	// handshake failed before the certificate check).
	ResultDANERequired = "dane-required"
	// ResultSTARTTLSNotSupported: the host did not offer STARTTLS.
	ResultSTARTTLSNotSupported = "starttls-not-supported"
)

// DANEError is a failure under DANE, given to Options.OnTLSFailure with
// FailurePolicyDANE: what happened (the log's text) and its RFC 8460
// result type (for TLS reports).
type DANEError struct {
	Host       string
	ResultType string // ResultTLSAInvalid, …
	Err        error
}

func (e *DANEError) Error() string { return "DANE: " + e.Err.Error() }
func (e *DANEError) Unwrap() error { return e.Err }

// certMismatch is the error of a certificate that matches no TLSA record;
// it travels out of crypto/tls's handshake through VerifyConnection.
type certMismatch struct {
	host string
	err  error // from dane.Verify
}

func (e *certMismatch) Error() string {
	if errors.Is(e.err, dane.ErrNoMatch) {
		return "no TLSA record matches the certificate of " + e.host
	}
	return "the certificate of " + e.host + " fails the TLSA check: " + e.err.Error()
}
func (e *certMismatch) Unwrap() error { return e.err }

// daneTLS returns pol made strict for a host under DANE: STARTTLS
// required, TLS 1.2 at least (RFC 7672 §1.3), no fallback to the clear,
// and the certificate checked against the TLSA records rather than the
// WebPKI (names and dates ignored for DANE-EE, §3.1.1; the MX name checked
// for DANE-TA, §3.2.2). With no usable record the certificate is not
// checked at all (§2.2).
func daneTLS(pol TLSPolicy, d *DANEHost, host string, now func() time.Time) TLSPolicy {
	pol.Mode = TLSRequired
	pol.FallbackPlaintext = false
	if pol.MinVersion < tls.VersionTLS12 {
		pol.MinVersion = tls.VersionTLS12
	}
	pol.skipVerify = true
	if len(d.Records) > 0 {
		records, names := d.Records, append([]string{host}, d.Names...)
		pol.verify = func(cs tls.ConnectionState) error {
			if err := dane.Verify(records, cs.PeerCertificates, names, now()); err != nil {
				return &certMismatch{host: host, err: err}
			}
			return nil
		}
	}
	return pol
}

// daneRefusal is the failure of a host under DANE: 451 4.7.5 with a text
// that says why, and the DANEError to report. serr is the session failure
// at STARTTLS (nil when the TLSA lookup failed, lookupErr); port is the
// SMTP port, part of the TLSA name.
func daneRefusal(host string, port uint16, serr *sessionError, lookupErr error) (*sessionError, *DANEError) {
	de := &DANEError{Host: host}
	out := &sessionError{stage: "STARTTLS"}
	var cm *certMismatch
	switch {
	case lookupErr != nil:
		de.ResultType = ResultDNSSECInvalid
		de.Err = fmt.Errorf("TLSA lookup for _%d._tcp.%s failed: %w", port, host, lookupErr)
		out.refusal.Cause = lookupErr
	case errors.As(serr.refusal.Cause, &cm):
		de.ResultType = ResultTLSAInvalid
		de.Err = cm
		*out = *serr
	default:
		de.ResultType = ResultDANERequired
		if !serr.tlsFailed {
			de.ResultType = ResultSTARTTLSNotSupported
		}
		text := serr.refusal.Reply.String()
		if len(serr.refusal.Reply.Lines) > 0 {
			text = serr.refusal.Reply.Lines[0]
		}
		de.Err = fmt.Errorf("TLS required by the TLSA records of %s: %s", host, text)
		*out = *serr
	}
	out.refusal.Reply = localReply(451, "4.7.5", de.Error())
	out.tlsResult = de.ResultType
	return out, de
}

// reportDANE calls OnTLSFailure for a failure under DANE.
func (m *Manager) reportDANE(host string, peer netip.AddrPort, de *DANEError) {
	if m.opts.OnTLSFailure != nil {
		m.opts.OnTLSFailure(FailurePolicyDANE, de.ResultType, host, peer, de)
	}
}
