package resolver

import (
	"context"
	"net/netip"

	"github.com/miekg/dns"
)

// LookupTXT returns the TXT records of name, each record's
// character-strings joined into one text. A name that does not exist or has
// no TXT records gives no texts and no error; other failures (SERVFAIL,
// timeouts, …) are errors. Answers are cached like every other (by TTL,
// negative answers by their SOA, RFC 2308). MTA-STS looks up
// "_mta-sts.DOMAIN" with it (RFC 8461 §3.1).
func (r *Resolver) LookupTXT(ctx context.Context, name string) ([]string, error) {
	n, err := normalizeDomain(name)
	if err != nil {
		return nil, err
	}
	a, _, err := r.lookup(ctx, n+".", dns.TypeTXT)
	if err != nil {
		return nil, err
	}
	return a.txt, nil
}

// LookupAddrs returns the IPv4 and IPv6 addresses of host (IPv4 first), as
// for an MX host. A host without addresses gives an error wrapping
// ErrNoAddress. MTA-STS resolves "mta-sts.DOMAIN" with it, so that the
// policy fetch asks the configured nameservers, never the system resolver.
func (r *Resolver) LookupAddrs(ctx context.Context, host string) ([]netip.Addr, error) {
	n, err := normalizeDomain(host)
	if err != nil {
		return nil, err
	}
	h := hostLookup{name: n}
	r.lookupHost(ctx, &h)
	if len(h.addrs) > 0 {
		return h.addrs, nil
	}
	if h.err != nil {
		return nil, h.err
	}
	return nil, errorsJoinName(n+".", dns.TypeA, ErrNoAddress)
}
