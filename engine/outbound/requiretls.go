package outbound

import (
	"bytes"
	"fmt"

	"gannet/msgheader"
)

// This file is how REQUIRETLS (RFC 8689) bears on a delivery.
//
// A message received with MAIL … REQUIRETLS (Envelope.RequireTLS) goes only
// to an MX host that is validated (§4.2.1): one under DANE with usable TLSA
// records (RFC 7672), or one that matches the destination's MTA-STS policy
// (RFC 8461; mode enforce or testing: the sender's requirement makes the
// policy binding whatever its mode). The session must be TLS 1.2 or later
// with a certificate valid for the MX name (or matching the TLSA records),
// the server must offer REQUIRETLS, and MAIL then carries REQUIRETLS. With
// relay_to, the smarthost stands for the MX: TLS with a certificate valid
// for its name, and REQUIRETLS offered. Anything else is a transient
// failure 451 4.7.10 that says why, never a delivery in the clear; the
// delivery loop bounces the message with 5.7.10 when it expires that way
// (RequireTLSFailure).
//
// A message with the header field "TLS-Required: No" (§5) and without
// REQUIRETLS is delivered as if the destination published no MTA-STS policy
// and no TLSA records: opportunistic TLS per [tls], no enforcement. When
// the message also came with REQUIRETLS, the header field is ignored (§4.1:
// REQUIRETLS wins).

// requireTLSCode is the enhanced code of a REQUIRETLS failure (RFC 8689
// §5, §7.3: "REQUIRETLS support required"); transient until the message
// expires.
const requireTLSCode = "4.7.10"

// RequireTLSFailure reports whether a transient reply is a REQUIRETLS
// failure (451 4.7.10 from this package): a message that expires on it is
// bounced with 5.7.10 rather than expired (RFC 8689 §5).
func RequireTLSFailure(enhanced string) bool { return enhanced == requireTLSCode }

// deliveryTLS is what the message asks of the transport: the pool key part
// and the pool's dial choices.
type deliveryTLS uint8

const (
	deliveryDefault     deliveryTLS = iota
	deliveryRequireTLS              // MAIL … REQUIRETLS (RFC 8689 §4.2.1)
	deliveryTLSOptional             // "TLS-Required: No" (RFC 8689 §5)
)

// deliveryTLSOf is what env asks for.
func deliveryTLSOf(env *Envelope) deliveryTLS {
	switch {
	case env.RequireTLS:
		return deliveryRequireTLS
	case TLSRequiredNo(env.Body):
		return deliveryTLSOptional
	}
	return deliveryDefault
}

// TLSRequiredNo reports whether the header section of msg has a
// TLS-Required field whose value is "No" (RFC 8689 §5; case-insensitive,
// surrounding white space ignored).
func TLSRequiredNo(msg []byte) bool {
	for f := range msgheader.Fields(msg) {
		if f.Is("TLS-Required") && bytes.EqualFold(bytes.TrimSpace(f.Value()), []byte("no")) {
			return true
		}
	}
	return false
}

// The result types (Outcome.TLSResultType, tls_result_type) of REQUIRETLS
// failures that are not TLS negotiation failures, for which RFC 8460 has
// no result type.
const (
	// ResultRequireTLSNotOffered: the MX host negotiated TLS but did not
	// offer REQUIRETLS (RFC 8689 §4.2.1 step 3).
	ResultRequireTLSNotOffered = "requiretls-not-offered"
	// ResultRequireTLSNotValidated: no MX host of the destination is
	// validated by MTA-STS or DANE (RFC 8689 §4.2.1 steps 1 and 2).
	ResultRequireTLSNotValidated = "requiretls-not-validated"
)

// requireTLSError is a REQUIRETLS failure: 451 4.7.10 with a text that says
// why, of result type ResultRequireTLSNotOffered (the caller changes it
// when another applies).
func requireTLSError(format string, args ...any) *sessionError {
	serr := &sessionError{stage: "REQUIRETLS", tlsResult: ResultRequireTLSNotOffered}
	serr.refusal.Reply = localReply(451, requireTLSCode, "REQUIRETLS: "+fmt.Sprintf(format, args...))
	return serr
}

// requireTLSRefusal rewords a session failure at STARTTLS of a REQUIRETLS
// message: 451 4.7.10, saying what failed.
func requireTLSRefusal(serr *sessionError) *sessionError {
	text := serr.refusal.Reply.String()
	if len(serr.refusal.Reply.Lines) > 0 {
		text = serr.refusal.Reply.Lines[0]
	}
	out := *serr
	out.refusal.Reply = localReply(451, requireTLSCode, "REQUIRETLS: no validated TLS: "+text)
	out.tlsResult = tlsResultType(serr)
	return &out
}

// validatedForRequireTLS reports whether the MX host may take a REQUIRETLS
// message (RFC 8689 §4.2.1 steps 1 and 2): it is under DANE with usable
// TLSA records, or it matches the domain's MTA-STS policy.
func validatedForRequireTLS(host string, dh *DANEHost, sts *STSPolicy) bool {
	if dh != nil {
		return dh.Err == nil && len(dh.Records) > 0
	}
	return sts.Mode != STSNone && sts.allows(host)
}
