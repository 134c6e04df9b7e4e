package outbound

import (
	"errors"
	"fmt"
	"net/netip"
)

// This file is how MTA-STS (RFC 8461) bears on a delivery. The policy is
// found by the caller (Options.STS; engine/mtasts fetches and caches it);
// the Manager applies it per MX host (§5): in enforce mode only MX hosts
// that match the policy are tried, over TLS 1.2 or later with a
// certificate valid for the MX name (§4.2), and every other outcome is a
// transient failure that says why (4.7.5); in testing mode delivery goes
// on as before and the failures are reported (Options.OnTLSFailure with
// policy "sts") and noted in the Outcome.

// STSMode is the mode of the MTA-STS policy in force (RFC 8461 §5).
type STSMode uint8

const (
	// STSNone: no policy, or a policy of mode none.
	STSNone STSMode = iota
	// STSTesting: deliver as without a policy, report what would fail.
	STSTesting
	// STSEnforce: only matching MX hosts, only over validated TLS.
	STSEnforce
)

// HostMatcher says whether an MX host name matches a policy's mx patterns
// (*mtasts.Policy is one).
type HostMatcher interface {
	Match(host string) bool
}

// STSPolicy is the MTA-STS policy in force for a destination domain, as
// Options.STS returns it.
type STSPolicy struct {
	Mode   STSMode
	Domain string      // the policy domain (the destination domain)
	ID     string      // the policy's TXT id; with Domain, part of the pool key
	Hosts  HostMatcher // the mx patterns; nil matches nothing
	// FetchFailure, with Mode STSNone, says that the domain publishes an
	// MTA-STS record but its policy could not be fetched: the RFC 8460
	// result type (tlsrpt.ResultSTSPolicyFetchError, …) and the error.
	// Delivery goes on as without a policy; TLSObserver reports the
	// sessions as failures of the domain's "sts" policy.
	FetchFailure string
	FetchErr     error
}

func (s *STSPolicy) allows(host string) bool { return s.Hosts != nil && s.Hosts.Match(host) }

// The values of Outcome.TLSPolicy (the tls_policy field of the log
// records): which TLS policy the delivery ran under.
const (
	TLSPolicySTSEnforce    = "sts-enforce"   // MTA-STS, mode enforce
	TLSPolicySTSTesting    = "sts-testing"   // MTA-STS, mode testing
	TLSPolicyOpportunistic = "opportunistic" // [tls] mode opportunistic(-insecure), no MTA-STS policy
	TLSPolicyRequired      = "required"      // [tls] mode required, no MTA-STS policy
	TLSPolicyNone          = "none"          // [tls] mode disabled
)

// The policy labels given to Options.OnTLSFailure
// (gannet_tls_failures_total{policy}).
const (
	FailurePolicySTS  = "sts"  // a failure under an MTA-STS policy (enforce or testing)
	FailurePolicyNone = "none" // any other TLS failure
)

// policyName is the Outcome.TLSPolicy of connections made under mode and
// sts.
func policyName(mode TLSMode, sts STSMode) string {
	switch {
	case sts == STSEnforce:
		return TLSPolicySTSEnforce
	case sts == STSTesting:
		return TLSPolicySTSTesting
	case mode == TLSRequired:
		return TLSPolicyRequired
	case mode == TLSDisabled:
		return TLSPolicyNone
	}
	return TLSPolicyOpportunistic
}

// enforceSTS returns pol made strict for an enforced MTA-STS policy:
// STARTTLS required, certificates verified against the MX name, TLS 1.2
// at least (§4.2, §5), no fallback to the clear.
func enforceSTS(pol TLSPolicy) TLSPolicy {
	pol.Mode = TLSRequired
	pol.FallbackPlaintext = false
	if pol.MinVersion < 0x0303 { // tls.VersionTLS12
		pol.MinVersion = 0x0303
	}
	return pol
}

// stsMismatch is the failure of an MX host that the policy does not
// allow.
func stsMismatch(host, domain string) error {
	return errors.New("MTA-STS: " + mismatchText(host, domain))
}

func mismatchText(host, domain string) string {
	return host + " does not match the policy of " + domain
}

// stsRefusal rewords a session failure at STARTTLS under an enforced
// policy: 451 4.7.5, saying that MTA-STS is why the host was not used.
func stsRefusal(serr *sessionError, domain string) *sessionError {
	text := serr.refusal.Reply.String()
	if len(serr.refusal.Reply.Lines) > 0 {
		text = serr.refusal.Reply.Lines[0]
	}
	out := *serr
	out.refusal.Reply = localReply(451, "4.7.5", fmt.Sprintf("MTA-STS: policy of %s enforced: %s", domain, text))
	out.tlsResult = tlsResultType(serr)
	return &out
}

// reportSTS calls OnTLSFailure for an MTA-STS failure.
func (m *Manager) reportSTS(resultType, host string, peer netip.AddrPort, err error) {
	if m.opts.OnTLSFailure != nil {
		m.opts.OnTLSFailure(FailurePolicySTS, resultType, host, peer, err)
	}
}
