package engine

import (
	"sort"
	"sync"
	"time"

	"gannet/engine/admin"
	"gannet/engine/config"
	"gannet/engine/metrics"
	"gannet/engine/outbound"
	"gannet/engine/warmup"
)

// IP warm-up: the [[egress_source]] warmup keys. The tracker
// (engine/warmup) counts what each warming source sends per provider and
// day; warmupGate is the delivery loop's WarmupGate, which moves the mail
// past a source's allowance to another source of the tenant's pool that
// may still send (a warm one first), or, with none, keeps it waiting until
// the next day. With [cluster] the start dates and the day's counts are
// the cluster's (engine/warmup's shared.go, engine/cluster's Warmup).

// newWarmup returns the tracker of the warming sources of cfg; nil when
// none has warmup set.
func (e *Engine) newWarmup(cfg *config.Config) (*warmup.Tracker, error) {
	var srcs []warmup.Source
	for i := range cfg.EgressSources {
		s := &cfg.EgressSources[i]
		if s.Warmup == config.WarmupNone {
			continue
		}
		start, _ := s.WarmupStartDate()
		srcs = append(srcs, warmup.Source{Name: s.Name, Allowance: s.WarmupAllowance, Start: start})
	}
	if len(srcs) == 0 {
		return nil, nil
	}
	var store warmup.Store // the start dates of first use, kept in the spool
	if e.spool != nil {
		store = e.spool
	}
	t, err := warmup.New(srcs, store, e.now, e.log)
	if err == nil && e.cluster != nil {
		t.Share(e.cluster.Warmup()) // the allowances are the fleet's, counted in Redis
	}
	return t, err
}

// warmupProviders returns the provider names of cfg (the [shaping."LABEL"]
// tables with mx_suffix), sorted, and "" for the rest.
func warmupProviders(cfg *config.Config) []string {
	var out []string
	for name, t := range cfg.ShapingTables {
		if len(t.MXSuffix) > 0 {
			out = append(out, name)
		}
	}
	sort.Strings(out)
	return append(out, "")
}

// warmupGate is delivery.Options.Warmup.
type warmupGate struct {
	e  *Engine
	t  *warmup.Tracker
	ec *egressChooser

	mu     sync.Mutex
	logged map[string]time.Time // source/provider → the day its wait was logged

	providers sync.Map // providerKey → provider name
}

// provider returns the provider of a path's site: the first provider table,
// by name, whose mx_suffix matches its MX hosts; "" for any other (and for
// a smarthost).
func (g *warmupGate) provider(p outbound.Path) string {
	if p.Site.IsRelay() {
		return ""
	}
	cfg := g.e.conf()
	key := providerKey{cfg, p.Site.String()}
	if v, ok := g.providers.Load(key); ok {
		return v.(string)
	}
	hosts := p.Site.MXHosts()
	prov := ""
	for _, name := range warmupProviders(cfg) {
		if name != "" && config.MatchesMXSuffix(hosts, cfg.ShapingTables[name].MXSuffix) {
			prov = name
			break
		}
	}
	g.providers.Store(key, prov)
	return prov
}

// providerKey keys the provider of a site under one configuration (a
// reload brings a new one).
type providerKey struct {
	cfg  *config.Config
	site string
}

func (g *warmupGate) Take(tenant string, p outbound.Path) (outbound.Source, time.Time, bool) {
	if !g.t.Has(p.Source) {
		return outbound.Source{}, time.Time{}, true // a source without warm-up: nothing to count
	}
	prov := g.provider(p)
	ok, until := g.t.Take(p.Source, prov)
	if ok {
		return outbound.Source{}, time.Time{}, true
	}
	// Overflow: a warm source of the pool first (by weight), else the
	// warming one with the most left.
	ws, found := g.ec.pools[tenant]
	if !found {
		ws = g.ec.pools[""]
	}
	var warm []weightedSource
	var best outbound.Source
	bestLeft := 0
	for _, w := range ws {
		if w.src.Name == p.Source {
			continue
		}
		switch left := g.t.Remaining(w.src.Name, prov); {
		case left < 0:
			warm = append(warm, w)
		case left > bestLeft:
			best, bestLeft = w.src, left
		}
	}
	if len(warm) > 0 {
		return g.ec.pick(warm), until, false
	}
	if best.Name != "" {
		return best, until, false
	}
	g.logWait(p.Source, prov, until)
	return outbound.Source{}, until, false
}

// logWait logs, once a day per source and provider, that mail waits for
// the next day's allowance.
func (g *warmupGate) logWait(source, prov string, until time.Time) {
	key := source + "/" + prov
	g.mu.Lock()
	if g.logged == nil {
		g.logged = map[string]time.Time{}
	}
	seen := g.logged[key].Equal(until)
	g.logged[key] = until
	g.mu.Unlock()
	if !seen {
		if prov == "" {
			prov = "default"
		}
		g.e.log.Info("warm-up allowance of the day used up and no other source of the pool may send; mail waits for the next day",
			"egress_source", source, "provider", prov, "until", until)
	}
}

// WarmupStatuses returns the warm-up allowances of the warming sources
// (empty without any).
func (e *Engine) WarmupStatuses() []warmup.Status {
	if e.warmup == nil {
		return nil
	}
	return e.warmup.Statuses(warmupProviders(e.conf()))
}

// warmupGauge installs gannet_egress_warmup_remaining.
func warmupGauge(m *metrics.Metrics, e *Engine) {
	m.SetWarmup(func() []metrics.WarmupRemaining {
		var out []metrics.WarmupRemaining
		for _, s := range e.WarmupStatuses() {
			out = append(out, metrics.WarmupRemaining{Source: s.Source, Provider: s.Provider, Remaining: s.Remaining, Used: s.Used})
		}
		return out
	})
}

// warmupEntries is admin.Options.Warmup.
func (e *Engine) warmupEntries() []admin.WarmupEntry {
	var out []admin.WarmupEntry
	for _, s := range e.WarmupStatuses() {
		w := admin.WarmupEntry{Source: s.Source, Provider: s.Provider, Day: s.Day, Allowance: s.Allowance, Used: s.Used, Remaining: s.Remaining}
		if !s.Start.IsZero() {
			w.Start = s.Start.Format(config.WarmupDateLayout)
		}
		out = append(out, w)
	}
	return out
}
