package resolver

import (
	"context"
	"net/netip"
	"strconv"

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

// TLSA is one TLSA record (RFC 6698 §2.1) with its association data as
// raw bytes.
type TLSA struct {
	Usage        uint8
	Selector     uint8
	MatchingType uint8
	Data         []byte
}

// TLSAResult is the answer to a TLSA question.
type TLSAResult struct {
	// Records are the TLSA records found (nil for NXDOMAIN or NODATA). They
	// are shared with the cache and must not be modified.
	Records []TLSA
	// Secure: the answer, positive or negative, was DNSSEC-validated (AD
	// bit, Config.TrustAD), CNAMEs along the way included.
	Secure bool
}

// LookupTLSA returns the TLSA records of the SMTP service of host on
// port: "_PORT._tcp.HOST" (RFC 6698 §3, RFC 7672 §2.2.3). A name that does
// not exist or has no TLSA records gives no records and no error; any
// other failure (SERVFAIL, which is also how a validating resolver says
// "bogus", a timeout, …) is an error, and RFC 7672 §2.2 then forbids
// delivery to that host. Answers are cached like every other.
func (r *Resolver) LookupTLSA(ctx context.Context, host string, port int) (TLSAResult, error) {
	n, err := normalizeDomain(host)
	if err != nil {
		return TLSAResult{}, err
	}
	a, _, err := r.lookup(ctx, "_"+strconv.Itoa(port)+"._tcp."+n+".", dns.TypeTLSA)
	if err != nil {
		return TLSAResult{}, err
	}
	return TLSAResult{Records: a.tlsa, Secure: a.authentic}, nil
}
