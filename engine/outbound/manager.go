package outbound

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"gannet/engine/logrec"
	"gannet/engine/tlsrpt"
	"gannet/engine/trace"
	"gannet/resolver"
	"gannet/smtpwire"
)

// Options configure a Manager. Zero values take the defaults named.
type Options struct {
	// EHLOName is the name Gannet gives in EHLO ([delivery] ehlo_name).
	EHLOName string
	// SMTPPort is the port dialled on MX hosts ([delivery] smtp_port; 25).
	SMTPPort int
	// PortFor, when set, may name another port for the MX hosts of one
	// destination (a policy script's get_egress_path_config smtp_port);
	// 0 keeps SMTPPort.
	PortFor func(domain, site string) int
	// RelayTo, when set ("host:port", [delivery] relay_to), sends every
	// transaction to that smarthost instead of the route's MX hosts. The
	// pool is then keyed by RelayTo whatever site the caller names.
	RelayTo string
	// RelayAuth, when set, returns the TLS and login for the smarthost
	// relayTo, for mail of tenant to domain ([delivery] relay_tls,
	// relay_user, …, or a [[tenant]] or [relay."DOMAIN"] override;
	// relayauth.go). It is asked on every delivery to a smarthost, so that
	// a reload applies; connections are pooled per login.
	RelayAuth func(tenant, domain, relayTo string) RelayAuth
	// OnAuthFailure, when set, is called once per connection whose AUTH
	// the smarthost refused, with the user name and the refusal (never the
	// password).
	OnAuthFailure func(host, peer, user string, r smtpwire.Reply)
	// TLS is the STARTTLS policy ([tls]).
	TLS TLSPolicy
	// TLSFor, when set, returns the policy for one destination domain
	// ([tls_policy."DOMAIN"]) and a key naming it ("" for TLS itself).
	// Connections are pooled per policy key too, so that a connection
	// opened under one policy never carries mail that needs another.
	TLSFor func(domain string) (policy TLSPolicy, key string)
	// LocalAddr is the egress source address (zero: the kernel's choice).
	LocalAddr netip.Addr

	ConnectTimeout time.Duration // TCP connect (30s)
	CommandTimeout time.Duration // greeting, EHLO, MAIL, RCPT, DATA replies (5m, RFC 5321 §4.5.3.2)
	DataTimeout    time.Duration // body and the final reply (10m, RFC 5321 §4.5.3.2.6)
	// NoChunking keeps to DATA even with servers that offer CHUNKING and
	// PIPELINING (by default those get the message as one BDAT LAST chunk
	// in the envelope's write, RFC 3030).
	NoChunking  bool
	IdleTimeout time.Duration // an unused pooled connection is closed after (30s)

	// Limits returns the shaping for the path (egress source, site, and
	// the destination domain that led there). It is called on every
	// delivery so that reloads and adaptive back-off apply at once. Nil:
	// 10 connections, 100 transactions each, no rate limit.
	Limits func(p Path) Limits

	// MaxAddresses bounds the MX addresses tried per delivery (5).
	MaxAddresses int
	// HostBackoff is how long an address that failed twice in a row is
	// passed over in favour of the route's other addresses (10s), doubling
	// per further failure up to HostBackoffMax (60s). When every address of
	// a route is in back-off, the one whose back-off ends first is tried
	// anyway, so a single-MX destination is never stalled by it.
	HostBackoff    time.Duration
	HostBackoffMax time.Duration

	// STS, when set, returns the MTA-STS policy in force for a destination
	// domain (RFC 8461; engine/mtasts). It is asked on every delivery to
	// MX hosts, never for relay_to or an address literal. Connections are
	// pooled per policy too.
	STS func(ctx context.Context, domain string) STSPolicy

	// DANE, when set, returns the DANE state of one MX host of a
	// destination domain (RFC 7672; the TLSA records of _PORT._tcp.HOST,
	// port being the one dialled, 25 in production). It is asked only
	// for hosts the resolver found securely (resolver.Host.Secure), never
	// for relay_to or an address literal. A host under DANE is delivered
	// to only over TLS with a certificate that matches its TLSA records;
	// DANE takes precedence over MTA-STS for it.
	DANE func(ctx context.Context, domain string, host resolver.Host, port int) DANEHost

	// OnTLSFailure, when set, is called when a STARTTLS fails, and when an
	// MX host does not match an MTA-STS policy (for
	// gannet_tls_failures_total{policy,result_type}). policy is
	// FailurePolicyDANE for a host under DANE (err is then a *DANEError),
	// FailurePolicySTS under an MTA-STS policy (enforce or testing),
	// FailurePolicyNone otherwise; resultType is the RFC 8460 result type
	// (tlsrpt.ResultCertHostMismatch, …); peer is zero for a host refused
	// by its name or its failed TLSA lookup.
	OnTLSFailure func(policy, resultType, host string, peer netip.AddrPort, err error)
	// TLSObserver, when set, is told of every TLS session on a new
	// connection to an MX host, for TLS reporting (RFC 8460; tlsreport.go).
	TLSObserver TLSObserver
	// OnTLSHandshake, when set, is called after every successful TLS
	// handshake with a server (STARTTLS or implicit TLS), resumed telling
	// whether it resumed an earlier session of the same host (the Manager
	// keeps sessionCacheSize of them) instead of a full handshake
	// (gannet_tls_handshakes_total{direction="out",resumed}).
	OnTLSHandshake func(resumed bool)
	// OnConnection, when set, is called with +1 when a session is
	// established and -1 when it is closed (gannet_connections{direction="out"}).
	OnConnection func(delta int)
	// SharedConns, when set, is the connection count a path shares with
	// the other nodes of a cluster (engine/cluster): every connection
	// holds one of its leases besides its slot of Limits.Connections.
	// Nil: none.
	SharedConns SharedConns
	// SharedConnRate, when set, is the rate of new connections a path
	// shares with the other nodes of a cluster: every new connection
	// waits for one of its tokens besides Limits.ConnectionRate. Nil:
	// none.
	SharedConnRate SharedConnRate
	// OnErrorReply, when set, is called for every 4xx/5xx reply a server
	// sends during a transaction (gannet_smtp_errors_total{direction="out"}).
	OnErrorReply func(r smtpwire.Reply)
	// Trace receives the conversations of the sessions its subscribers
	// watch (engine/trace; `gannet trace client`). Nil: never traced.
	Trace *trace.Hub

	// Now is the clock (time.Now).
	Now func() time.Time
}

// Manager delivers transactions over pooled, per-site SMTP connections.
// It is safe for concurrent use.
type Manager struct {
	opts   Options
	dial   dialConfig
	health *hostHealth
	now    func() time.Time

	mu     sync.Mutex
	pools  map[poolKey]*sitePool
	closed bool

	openConns atomic.Int64
	closing   sync.WaitGroup // background closes
	stop      chan struct{}
	janitor   sync.WaitGroup
}

// New returns a Manager; Close releases it.
func New(opts Options) *Manager {
	if opts.EHLOName == "" {
		opts.EHLOName = "localhost"
	}
	if opts.SMTPPort == 0 {
		opts.SMTPPort = 25
	}
	if opts.ConnectTimeout <= 0 {
		opts.ConnectTimeout = 30 * time.Second
	}
	if opts.CommandTimeout <= 0 {
		opts.CommandTimeout = 5 * time.Minute
	}
	if opts.DataTimeout <= 0 {
		opts.DataTimeout = 10 * time.Minute
	}
	if opts.IdleTimeout <= 0 {
		opts.IdleTimeout = 30 * time.Second
	}
	if opts.Limits == nil {
		opts.Limits = func(Path) Limits { return Limits{Connections: 10, MaxDeliveriesPerConn: 100} }
	}
	if opts.MaxAddresses <= 0 {
		opts.MaxAddresses = 5
	}
	if opts.HostBackoff <= 0 {
		opts.HostBackoff = 10 * time.Second
	}
	if opts.HostBackoffMax <= 0 {
		opts.HostBackoffMax = 60 * time.Second
	}
	if opts.HostBackoffMax < opts.HostBackoff {
		opts.HostBackoffMax = opts.HostBackoff
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	m := &Manager{
		opts: opts,
		dial: dialConfig{
			ehloName:       opts.EHLOName,
			tls:            opts.TLS,
			connectTimeout: opts.ConnectTimeout,
			commandTimeout: opts.CommandTimeout,
			dataTimeout:    opts.DataTimeout,
			noChunking:     opts.NoChunking,
			localAddr:      opts.LocalAddr,
			onErrorReply:   opts.OnErrorReply,
			trace:          opts.Trace,
			onAuthFailure:  opts.OnAuthFailure,
			// One cache for every pool: a host's sessions outlive its
			// pools (a reload, another policy key) and its connections.
			sessions:    tls.NewLRUClientSessionCache(sessionCacheSize),
			onHandshake: opts.OnTLSHandshake,
		},
		health: newHostHealth(opts.Now, opts.HostBackoff, opts.HostBackoffMax),
		now:    opts.Now,
		pools:  make(map[poolKey]*sitePool),
		stop:   make(chan struct{}),
	}
	m.janitor.Add(1)
	go m.sweepLoop()
	return m
}

// OpenConnections returns the number of open outbound connections (for
// gannet_connections{direction="out"}).
func (m *Manager) OpenConnections() int { return int(m.openConns.Load()) }

// Close closes idle connections, closes busy ones as their transactions
// end, and waits for the closes. Deliver calls after Close fail transiently.
func (m *Manager) Close() error {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return nil
	}
	m.closed = true
	pools := make([]*sitePool, 0, len(m.pools))
	for _, p := range m.pools {
		pools = append(pools, p)
	}
	m.mu.Unlock()
	close(m.stop)
	m.janitor.Wait()
	for _, p := range pools {
		p.shutdown()
	}
	m.closing.Wait()
	return nil
}

func (m *Manager) connOpened() {
	m.openConns.Add(1)
	if m.opts.OnConnection != nil {
		m.opts.OnConnection(1)
	}
}

func (m *Manager) connClosed() {
	m.openConns.Add(-1)
	if m.opts.OnConnection != nil {
		m.opts.OnConnection(-1)
	}
}

// poolKey names a pool: connections are shared by deliveries with the same
// egress source, site, TLS policy and MTA-STS policy. A struct, so that
// finding the pool allocates nothing.
type poolKey struct {
	source    string
	site      resolver.SiteKey
	tls       string // Options.TLSFor's key
	stsMode   STSMode
	stsDomain string
	stsID     string
	// delivery: what the messages ask (REQUIRETLS, "TLS-Required: No";
	// RFC 8689): their connections are made under other rules.
	delivery  deliveryTLS
	relayAuth RelayAuth // connections with other logins (or smarthost TLS) are not shared
}

// pool returns the pool of (egress source, site, TLS policy, MTA-STS
// policy), creating it, with the current limits.
func (m *Manager) pool(src Source, site resolver.SiteKey, domain string, sts STSPolicy, dt deliveryTLS, ra *RelayAuth) (*sitePool, error) {
	lim := m.opts.Limits(Path{Source: src.Name, Site: site, Domain: domain})
	pol, polKey := m.opts.TLS, ""
	if m.opts.TLSFor != nil {
		pol, polKey = m.opts.TLSFor(domain)
	}
	key := poolKey{source: src.Name, site: site, tls: polKey, delivery: dt}
	if sts.Mode != STSNone {
		// A connection opened under a domain's policy checked that
		// policy's hosts (and, in enforce mode, its TLS): it carries only
		// that domain's mail while the policy id stays the same.
		key.stsMode, key.stsDomain, key.stsID = sts.Mode, sts.Domain, sts.ID
	}
	if ra != nil {
		key.relayAuth = *ra
	}
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return nil, errPoolClosed
	}
	p := m.pools[key]
	if p == nil {
		dc := m.dial
		dc.tls = pol
		if sts.Mode == STSEnforce {
			dc.tls = enforceSTS(pol)
		}
		if sts.Mode != STSNone {
			dc.sts = sts
		}
		switch dt {
		case deliveryRequireTLS:
			// RFC 8689 §4.2.1: TLS 1.2+, the certificate valid for the MX
			// name (or, per host, its TLSA records), never the clear.
			dc.tls = enforceSTS(pol)
			dc.requireTLS = true
		case deliveryTLSOptional:
			dc.skipDANE = true
		}
		dc.policyName = policyName(dc.tls.Mode, sts.Mode)
		if src.Addr.IsValid() {
			dc.localAddr = src.Addr
		}
		if src.EHLOName != "" {
			dc.ehloName = src.EHLOName
		}
		dc.sourceName = src.Name
		dc.site = site.String()
		if site.IsRelay() {
			dc.relayTo = site.String()
			if ra != nil {
				dc = *relayDial(&dc, *ra)
			}
		}
		p = &sitePool{m: m, path: Path{Source: src.Name, Site: site, Domain: domain},
			site: site.String(), source: src.Name, dial: dc, limits: lim,
			rate:     NewRateLimiter(lim.MessageRate, 1, m.now),
			connRate: NewRateLimiter(lim.ConnectionRate, 1, m.now),
			lastUsed: m.now()}
		m.pools[key] = p
		m.mu.Unlock()
		return p, nil
	}
	m.mu.Unlock()
	p.setLimits(lim)
	return p, nil
}

func (m *Manager) sweepLoop() {
	defer m.janitor.Done()
	every := m.opts.IdleTimeout / 2
	every = min(max(every, 50*time.Millisecond), 10*time.Second)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-m.stop:
			return
		case <-t.C:
		}
		now := m.now()
		cutoff := now.Add(-10 * time.Minute)
		m.mu.Lock()
		for site, p := range m.pools {
			if p.sweep(now, cutoff) {
				delete(m.pools, site)
			}
		}
		m.mu.Unlock()
	}
}

// candidate is one address to try.
type candidate struct {
	host string
	addr netip.AddrPort
	dane *DANEHost // nil: DANE does not apply to the host
}

// candidates lists the addresses to try in order: MX hosts by preference
// (the resolver already shuffled equal preferences), each host's addresses
// in order, at most MaxAddresses; or the smarthost.
//
// Under an MTA-STS policy (sts), hosts that do not match it are reported
// (OnTLSFailure) and, in enforce mode, left out and named in refused.
func (m *Manager) candidates(ctx context.Context, route *resolver.Route, sts *STSPolicy, skipDANE bool, relayTo string) (out []candidate, refused []string, err error) {
	if relayTo != "" {
		host, portStr, err := net.SplitHostPort(relayTo)
		if err != nil {
			return nil, nil, fmt.Errorf("relay_to %q: %w", relayTo, err)
		}
		port, err := strconv.ParseUint(portStr, 10, 16)
		if err != nil {
			return nil, nil, fmt.Errorf("relay_to %q: bad port", relayTo)
		}
		var addrs []netip.Addr
		if a, err := netip.ParseAddr(host); err == nil {
			addrs = []netip.Addr{a}
		} else if addrs, err = net.DefaultResolver.LookupNetIP(ctx, "ip", host); err != nil {
			return nil, nil, fmt.Errorf("relay_to %q: %w", relayTo, err)
		}
		for _, a := range addrs {
			out = append(out, candidate{host: host, addr: netip.AddrPortFrom(a.Unmap(), uint16(port))})
		}
		return out, nil, nil
	}
	if route == nil {
		return nil, nil, nil
	}
	port := m.opts.SMTPPort
	if f := m.opts.PortFor; f != nil {
		if p := f(route.Domain, route.Site.String()); p > 0 && p < 65536 {
			port = p
		}
	}
	for _, h := range route.Hosts {
		var dh *DANEHost
		if h.Secure && m.opts.DANE != nil && !route.Literal && !skipDANE {
			// RFC 7672 §2.2: the TLSA records of a host found securely.
			if d := m.opts.DANE(ctx, route.Domain, h, port); d.applies() {
				dh = &d
			}
		}
		// RFC 8461 §2: a host with DANE TLSA records is held to them, not
		// to the MTA-STS policy.
		if dh == nil && sts.Mode != STSNone && !sts.allows(h.Name) {
			// RFC 8461 §4.1: the MX host must match the policy's mx
			// patterns; in testing mode it is only reported (§5).
			m.reportSTS(tlsrpt.ResultValidationFailure, h.Name, netip.AddrPort{}, stsMismatch(h.Name, sts.Domain))
			if sts.Mode == STSEnforce {
				refused = append(refused, h.Name)
				continue
			}
		}
		for _, a := range h.Addrs {
			if len(out) == m.opts.MaxAddresses {
				return out, refused, nil
			}
			out = append(out, candidate{host: h.Name, addr: netip.AddrPortFrom(a.Unmap(), uint16(port)), dane: dh})
		}
	}
	return out, refused, nil
}

// Deliver runs one transaction (route may be nil when RelayTo is set) of env to the route's destination and
// returns one Result per recipient. It waits for the site's message rate
// and for a free connection (reusing an idle one when it can), tries the
// MX addresses in order until one gives a session, and never returns an
// error: every failure is a per-recipient Transient or Bounced Result with
// a reply that says what happened.
func (m *Manager) Deliver(ctx context.Context, route *resolver.Route, env *Envelope) Outcome {
	return m.deliver(ctx, route, env, nil)
}

// deliver is Deliver; with f not nil, messages of f.chain may follow env's
// on its connection (DeliverChain).
func (m *Manager) deliver(ctx context.Context, route *resolver.Route, env *Envelope, f *follower) Outcome {
	out := Outcome{Results: make([]Result, len(env.Rcpts))}
	for i, r := range env.Rcpts {
		out.Results[i] = Result{Rcpt: r, Status: Transient}
	}
	failAll := func(code int, enh, text string) Outcome {
		setLocal(out.Results, Transient, localReply(code, enh, text))
		return out
	}
	if len(env.Rcpts) == 0 {
		return out
	}
	out.Source = env.Source.Name
	p, sts, err := m.poolFor(ctx, route, env, "")
	if err != nil {
		return failAll(451, "4.3.2", "delivery is shutting down")
	}
	out.TLSPolicy = p.dial.policyName
	if err := p.rate.Wait(ctx); err != nil {
		return failAll(451, "4.4.5", "delivery cancelled while waiting for the site's message rate")
	}
	msg := newClientMessage(env)
	if f != nil {
		f.p = p
		if route != nil {
			f.domain = route.Domain
		}
	}

	// First the pooled connections. One that the server has closed in the
	// meantime fails before any reply, and the transaction moves on to the
	// next one (bounded) or to a new connection.
	for tries := 0; tries < 3; tries++ {
		c, err := p.acquire(ctx)
		if err != nil {
			if err == errPoolClosed {
				return failAll(451, "4.3.2", "delivery is shutting down")
			}
			return failAll(451, "4.4.5", "delivery cancelled while waiting for a connection")
		}
		if c == nil {
			return m.deliverNew(ctx, p, route, env, msg, out, sts, f)
		}
		start := m.now()
		res, retry := c.send(ctx, env, msg, f)
		o := m.outcome(c, res, "")
		p.measured(&o, m.now().Sub(start))
		if !retry {
			// (A retryable transaction had no reply: nothing followed it.)
			m.runFollowers(ctx, c, f, o)
		}
		p.release(c, !retry)
		if !retry {
			return o
		}
	}
	return m.deliverNewAcquire(ctx, p, route, env, msg, out, sts, f)
}

// poolFor returns the pool a delivery of env on route uses, with the
// MTA-STS policy it asked for. With onlyDomain set (a message that would
// follow another on its connection, chain.go), it returns errWouldWait
// instead of asking for the MTA-STS policy of another domain (a lookup
// that may fetch it).
func (m *Manager) poolFor(ctx context.Context, route *resolver.Route, env *Envelope, onlyDomain string) (*sitePool, STSPolicy, error) {
	var site resolver.SiteKey
	var domain string
	if route != nil {
		site, domain = route.Site, route.Domain
	}
	relayTo := m.opts.RelayTo
	if route != nil && route.Site.IsRelay() {
		relayTo = route.Site.String() // a [[tenant]] or [relay."DOMAIN"] smarthost
	}
	var ra *RelayAuth
	if relayTo != "" {
		site = resolver.RelaySite(relayTo)
		if m.opts.RelayAuth != nil {
			a := m.opts.RelayAuth(env.Tenant, domain, relayTo)
			ra = &a
		}
	}
	var sts STSPolicy
	dt := deliveryTLSOf(env)
	// RFC 8689 §5: "TLS-Required: No" sets the domain's MTA-STS policy
	// aside (and DANE: candidates).
	if m.opts.STS != nil && relayTo == "" && route != nil && !route.Literal && dt != deliveryTLSOptional {
		if onlyDomain != "" && !strings.EqualFold(domain, onlyDomain) {
			return nil, sts, errWouldWait
		}
		sts = m.opts.STS(ctx, domain)
	}
	p, err := m.pool(env.Source, site, domain, sts, dt, ra)
	return p, sts, err
}

func (m *Manager) deliverNewAcquire(ctx context.Context, p *sitePool, route *resolver.Route, env *Envelope, msg *smtpwire.ClientMessage, out Outcome, asked STSPolicy, f *follower) Outcome {
	for {
		c, err := p.acquire(ctx)
		if err != nil {
			setLocal(out.Results, Transient, localReply(451, "4.4.5", "delivery cancelled while waiting for a connection"))
			return out
		}
		if c == nil {
			return m.deliverNew(ctx, p, route, env, msg, out, asked, f)
		}
		// An idle connection appeared; closing it frees a slot for a fresh one.
		p.release(c, false)
	}
}

// deliverNew opens a session (holding a slot from acquire), with MX
// failover, and runs the transaction on it. asked is the MTA-STS answer for
// this delivery (the pool's policy is p.dial.sts; asked may say, besides,
// why a domain has none: TLSObserver reports it).
func (m *Manager) deliverNew(ctx context.Context, p *sitePool, route *resolver.Route, env *Envelope, msg *smtpwire.ClientMessage, out Outcome, asked STSPolicy, f *follower) Outcome {
	sts := &p.dial.sts
	cands, refused, err := m.candidates(ctx, route, sts, p.dial.skipDANE, p.dial.relayTo)
	if err == nil && len(cands) == 0 && len(refused) > 0 {
		// RFC 8461 §5: under an enforced policy, mail goes to no MX host
		// that the policy does not allow. Transient: the policy or the MX
		// records may be fixed.
		p.releaseSlot()
		m.observeRefused(p, route.Domain, env.From, refused)
		text := stsMismatch(strings.Join(refused, ", "), sts.Domain).Error()
		rep := localReply(451, "4.7.5", text)
		if p.dial.requireTLS {
			rep = requireTLSError("no validated MX host: %s", text).refusal.Reply
		}
		setLocal(out.Results, Transient, rep)
		out.Note = text
		out.TLSResultType = tlsrpt.ResultValidationFailure
		return out
	}
	var unvalidated []string
	if err == nil && p.dial.requireTLS && p.dial.relayTo == "" {
		// RFC 8689 §4.2.1: only MX hosts validated by DANE or MTA-STS.
		kept := cands[:0]
		for _, cd := range cands {
			if validatedForRequireTLS(cd.host, cd.dane, sts) {
				kept = append(kept, cd)
			} else if !slices.Contains(unvalidated, cd.host) {
				unvalidated = append(unvalidated, cd.host)
			}
		}
		cands = kept
		if len(cands) == 0 {
			p.releaseSlot()
			text := "REQUIRETLS: no MX host of " + route.Domain + " is validated by MTA-STS or DANE"
			if len(unvalidated) > 0 {
				text += " (" + strings.Join(unvalidated, ", ") + ")"
			}
			setLocal(out.Results, Transient, localReply(451, requireTLSCode, text))
			out.Note = text
			out.TLSResultType = ResultRequireTLSNotValidated
			return out
		}
	}
	if err != nil || len(cands) == 0 {
		p.releaseSlot()
		text := "no address to deliver to"
		if err != nil {
			text = err.Error()
		}
		setLocal(out.Results, Transient, localReply(451, "4.4.4", text))
		out.Note = text
		return out
	}
	var notes []string
	for _, h := range refused {
		notes = append(notes, "4.7.5 "+stsMismatch(h, sts.Domain).Error())
	}
	for _, h := range unvalidated {
		notes = append(notes, "4.7.10 REQUIRETLS: "+h+" is not validated by MTA-STS or DANE")
	}
	if sts.Mode == STSTesting {
		underDANE := func(host string) bool {
			for _, cd := range cands {
				if cd.host == host && cd.dane != nil {
					return true
				}
			}
			return false
		}
		for _, h := range route.Hosts {
			if !sts.allows(h.Name) && !underDANE(h.Name) {
				notes = append(notes, "MTA-STS testing: "+mismatchText(h.Name, sts.Domain))
			}
		}
	}
	// Addresses in their back-off period are passed over; when all are,
	// the one whose back-off ends first is tried (hostHealth.usable), so a
	// host that is back takes mail at the message's next attempt.
	addrs := make([]string, len(cands))
	for i, cd := range cands {
		addrs[i] = cd.addr.String()
	}
	use := m.health.usable(addrs)
	ordered := make([]candidate, len(use))
	for i, j := range use {
		ordered[i] = cands[j]
	}
	var last *sessionError
	var c *Client
	lastDANE := false
	var lookupFailed []string // hosts whose failed TLSA lookup was reported
	for _, cd := range ordered {
		if ctx.Err() != nil {
			break
		}
		if cd.dane != nil && cd.dane.Err != nil {
			// RFC 7672 §2.2: a host whose TLSA lookup failed is not used.
			serr, de := daneRefusal(cd.host, cd.addr.Port(), nil, cd.dane.Err)
			if !slices.Contains(lookupFailed, cd.host) {
				// Once per host, not per address: no session was tried.
				lookupFailed = append(lookupFailed, cd.host)
				m.reportDANE(cd.host, netip.AddrPort{}, de)
				m.observeDANE(route.Domain, env.From, cd, netip.Addr{}, de)
			}
			notes = append(notes, "4.7.5 "+serr.refusal.Reply.Lines[0])
			last, lastDANE = serr, true
			continue
		}
		var serr *sessionError
		// max_connection_rate: new connections to the site are paced, on
		// this node and, shared, in the cluster (sharedrate.go).
		if err := p.connRate.Wait(ctx); err != nil || m.waitSharedConnRate(ctx, p.path) != nil {
			break
		}
		dc := &p.dial
		if cd.dane != nil {
			d := *dc
			d.tls = daneTLS(dc.tls, cd.dane, cd.host, m.now)
			d.policyName = TLSPolicyDANE
			dc = &d
		}
		c, serr = dial(ctx, dc, cd.host, cd.addr, true, envelopeDomain(env))
		if cd.dane != nil && serr == nil && c.tls != nil {
			// Under DANE (its TLSA records, never its STS policy).
			m.observeDANE(route.Domain, env.From, cd, c.local, nil)
		} else if route != nil && p.dial.relayTo == "" && !route.Literal && cd.dane == nil {
			m.observeTLS(p, route.Domain, env.From, cd, c, serr, &asked)
		}
		policyRefused := false
		if serr != nil && cd.dane != nil && serr.stage == "STARTTLS" {
			// No STARTTLS, a failed handshake or a certificate that
			// matches no TLSA record: this host is not used (RFC 7672
			// §2.2, §3).
			var de *DANEError
			serr, de = daneRefusal(cd.host, cd.addr.Port(), serr, nil)
			m.reportDANE(cd.host, cd.addr, de)
			m.observeDANE(route.Domain, env.From, cd, serr.local, de)
			notes = append(notes, "4.7.5 "+serr.refusal.Reply.Lines[0])
			last, lastDANE = serr, true
			c = nil
			continue
		}
		if serr != nil && p.dial.requireTLS && serr.stage == "STARTTLS" {
			// RFC 8689 §4.2.1 step 2: no validated TLS, no delivery.
			policyRefused = true
			serr = requireTLSRefusal(serr)
		} else if serr != nil && sts.Mode == STSEnforce && serr.stage == "STARTTLS" {
			policyRefused = true
			// No STARTTLS offered, refused, or a certificate that is not
			// valid for the MX name (§4.2): this host is not used.
			serr = stsRefusal(serr, sts.Domain)
			if !serr.tlsFailed {
				m.reportSTS(tlsrpt.ResultSTARTTLSNotSupported, cd.host, cd.addr, serr)
			}
		}
		if serr != nil && serr.tlsFailed {
			if m.opts.OnTLSFailure != nil {
				fp := FailurePolicyNone
				if sts.Mode != STSNone {
					fp = FailurePolicySTS
				}
				m.opts.OnTLSFailure(fp, tlsResultType(serr), cd.host, cd.addr, serr)
			}
			if dc.tls.fallsBack() {
				notes = append(notes, fmt.Sprintf("%s; delivering in the clear", serr.refusal.Reply.Lines[0]))
				c, serr = dial(ctx, dc, cd.host, cd.addr, false, envelopeDomain(env))
			}
		}
		if serr != nil && serr.stage == "STARTTLS" && serr.tlsResult == "" {
			// STARTTLS failed and the clear was not tried: TLS decided.
			serr.tlsResult = tlsResultType(serr)
		}
		if serr != nil {
			// A host refused by the policy is up: other mail may use it.
			if !serr.tlsFailed && !policyRefused {
				m.health.failed(cd.addr.String())
			}
			notes = append(notes, serr.refusal.Reply.Lines[0])
			last, lastDANE = serr, false
			c = nil
			continue
		}
		m.health.succeeded(cd.addr.String())
		if p.dial.requireTLS && (c.tls == nil || !c.ext.RequireTLS) {
			// RFC 8689 §4.2.1 step 3: the server must offer REQUIRETLS;
			// the next MX host may.
			serr = requireTLSError("%s [%s] does not offer REQUIRETLS", cd.host, cd.addr)
			if c.tls == nil {
				serr = requireTLSError("%s [%s]: no TLS", cd.host, cd.addr)
				serr.tlsResult = tlsrpt.ResultSTARTTLSNotSupported
			}
			c.Close()
			notes = append(notes, serr.refusal.Reply.Lines[0])
			last, lastDANE = serr, false
			c = nil
			continue
		}
		break
	}
	if c == nil {
		p.releaseSlot()
		rep := localReply(451, "4.4.5", "delivery cancelled")
		if last != nil {
			rep = last.refusal.Reply
		}
		setLocal(out.Results, Transient, rep)
		out.Note = strings.Join(notes, "; ")
		if last != nil {
			out.SessionReply = last.server
			out.TLSResultType = last.tlsResult
			out.ConnRefused = last.stage == "connect" && errors.Is(last.refusal.Cause, syscall.ECONNREFUSED)
		}
		if lastDANE {
			out.TLSPolicy = TLSPolicyDANE
		}
		return out
	}
	m.connOpened()
	start := m.now()
	res, _ := c.send(ctx, env, msg, f)
	o := m.outcome(c, res, strings.Join(notes, "; "))
	p.measured(&o, m.now().Sub(start))
	m.runFollowers(ctx, c, f, o)
	p.release(c, true)
	return o
}

func (m *Manager) outcome(c *Client, res []Result, note string) Outcome {
	o := Outcome{Results: res, Host: c.host, Peer: c.peer, Note: note, Source: c.source, TLSPolicy: c.cfg.policyName, DSN: c.ext.DSN}
	if c.tls != nil {
		o.TLSVersion = logrec.TLSVersion(c.tls.Version)
		o.TLSCipher = tlsCipherName(c.tls.CipherSuite)
	}
	for i := range res {
		if r := &res[i]; r.Local && r.Status == Transient && RequireTLSFailure(r.Reply.Enhanced) {
			// The server does not offer REQUIRETLS (Client.refusal).
			o.TLSResultType = ResultRequireTLSNotOffered
			break
		}
	}
	return o
}
