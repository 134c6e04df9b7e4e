package engine

import (
	"sync"
	"time"

	"gannet/engine/cluster"
	"gannet/engine/config"
	"gannet/engine/outbound"
)

// The shaping limits a cluster shares ([cluster]; limit_scope "cluster",
// the default, in [shaping.*]): the configured max_message_rate and
// connection_limit of a path (egress source × site, the same on every
// node) are the fleet's, kept in Redis by engine/cluster. The node's own
// limits (the outbound pools, the delivery workers) apply as well, so
// that a node alone never goes past them either. A reload applies: the
// limits are looked up again under a new configuration.

// clusterRates is delivery.Options.SharedRate: a cluster.RateLimiter per
// path.
type clusterRates struct {
	e  *Engine
	mu sync.Mutex
	by map[string]clusterRate // by outbound.Path.Key
}

// clusterRate is the shared rate of a path under one configuration: the
// first domain that meets it looks it up, so that the domains of a site
// do not take turns replacing its limiter.
type clusterRate struct {
	cfg  *config.Config
	cut  float64 // the share of the configured rate the adaptive cut leaves
	rate float64
	lim  *cluster.RateLimiter // nil: not shared
}

// Take spends one token of the path's shared rate (delivery.SharedRate).
func (r *clusterRates) Take(p outbound.Path) (bool, time.Duration) {
	if r.e.cluster == nil {
		return true, 0
	}
	key, cfg, cut := p.Key(), r.e.conf(), 1.0
	if r.e.shaper != nil {
		cut = r.e.shaper.CutFactor(p) // a shared adaptive cut lowers the shared rate (cluster_cut.go)
	}
	r.mu.Lock()
	cr := r.by[key]
	if cr.cfg != cfg || cr.cut != cut {
		cr = r.lookup(p, key, cr, cut)
		cr.cfg, cr.cut = cfg, cut
		if r.by == nil {
			r.by = make(map[string]clusterRate)
		}
		r.by[key] = cr
	}
	r.mu.Unlock()
	if cr.lim == nil {
		return true, 0
	}
	return cr.lim.Take()
}

// lookup returns the shared rate of path p, its configured rate times
// cut, keeping the limiter of old when the rate is the same.
func (r *clusterRates) lookup(p outbound.Path, key string, old clusterRate, cut float64) clusterRate {
	cl, s := sharedShaping(r.e, p)
	rate := s.MaxMessageRate.PerSecond() * cut
	switch {
	case cl == nil || rate <= 0:
		return clusterRate{}
	case old.lim != nil && old.rate == rate:
		return old
	}
	return clusterRate{rate: rate, lim: cl.RateLimiter(key, rate, leaseBatch(rate))}
}

// leaseBatch is how many tokens a node leases per Redis call: a tenth of
// a second's worth, between 1 and 100, so that a high rate costs about
// ten Redis calls a second per node and a low one stays smooth.
func leaseBatch(rate float64) int {
	return min(100, max(1, int(rate/10)))
}

// sharedShaping returns the cluster and the configured shaping of path p,
// or a nil cluster when p's limits are not shared (no [cluster], or
// limit_scope "node").
func sharedShaping(e *Engine, p outbound.Path) (*cluster.Cluster, config.ShapingRule) {
	if e.cluster == nil {
		return nil, config.ShapingRule{}
	}
	s := e.conf().ShapingFor(p.Domain, p.Site.MXHosts())
	if s.LimitScope == config.LimitScopeNode {
		return nil, s
	}
	return e.cluster, s
}

// sharedConns is outbound.Options.SharedConns: nil without [cluster].
func (e *Engine) sharedConns() outbound.SharedConns {
	if e.cluster == nil {
		return nil
	}
	return &clusterConns{e: e}
}

// clusterConns is outbound.Options.SharedConns: a cluster.ConnLimiter per
// path.
type clusterConns struct {
	e  *Engine
	mu sync.Mutex
	by map[string]clusterConn // by outbound.Path.Key
}

type clusterConn struct {
	max int
	lim *cluster.ConnLimiter
}

// Acquire takes a lease of the path's shared connection count
// (outbound.SharedConns).
func (c *clusterConns) Acquire(p outbound.Path) (func(), bool) {
	cl, s := sharedShaping(c.e, p)
	if cl == nil || s.ConnectionLimit <= 0 {
		return nil, true
	}
	key := p.Key()
	c.mu.Lock()
	cc, ok := c.by[key]
	if !ok || cc.max != s.ConnectionLimit {
		cc = clusterConn{max: s.ConnectionLimit, lim: cl.ConnLimiter(key, s.ConnectionLimit)}
		if c.by == nil {
			c.by = make(map[string]clusterConn)
		}
		c.by[key] = cc
	}
	c.mu.Unlock()
	id, ok := cc.lim.Acquire()
	if !ok {
		return nil, false
	}
	return func() { cc.lim.Release(id) }, true
}
