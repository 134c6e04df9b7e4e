package engine

import (
	"sync"
	"time"

	"gannet/engine/cluster"
	"gannet/engine/config"
	"gannet/engine/outbound"
)

// The shaping limits a cluster shares ([cluster]; limit_scope "cluster",
// the default, in [shaping.*]): the configured max_message_rate,
// connection_limit and max_connection_rate of a path (egress source ×
// site, the same on every node) are the fleet's, kept in Redis by engine/cluster. The node's own
// limits (the outbound pools, the delivery workers) apply as well, so
// that a node alone never goes past them either. A reload applies: the
// limits are looked up again under a new configuration.

// clusterRates is delivery.Options.SharedRate: a cluster.RateLimiter per
// path.
type clusterRates sharedRates

// Take spends one token of the path's shared rate (delivery.SharedRate):
// its configured max_message_rate times the share a shared adaptive cut
// leaves of it (cluster_cut.go).
func (r *clusterRates) Take(p outbound.Path) (bool, time.Duration) {
	cut := 1.0
	if r.e.shaper != nil {
		cut = r.e.shaper.CutFactor(p)
	}
	return (*sharedRates)(r).takePath("", p, cut, func(s *config.ShapingRule) config.Rate { return s.MaxMessageRate })
}

// clusterConnRates is outbound.Options.SharedConnRate: the
// max_connection_rate of a path as the cluster's, a cluster.RateLimiter
// per path (PREFIXrate:conn:PATH).
type clusterConnRates sharedRates

// TakeConnection spends one token of the path's shared rate of new
// connections (outbound.SharedConnRate).
func (r *clusterConnRates) TakeConnection(p outbound.Path) (bool, time.Duration) {
	return (*sharedRates)(r).takePath("conn:", p, 1, func(s *config.ShapingRule) config.Rate { return s.MaxConnectionRate })
}

// sharedConnRate is outbound.Options.SharedConnRate: nil without
// [cluster].
func (e *Engine) sharedConnRate() outbound.SharedConnRate {
	if e.cluster == nil {
		return nil
	}
	return &clusterConnRates{e: e}
}

// takePath spends one token of path p's shared rate named prefix and the
// path's key, the rate of p's configured shaping that rateOf picks times
// cut (not shared under limit_scope "node").
func (r *sharedRates) takePath(prefix string, p outbound.Path, cut float64, rateOf func(*config.ShapingRule) config.Rate) (bool, time.Duration) {
	return r.take(prefix+p.Key(), cut, func() float64 {
		cl, s := sharedShaping(r.e, p)
		if cl == nil {
			return 0
		}
		return rateOf(&s).PerSecond() * cut
	})
}

// sharedRates are rates shared by the cluster, a cluster.RateLimiter per
// name (a key under PREFIXrate:).
type sharedRates struct {
	e *Engine
	// recheck: the rates may change without a new configuration (a
	// policy script's): rateOf is asked at every take.
	recheck bool
	mu      sync.Mutex
	by      map[string]clusterRate
}

// clusterRate is a shared rate under one configuration: the first user
// that meets it looks it up (the first domain of a site, so that the
// domains of a site do not take turns replacing its limiter).
type clusterRate struct {
	cfg  *config.Config
	cut  float64 // the share of the configured rate an adaptive cut leaves
	rate float64
	lim  *cluster.RateLimiter // nil: not shared
}

// take spends one token of the rate name, which rateOf returns under the
// configuration in force and the cut (per second; 0: not shared). Its
// limiter is kept while the rate stays the same.
func (r *sharedRates) take(name string, cut float64, rateOf func() float64) (bool, time.Duration) {
	e := r.e
	if e.cluster == nil {
		return true, 0
	}
	cfg := e.conf()
	r.mu.Lock()
	cr := r.by[name]
	if cr.cfg != cfg || cr.cut != cut || r.recheck {
		switch rate := rateOf(); {
		case rate <= 0:
			cr = clusterRate{}
		case cr.lim == nil || cr.rate != rate:
			cr = clusterRate{rate: rate, lim: e.cluster.RateLimiter(name, rate, leaseBatch(rate))}
		}
		cr.cfg, cr.cut = cfg, cut
		if r.by == nil {
			r.by = make(map[string]clusterRate)
		}
		r.by[name] = cr
	}
	r.mu.Unlock()
	if cr.lim == nil {
		return true, 0
	}
	return cr.lim.Take()
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
