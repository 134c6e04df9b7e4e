package engine

import (
	"context"
	"strings"
	"sync"

	"gannet/engine/bounce"
	"gannet/engine/delivery"
	"gannet/engine/logrec"
	"gannet/engine/metrics"
	"gannet/engine/outbound"
	"gannet/mailaddr"
	"gannet/queue"
	"gannet/resolver"
)

// observer derives the labelled metrics — per destination site and domain,
// per tenant and campaign, per bounce class — without touching the
// delivery code. It sees three streams:
//
//   - every log record, through logrec.Options.OnRecord: each Reception,
//     Delivery, TransientFailure, Bounce, Expiration and AdminBounce counts
//     once in the capped counters of its site, domain, tenant and campaign,
//     and in gannet_bounces_total{class} or
//     gannet_transient_failures_by_class_total{class}. A TransientFailure
//     record that has no bounce_classification yet gets one here, from the
//     same rules as bounces. An XferOut record (gannet xfer) counts in
//     none of them, only in gannet_messages_xferred_total, and ends the
//     recipient's queue depth;
//   - every message entering the queue (accepted, a bounce message, or
//     loaded from the spool at start), through enqueued: its pending
//     recipients count towards their domain's queue depth until a
//     Delivery, Bounce or Expiration record ends them;
//   - every transaction, through the wrapped delivery.Transport: the
//     transactions in progress per site and domain (each holds, or waits
//     for, one connection of the site's pool).
//
// The gauges are read at scrape time (install).
type observer struct {
	m        *metrics.Metrics
	classify func(code int, enhanced, text string) string

	mu      sync.Mutex
	domains map[string]*domainState
	sites   map[string]int // transactions in progress
}

// domainState is what the observer knows of one destination domain. It is
// forgotten when nothing is queued or in progress for the domain.
type domainState struct {
	pending int64  // recipients enqueued and not yet final
	active  int    // transactions in progress
	site    string // where the last transaction went
}

func newObserver(m *metrics.Metrics, c *bounce.Classifier) *observer {
	return &observer{
		m:        m,
		classify: func(code int, enhanced, text string) string { return c.Classify(code, enhanced, text).String() },
		domains:  make(map[string]*domainState),
		sites:    make(map[string]int),
	}
}

// record is logrec.Options.OnRecord: it runs on the goroutine that writes
// the record, before it is encoded.
func (o *observer) record(r *logrec.Record) {
	var oc metrics.Outcome
	final := false
	switch r.Type {
	case logrec.Reception:
		oc = metrics.OutcomeReceived
	case logrec.Delivery:
		oc, final = metrics.OutcomeDelivered, true
	case logrec.TransientFailure:
		oc = metrics.OutcomeTransientFailure
		if r.BounceClassification == "" {
			r.BounceClassification = o.classify(r.Response.Code, r.Response.EnhancedCode, r.Response.Content)
		}
		o.m.TransientClass(r.BounceClassification).Inc()
	case logrec.Bounce, logrec.AdminBounce:
		oc, final = metrics.OutcomeBounced, true
		o.m.BounceClass(r.BounceClassification).Inc()
	case logrec.Expiration:
		oc, final = metrics.OutcomeExpired, true
		if r.BounceClassification == "" {
			r.BounceClassification = bounce.MessageExpired.String()
		}
		o.m.BounceClass(r.BounceClassification).Inc()
	case logrec.XferOut:
		// Handed to another node (gannet xfer): no longer queued here, and
		// neither delivered nor bounced.
		o.m.Xferred.Inc()
		o.settled(mailaddr.Domain(r.Recipient))
		return
	default:
		return
	}
	domain := mailaddr.Domain(r.Recipient)
	o.m.Sites.Inc(r.Site, oc)
	o.m.Domains.Inc(domain, oc)
	o.m.Tenants.Inc(r.Tenant, oc)
	o.m.Campaigns.Inc(r.Campaign, oc)
	if final {
		o.settled(domain)
	}
}

// settled counts a recipient to domain that is final: no longer in its
// queue depth.
func (o *observer) settled(domain string) {
	if domain == "" {
		return
	}
	o.mu.Lock()
	if d := o.domains[domain]; d != nil {
		d.pending--
		o.pruneLocked(domain, d)
	}
	o.mu.Unlock()
}

// enqueued counts the pending recipients of m towards their domains'
// queue depth. Call it before the message is handed to delivery, so that
// no outcome can be counted before it.
func (o *observer) enqueued(m *queue.Message) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for i := range m.Recipients {
		if m.Recipients[i].State != queue.Pending {
			continue
		}
		if d := mailaddr.Domain(m.Recipients[i].Addr); d != "" {
			o.domainLocked(d).pending++
		}
	}
}

func (o *observer) domainLocked(domain string) *domainState {
	d := o.domains[domain]
	if d == nil {
		d = &domainState{}
		o.domains[strings.Clone(domain)] = d
	}
	return d
}

func (o *observer) pruneLocked(domain string, d *domainState) {
	if d.pending <= 0 && d.active == 0 {
		delete(o.domains, domain)
	}
}

// transport wraps the delivery transport to count the transactions in
// progress per site and domain.
func (o *observer) transport(t delivery.Transport) delivery.Transport {
	return observedTransport{Transport: t, o: o}
}

type observedTransport struct {
	delivery.Transport
	o *observer
}

// Deliver counts the transaction while it runs.
func (t observedTransport) Deliver(ctx context.Context, route *resolver.Route, env *outbound.Envelope) outbound.Outcome {
	done := t.o.begin(route)
	defer done()
	return t.Transport.Deliver(ctx, route, env)
}

// chainTransport is what DeliverChain needs of the transport it wraps
// (*outbound.Manager).
type chainTransport interface {
	DeliverChain(ctx context.Context, first *outbound.Chained, chain outbound.Chain)
}

// DeliverChain counts each transaction of the chain (outbound's pipelining
// of the next message behind a body) from the moment it is taken until
// its outcome is reported.
func (t observedTransport) DeliverChain(ctx context.Context, first *outbound.Chained, chain outbound.Chain) {
	ct, ok := t.Transport.(chainTransport)
	if !ok {
		chain.Done(first, t.Deliver(ctx, first.Route, first.Env), true)
		return
	}
	oc := &observedChain{Chain: chain, o: t.o, running: map[*outbound.Chained]func(){first: t.o.begin(first.Route)}}
	ct.DeliverChain(ctx, first, oc)
}

// observedChain counts the transactions of a DeliverChain. Its calls come
// from the one goroutine running the chain.
type observedChain struct {
	outbound.Chain
	o       *observer
	running map[*outbound.Chained]func()
}

func (c *observedChain) Next() *outbound.Chained {
	ch := c.Chain.Next()
	if ch != nil {
		c.running[ch] = c.o.begin(ch.Route)
	}
	return ch
}

func (c *observedChain) Done(ch *outbound.Chained, o outbound.Outcome, attempted bool) {
	if done := c.running[ch]; done != nil {
		delete(c.running, ch)
		done()
	}
	c.Chain.Done(ch, o, attempted)
}

// begin counts a transaction to route as running, until the function it
// returns is called.
func (o *observer) begin(route *resolver.Route) (done func()) {
	if route == nil {
		return func() {}
	}
	site, domain := route.Site.String(), strings.ToLower(route.Domain)
	if site == "" {
		site = domain // as the delivery loop names the path
	}
	o.mu.Lock()
	o.sites[site]++
	d := o.domainLocked(domain)
	d.active++
	d.site = site
	o.mu.Unlock()
	return func() {
		o.mu.Lock()
		if o.sites[site]--; o.sites[site] <= 0 {
			delete(o.sites, site)
		}
		if d := o.domains[domain]; d != nil {
			d.active--
			o.pruneLocked(domain, d)
		}
		o.mu.Unlock()
	}
}

// install makes the per-destination gauges read the loop and the
// observer at each scrape.
func (o *observer) install(loop *delivery.Loop) {
	o.m.SetDestinations(func() metrics.DestinationState { return o.destinations(loop.Sites()) })
}

// siteAgg sums a site's paths (one per egress source).
type siteAgg struct {
	queued    int
	rate      float64
	unlimited bool
}

func (o *observer) destinations(paths []delivery.SiteStatus) metrics.DestinationState {
	agg := make(map[string]*siteAgg, len(paths))
	for _, p := range paths {
		a := agg[p.Site]
		if a == nil {
			a = &siteAgg{}
			agg[p.Site] = a
		}
		a.queued += p.Ready + p.InFlight
		a.rate += p.EffectiveRate
		a.unlimited = a.unlimited || p.EffectiveRate == 0
	}
	var st metrics.DestinationState
	o.mu.Lock()
	defer o.mu.Unlock()
	for site, a := range agg {
		st.Sites = append(st.Sites, metrics.DestinationGauge{Name: site, QueueDepth: float64(a.queued), Connections: float64(o.sites[site])})
	}
	for site, n := range o.sites {
		if agg[site] == nil {
			st.Sites = append(st.Sites, metrics.DestinationGauge{Name: site, Connections: float64(n)})
		}
	}
	for name, d := range o.domains {
		g := metrics.DestinationGauge{Name: name, QueueDepth: float64(max(d.pending, 0)), Connections: float64(d.active)}
		if a := agg[d.site]; a != nil {
			g.HasRate = true
			if !a.unlimited {
				g.Rate = a.rate
			}
		}
		st.Domains = append(st.Domains, g)
	}
	return st
}

// siteConns returns the transactions in progress per site.
func (o *observer) siteConns() map[string]int {
	o.mu.Lock()
	defer o.mu.Unlock()
	out := make(map[string]int, len(o.sites))
	for k, v := range o.sites {
		out[k] = v
	}
	return out
}

// domainConns returns the transactions in progress per destination domain.
func (o *observer) domainConns() map[string]int {
	o.mu.Lock()
	defer o.mu.Unlock()
	out := make(map[string]int)
	for k, d := range o.domains {
		if d.active > 0 {
			out[k] = d.active
		}
	}
	return out
}
