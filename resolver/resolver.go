package resolver

import (
	"cmp"
	"context"
	"errors"
	"math/rand/v2"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"
	"golang.org/x/sync/singleflight"
)

// Route is where mail for a domain goes.
//
// The caller owns the Route and its Hosts slice; the Addrs slices inside are
// shared with the cache and must not be modified.
type Route struct {
	Domain   string  // lower-case ASCII, no trailing dot
	Hosts    []Host  // by preference, lowest first; equal preference shuffled
	Site     SiteKey // the MX hosts' site: the key of delivery's ready queue
	Implicit bool    // no MX: the domain's own A/AAAA (RFC 5321 §5.1)
	Literal  bool    // the domain was an address literal "[192.0.2.1]" (RFC 5321 §4.1.3)
}

// Host is one mail exchanger with its addresses, IPv4 first, then IPv6.
// Hosts without any address are left out of a Route.
type Host struct {
	Name  string // lower-case, no trailing dot
	Pref  uint16
	Addrs []netip.Addr
	// Secure: the answers that led to this host (the MX RRset, or its
	// absence for an implicit MX, and the host's A and AAAA answers) were
	// all DNSSEC-validated (AD bit, Config.TrustAD). Only then may its TLSA
	// records be used (RFC 7672 §2.2.1, §2.2.2).
	Secure bool
	// CNAME is the name the addresses were found at when Name is an alias
	// (the end of its CNAME chain; lower-case, no trailing dot), else "".
	// With Secure, RFC 7672 §2.2.2 looks for TLSA records there first.
	CNAME string
}

// Resolver finds the mail route of domains. It is safe for concurrent use.
type Resolver struct {
	now        func() time.Time
	transport  *transport
	minTTL     time.Duration
	maxTTL     time.Duration
	maxMXHosts int
	trustAD    bool // Config.TrustAD

	answers *ttlCache[question, answer] // per (name, type)
	routes  *ttlCache[string, *Route]   // per domain; templates, never handed out
	flight  singleflight.Group          // coalesces identical questions and routes

	randMu sync.Mutex
	rand   *rand.Rand // nil: the runtime's source
}

// question is the key of the answer cache: a lower-case FQDN and a type.
type question struct {
	name  string
	qtype uint16
}

// New returns a Resolver. With no Nameservers it reads cfg.ResolvConf
// (default /etc/resolv.conf).
func New(cfg Config) (*Resolver, error) {
	servers := cfg.Nameservers
	timeout := cfg.Timeout
	if len(servers) == 0 {
		path := cfg.ResolvConf
		if path == "" {
			path = DefaultResolvConf
		}
		s, t, err := ParseResolvConf(path)
		if err != nil {
			return nil, err
		}
		servers = s
		if timeout == 0 {
			timeout = t
		}
	}
	norm := make([]string, 0, len(servers))
	for _, s := range servers {
		n, err := normalizeServer(s)
		if err != nil {
			return nil, err
		}
		norm = append(norm, n)
	}
	if timeout <= 0 {
		timeout = defaultTimeout
	}
	r := &Resolver{
		now:        cfg.Now,
		transport:  newTransport(norm, timeout, cfg.TrustAD),
		minTTL:     cmp.Or(cfg.MinTTL, defaultMinTTL),
		maxTTL:     cmp.Or(cfg.MaxTTL, defaultMaxTTL),
		maxMXHosts: cmp.Or(cfg.MaxMXHosts, defaultMaxMXHosts),
		trustAD:    cfg.TrustAD,
	}
	if r.now == nil {
		r.now = time.Now
	}
	if r.minTTL > r.maxTTL {
		r.minTTL = r.maxTTL
	}
	entries := cmp.Or(cfg.MaxEntries, defaultMaxEntries)
	r.answers = newTTLCache[question, answer](entries)
	r.routes = newTTLCache[string, *Route](entries)
	if cfg.Rand != nil {
		r.rand = rand.New(cfg.Rand)
	}
	return r, nil
}

// Nameservers returns the servers the Resolver asks, in order.
func (r *Resolver) Nameservers() []string { return slices.Clone(r.transport.servers) }

// Resolve returns the route for mail to domain: its MX hosts by preference
// with their addresses (RFC 5321 §5.1). Failures are *smtpwire.Error values: null MX
// (RFC 7505) is 556 5.1.10, a domain that does not exist 550 5.1.2, MX hosts
// that all do not exist 550 5.4.4; any other failure is transient, 451 4.4.3.
//
// Answers are cached by their TTL and negative answers by their SOA (RFC
// 2308); concurrent calls for the same domain share one lookup. A call
// returns when ctx ends even if the shared lookup goes on.
func (r *Resolver) Resolve(ctx context.Context, domain string) (*Route, error) {
	if ip, ok := parseAddressLiteral(domain); ok {
		return &Route{
			Domain:  domain,
			Hosts:   []Host{{Name: domain, Addrs: []netip.Addr{ip}}},
			Site:    SiteKey{name: domain},
			Literal: true,
		}, nil
	}
	d, err := normalizeDomain(domain)
	if err != nil {
		return nil, noSuchDomainError(domain, err)
	}
	if tmpl, _, ok := r.routes.get(d, r.now()); ok {
		return r.instantiate(tmpl), nil
	}
	ch := r.flight.DoChan("route "+d, func() (any, error) {
		// The lookup is shared, so no single caller's cancellation may end
		// it; every query in it is bounded by the configured timeout.
		return r.buildRoute(context.WithoutCancel(ctx), d)
	})
	select {
	case res := <-ch:
		if res.Err != nil {
			return nil, res.Err
		}
		return r.instantiate(res.Val.(*Route)), nil
	case <-ctx.Done():
		return nil, transientError(d, ctx.Err())
	}
}

// instantiate copies a cached route for one caller and shuffles its hosts of
// equal preference: RFC 5321 §5.1 asks senders to pick randomly among them,
// which spreads load over the servers of a site.
func (r *Resolver) instantiate(tmpl *Route) *Route {
	rt := new(Route)
	*rt = *tmpl
	rt.Hosts = slices.Clone(tmpl.Hosts)
	for i := 0; i < len(rt.Hosts); {
		j := i + 1
		for j < len(rt.Hosts) && rt.Hosts[j].Pref == rt.Hosts[i].Pref {
			j++
		}
		if j-i > 1 {
			r.shuffle(rt.Hosts[i:j])
		}
		i = j
	}
	return rt
}

func (r *Resolver) shuffle(hosts []Host) {
	swap := func(a, b int) { hosts[a], hosts[b] = hosts[b], hosts[a] }
	if r.rand == nil {
		rand.Shuffle(len(hosts), swap)
		return
	}
	r.randMu.Lock()
	r.rand.Shuffle(len(hosts), swap)
	r.randMu.Unlock()
}

// buildRoute resolves domain d (normalized) and caches the resulting route
// until the first of the answers it was built from expires.
func (r *Resolver) buildRoute(ctx context.Context, d string) (*Route, error) {
	fqdn := d + "."
	mx, mxExp, err := r.lookup(ctx, fqdn, dns.TypeMX)
	if err != nil {
		return nil, transientError(d, err)
	}
	var rt *Route
	var exp time.Time
	switch mx.outcome {
	case outcomeNXDomain:
		return nil, noSuchDomainError(d, ErrNoSuchDomain)
	case outcomeNoData:
		rt, exp, err = r.implicitRoute(ctx, d, mx.authentic)
	default:
		rt, exp, err = r.mxRoute(ctx, d, mx.mx, mx.authentic)
	}
	if err != nil {
		return nil, err
	}
	if !exp.IsZero() && !mxExp.IsZero() {
		r.routes.put(d, rt, minTime(exp, mxExp), r.now())
	}
	return rt, nil
}

// implicitRoute handles a domain without MX records: RFC 5321 §5.1 treats
// its own address records as an MX with preference 0.
func (r *Resolver) implicitRoute(ctx context.Context, d string, mxSecure bool) (*Route, time.Time, error) {
	h := hostLookup{name: d}
	r.lookupHost(ctx, &h)
	if len(h.addrs) == 0 {
		if h.err != nil {
			return nil, time.Time{}, transientError(d, h.err)
		}
		// The domain exists (the MX query said NODATA) but has nowhere to
		// deliver to: that will not change on its own.
		return nil, time.Time{}, noSuchDomainError(d, ErrNoMailHost)
	}
	rt := &Route{
		Domain:   d,
		Hosts:    []Host{{Name: d, Addrs: h.addrs, Secure: mxSecure && h.secure, CNAME: h.cname}},
		Site:     SiteKey{name: d},
		Implicit: true,
	}
	return rt, h.expires, nil
}

// mxRoute resolves the addresses of the MX hosts of d.
func (r *Resolver) mxRoute(ctx context.Context, d string, records []mxRecord, mxSecure bool) (*Route, time.Time, error) {
	// RFC 7505 §3: a lone MX whose exchange is "." says the domain takes no
	// mail. A "." mixed with real hosts is a misconfiguration (RFC 7505 §3
	// forbids it); the real hosts are used and the "." is ignored.
	if len(records) == 1 && records[0].host == "" {
		return nil, time.Time{}, nullMXError(d)
	}
	recs := make([]mxRecord, 0, len(records))
	for _, m := range records {
		if m.host != "" && validHostName(m.host) {
			recs = append(recs, m)
		}
	}
	if len(recs) == 0 {
		return nil, time.Time{}, noRouteError(d, ErrNoAddress)
	}
	// Lowest preference first (RFC 5321 §5.1); a host listed twice keeps its
	// lowest preference.
	slices.SortStableFunc(recs, func(a, b mxRecord) int {
		return cmp.Or(cmp.Compare(a.pref, b.pref), strings.Compare(a.host, b.host))
	})
	recs = slices.CompactFunc(recs, func(a, b mxRecord) bool { return a.host == b.host })
	slices.SortStableFunc(recs, func(a, b mxRecord) int { return cmp.Compare(a.pref, b.pref) })
	if len(recs) > r.maxMXHosts {
		recs = recs[:r.maxMXHosts]
	}

	lookups := make([]hostLookup, len(recs))
	var wg sync.WaitGroup
	for i := range recs {
		lookups[i].name = recs[i].host
		wg.Go(func() { r.lookupHost(ctx, &lookups[i]) })
	}
	wg.Wait()

	names := make([]string, len(recs))
	rt := &Route{Domain: d}
	exp := time.Time{}
	allNX, cacheable := true, true
	var firstErr error
	for i, h := range lookups {
		names[i] = h.name
		if h.expires.IsZero() {
			cacheable = false
		} else if exp.IsZero() || h.expires.Before(exp) {
			exp = h.expires
		}
		if !h.nxdomain {
			allNX = false
		}
		if h.err != nil && firstErr == nil {
			firstErr = h.err
		}
		if len(h.addrs) > 0 {
			rt.Hosts = append(rt.Hosts, Host{Name: h.name, Pref: recs[i].pref, Addrs: h.addrs, Secure: mxSecure && h.secure, CNAME: h.cname})
		}
	}
	rt.Site = MXSite(names)
	if len(rt.Hosts) == 0 {
		if allNX {
			// Every MX host is known not to exist: RFC 5321 §5.1 leaves no
			// address to try, and waiting will not create one.
			return nil, time.Time{}, noRouteError(d, ErrNoAddress)
		}
		return nil, time.Time{}, transientError(d, cmp.Or(firstErr, ErrNoAddress))
	}
	if !cacheable {
		exp = time.Time{}
	}
	return rt, exp, nil
}

// hostLookup collects the A and AAAA answers for one host name.
type hostLookup struct {
	name     string
	addrs    []netip.Addr
	expires  time.Time // zero: not cacheable (an error or an uncacheable answer)
	nxdomain bool      // both questions answered NXDOMAIN
	secure   bool      // both answers DNSSEC-validated
	cname    string    // where the CNAME chain of the name ends ("": no chain)
	err      error     // the first transient error
}

// lookupHost asks for A and AAAA at the same time (both, RFC 5321 §5.1
// lets a sender use either family) and merges them, IPv4 first.
func (r *Resolver) lookupHost(ctx context.Context, h *hostLookup) {
	fqdn := h.name + "."
	var a4, a6 answer
	var exp4, exp6 time.Time
	var err4, err6 error
	var wg sync.WaitGroup
	wg.Go(func() { a6, exp6, err6 = r.lookup(ctx, fqdn, dns.TypeAAAA) })
	a4, exp4, err4 = r.lookup(ctx, fqdn, dns.TypeA)
	wg.Wait()

	h.err = cmp.Or(err4, err6)
	h.secure = err4 == nil && err6 == nil && a4.authentic && a6.authentic
	if t := cmp.Or(a4.target, a6.target); t != "" {
		h.cname = hostName(t)
	}
	h.nxdomain = err4 == nil && err6 == nil && a4.outcome == outcomeNXDomain && a6.outcome == outcomeNXDomain
	switch {
	case len(a6.addrs) == 0:
		h.addrs = a4.addrs
	case len(a4.addrs) == 0:
		h.addrs = a6.addrs
	default:
		h.addrs = make([]netip.Addr, 0, len(a4.addrs)+len(a6.addrs))
		h.addrs = append(append(h.addrs, a4.addrs...), a6.addrs...)
	}
	if h.err == nil && !exp4.IsZero() && !exp6.IsZero() {
		h.expires = minTime(exp4, exp6)
	}
}

// lookup answers one question from the cache or the network. expires is zero
// when the answer may not be cached. Transport failures, SERVFAIL and
// REFUSED are returned as errors and never cached.
func (r *Resolver) lookup(ctx context.Context, name string, qtype uint16) (answer, time.Time, error) {
	key := question{name: name, qtype: qtype}
	if a, exp, ok := r.answers.get(key, r.now()); ok {
		return a, exp, nil
	}
	type result struct {
		a   answer
		exp time.Time
	}
	ch := r.flight.DoChan(dns.TypeToString[qtype]+" "+name, func() (any, error) {
		a, exp, err := r.query(ctx, name, qtype)
		return result{a, exp}, err
	})
	select {
	case res := <-ch:
		if res.Err != nil {
			return answer{}, time.Time{}, res.Err
		}
		v := res.Val.(result)
		return v.a, v.exp, nil
	case <-ctx.Done():
		return answer{}, time.Time{}, ctx.Err()
	}
}

// query asks the network, following a CNAME chain that the server left
// unfinished with further queries, and caches the result.
func (r *Resolver) query(ctx context.Context, name string, qtype uint16) (answer, time.Time, error) {
	cur := name
	ttl := uint32(noTTL)
	authentic := true
	var a answer
	for hop := 0; ; hop++ {
		m, err := r.transport.exchange(ctx, cur, qtype)
		if err != nil {
			return answer{}, time.Time{}, err
		}
		var next string
		a, next, err = parseResponse(cur, qtype, m)
		if err != nil {
			return answer{}, time.Time{}, errorsJoinName(cur, qtype, err)
		}
		ttl = min(ttl, a.ttl)
		if a.target == "" && cur != name {
			a.target = cur // the chain went on in a further query
		}
		// Secure only when every answer along the chain is (RFC 4035
		// §3.2.3: the AD bit of a validating resolver we trust).
		authentic = authentic && r.trustAD && m.AuthenticatedData
		if next == "" {
			break
		}
		if next == name || hop+1 >= MaxCNAMEChain {
			return answer{}, time.Time{}, errorsJoinName(name, qtype, ErrCNAMEChain)
		}
		cur = next
	}
	a.ttl = ttl
	a.authentic = authentic
	if ttl == noTTL {
		return a, time.Time{}, nil
	}
	a.ttl = r.clampTTL(ttl)
	now := r.now()
	exp := now.Add(time.Duration(a.ttl) * time.Second)
	r.answers.put(question{name: name, qtype: qtype}, a, exp, now)
	return a, exp, nil
}

// clampTTL applies MinTTL and MaxTTL to a TTL in seconds.
func (r *Resolver) clampTTL(ttl uint32) uint32 {
	d := time.Duration(ttl) * time.Second
	d = max(r.minTTL, min(d, r.maxTTL))
	return uint32(d / time.Second)
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// queryError names the question that failed.
type queryError struct {
	name  string
	qtype uint16
	err   error
}

func (e *queryError) Error() string {
	return e.name + " " + dns.TypeToString[e.qtype] + ": " + e.err.Error()
}
func (e *queryError) Unwrap() error { return e.err }

func errorsJoinName(name string, qtype uint16, err error) error {
	var qe *queryError
	if errors.As(err, &qe) {
		return err
	}
	return &queryError{name: name, qtype: qtype, err: err}
}
