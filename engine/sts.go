package engine

import (
	"context"
	"crypto/x509"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"

	"gannet/engine/mtasts"
	"gannet/engine/outbound"
	"gannet/mailaddr"
)

// This file wires MTA-STS (RFC 8461, engine/mtasts) into delivery:
// outbound.Options.STS asks the policy cache for every delivery to MX
// hosts, unless [tls] mta_sts or [tls_policy."DOMAIN"] mta_sts turns it
// off; policy fetches and failures are counted and logged.

// stsDir is where the policy cache keeps its file: in the spool directory,
// beside the spool's own segments and index.
func stsDir(spoolPath string) string { return filepath.Join(spoolPath, "mta-sts") }

// caRoots returns the system roots plus the certificates of [tls] ca_file
// (nil when there is none: crypto/tls then uses the system roots).
func caRoots(file string) (*x509.CertPool, error) {
	if file == "" {
		return nil, nil
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	pool, err := x509.SystemCertPool()
	if err != nil || pool == nil {
		pool = x509.NewCertPool()
	}
	if !pool.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("%s holds no PEM certificate", file)
	}
	return pool, nil
}

// buildSTS makes the policy cache (only when delivery resolves MX hosts).
func (e *Engine) buildSTS() error {
	if e.resolver == nil {
		return nil
	}
	c, err := mtasts.NewCache(mtasts.Options{
		Resolver: e.resolver,
		Fetcher:  stsFetcher{e},
		Dir:      stsDir(e.cfg.Spool.Path),
		Now:      e.now,
		OnFetch: func(domain, result string, err error) {
			e.metrics.MTASTSFetch(result).Inc()
			if err != nil {
				e.log.Warn("MTA-STS policy fetch failed", "domain", domain, "result", result, "err", err)
			} else {
				e.log.Info("MTA-STS policy fetched", "domain", domain)
			}
		},
		OnSaveError: func(err error) { e.log.Error("MTA-STS policy cache not saved", "err", err) },
	})
	if err != nil && c == nil {
		return fmt.Errorf("MTA-STS policy cache: %w", err)
	}
	if err != nil {
		e.log.Warn("MTA-STS policy cache ignored; policies will be fetched again", "err", err)
	}
	e.sts = c
	return nil
}

// stsFetcher fetches policies with the roots of the configuration in force
// ([tls] ca_file is applied by a reload).
type stsFetcher struct{ e *Engine }

func (f stsFetcher) Fetch(ctx context.Context, domain string) (*mtasts.Policy, error) {
	fe := mtasts.Fetcher{Resolver: f.e.resolver, RootCAs: f.e.policy().roots}
	return fe.Fetch(ctx, domain)
}

// stsFor is outbound.Options.STS: the MTA-STS policy in force for domain,
// unless [tls] mta_sts or [tls_policy."DOMAIN"] mta_sts is false.
func (e *Engine) stsFor(ctx context.Context, domain string) outbound.STSPolicy {
	if e.sts == nil || !e.policy().stsEnabled(domain) {
		return outbound.STSPolicy{}
	}
	r := e.sts.Lookup(ctx, domain)
	switch {
	case r.Enforced():
		return outbound.STSPolicy{Mode: outbound.STSEnforce, Domain: r.Domain, ID: r.ID, Hosts: r.Policy}
	case r.Testing():
		return outbound.STSPolicy{Mode: outbound.STSTesting, Domain: r.Domain, ID: r.ID, Hosts: r.Policy}
	case r.FetchResult != "":
		// For TLS-RPT: the domain's policy could not be fetched.
		return outbound.STSPolicy{Domain: r.Domain, FetchFailure: fetchResultType(r.FetchResult, r.FetchErr), FetchErr: r.FetchErr}
	}
	return outbound.STSPolicy{}
}

// stsEnabled reports whether MTA-STS applies to mail for domain.
func (p *livePolicy) stsEnabled(domain string) bool {
	if len(p.stsByDomain) > 0 {
		if on, ok := p.stsByDomain[mailaddr.CanonicalDomain(domain)]; ok {
			return on
		}
	}
	return p.cfg.TLS.MTASTS
}

// tlsFailure is outbound.Options.OnTLSFailure: counted in
// gannet_tls_failures_total{policy,result_type}; failures under an
// MTA-STS policy or DANE are logged too (in testing mode they are the only
// trace).
func (e *Engine) tlsFailure(policy, resultType, host string, peer netip.AddrPort, err error) {
	e.metrics.TLSFailure(policy, resultType).Inc()
	if policy == outbound.FailurePolicyDANE {
		e.logDANEFailure(host, peer, err)
		return
	}
	if policy == outbound.FailurePolicySTS {
		args := []any{"host", host, "result_type", resultType, "err", err}
		if peer.IsValid() {
			args = append(args, "peer", peer.String())
		}
		e.log.Info("MTA-STS failure", args...)
	}
}
