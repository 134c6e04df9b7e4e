package engine

import (
	"sync"
	"time"

	"gannet/engine/cluster"
	"gannet/engine/config"
	"gannet/engine/outbound"
)

// clusterRates is delivery.Options.SharedRate with [cluster]: the
// configured max_message_rate of each path whose shaping entry has
// limit_scope "cluster" (the default) is the fleet's, kept in Redis by a
// cluster.RateLimiter per path (egress source × site, the same on every
// node). The node's own limit (the outbound pools) applies as well.
type clusterRates struct {
	e  *Engine
	mu sync.Mutex
	by map[string]clusterRate // by outbound.Path.Key
}

type clusterRate struct {
	rate float64
	lim  *cluster.RateLimiter
}

// Take spends one token of the path's shared rate (delivery.SharedRate).
// The configuration is read at each call, so that a reload applies.
func (r *clusterRates) Take(p outbound.Path) (bool, time.Duration) {
	cl := r.e.cluster
	if cl == nil {
		return true, 0
	}
	s := r.e.conf().ShapingFor(p.Domain, p.Site.MXHosts())
	rate := s.MaxMessageRate.PerSecond()
	if rate <= 0 || s.LimitScope == config.LimitScopeNode {
		return true, 0
	}
	key := p.Key()
	r.mu.Lock()
	cr, ok := r.by[key]
	if !ok || cr.rate != rate {
		cr = clusterRate{rate: rate, lim: cl.RateLimiter(key, rate, leaseBatch(rate))}
		if r.by == nil {
			r.by = make(map[string]clusterRate)
		}
		r.by[key] = cr
	}
	r.mu.Unlock()
	return cr.lim.Take()
}

// leaseBatch is how many tokens a node leases per Redis call: a tenth of
// a second's worth, between 1 and 100, so that a high rate costs about
// ten Redis calls a second per node and a low one stays smooth.
func leaseBatch(rate float64) int {
	return min(100, max(1, int(rate/10)))
}
