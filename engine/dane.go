package engine

import (
	"context"
	"net/netip"

	"gannet/engine/dane"
	"gannet/engine/outbound"
	"gannet/mailaddr"
	"gannet/resolver"
)

// This file wires DANE for SMTP (RFC 7672) into delivery:
// outbound.Options.DANE looks up the TLSA records of MX hosts that the
// resolver found securely, when [resolver] dnssec = "trust-ad" and [tls]
// dane (or [tls_policy."DOMAIN"] dane) allow it. The records are cached
// by the resolver like every other answer; engine/dane checks
// certificates against them.

// daneFor is outbound.Options.DANE: the DANE state of MX host host of
// domain (found securely), whose SMTP service is on port.
func (e *Engine) daneFor(ctx context.Context, domain string, host resolver.Host, port int) outbound.DANEHost {
	if e.resolver == nil || !e.conf().Resolver.TrustAD() || !e.policy().daneEnabled(domain) {
		return outbound.DANEHost{}
	}
	if host.CNAME != "" {
		// RFC 7672 §2.2.2: for an alias, the TLSA records at the end of
		// its (secure) CNAME chain come first; that name is then also a
		// reference identifier for DANE-TA (§3.2.2).
		d, found := e.tlsaOf(ctx, host.CNAME, port)
		if found {
			d.Names = []string{host.CNAME}
			return d
		}
		if d.Err != nil {
			return d
		}
	}
	d, _ := e.tlsaOf(ctx, host.Name, port)
	return d
}

// tlsaOf looks up the TLSA records of _PORT._tcp.NAME; found is false when
// there are no secure records (DANE does not apply by them).
func (e *Engine) tlsaOf(ctx context.Context, name string, port int) (d outbound.DANEHost, found bool) {
	res, err := e.resolver.LookupTLSA(ctx, name, port)
	if err != nil {
		// RFC 7672 §2.2: a failed TLSA lookup for a secure host (SERVFAIL
		// is how a validating resolver reports a bogus RRset) rules the
		// host out for this attempt.
		return outbound.DANEHost{Err: err}, false
	}
	if !res.Secure || len(res.Records) == 0 {
		return outbound.DANEHost{}, false
	}
	d = outbound.DANEHost{Secure: true}
	for _, r := range res.Records {
		rec := dane.Record{Usage: r.Usage, Selector: r.Selector, MatchingType: r.MatchingType, Data: r.Data}
		if dane.Usable(rec) {
			d.Records = append(d.Records, rec)
		}
	}
	return d, true
}

// daneEnabled reports whether DANE applies to mail for domain.
func (p *livePolicy) daneEnabled(domain string) bool {
	if len(p.daneByDomain) > 0 {
		if on, ok := p.daneByDomain[mailaddr.CanonicalDomain(domain)]; ok {
			return on
		}
	}
	return p.cfg.TLS.DANE
}

// logDANEFailure logs a failure under DANE: the host was not used.
func (e *Engine) logDANEFailure(host string, peer netip.AddrPort, err error) {
	args := []any{"host", host, "err", err}
	if de, ok := err.(*outbound.DANEError); ok {
		args = append(args, "result_type", de.ResultType)
	}
	if peer.IsValid() {
		args = append(args, "peer", peer.String())
	}
	e.log.Warn("DANE failure", args...)
}
