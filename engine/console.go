package engine

import (
	"context"
	"strings"

	"gannet/engine/config"
	"gannet/engine/console"
	"gannet/engine/shaping"
)

// buildConsole makes the operator console (engine/console) that every
// [[http_listener]] listing "console" serves: one for the engine, so that
// sessions outlive a reload that changes a listener. Its history and
// recent records (made before the log, which feeds them) are kept whether
// or not a listener serves it (a reload may add one), in fixed memory.
func (e *Engine) buildConsole() {
	e.console = console.New(console.Options{
		API:     e.adminHandler(),
		Live:    consoleLive{e},
		History: e.history,
		Recent:  e.recent,
		LogDir:  func() string { return e.conf().Log.Path }, // follows reloads
		Login: func(key string) (string, bool) {
			if key == "" {
				return "", false
			}
			k := e.conf().APIKey(key) // [[api_key]] follows reloads
			if k == nil || k.Tenant != "" {
				return "", false
			}
			return k.Role, k.Role == config.RoleAdmin || k.Role == config.RoleViewer
		},
		Now:    e.now,
		Logger: e.log.With("part", "console"),
	})
}

// startConsoleHistory samples the metrics into the console's history
// until Stop.
func (e *Engine) startConsoleHistory() {
	ctx, cancel := context.WithCancel(context.Background())
	e.stopHistory = cancel
	e.historyDone = make(chan struct{})
	go func() {
		defer close(e.historyDone)
		e.history.Run(ctx, consoleMeter{e}, e.recent, e.now)
	}()
}

// stopConsoleHistory ends startConsoleHistory's sampling.
func (e *Engine) stopConsoleHistory() {
	if e.stopHistory != nil {
		e.stopHistory()
		<-e.historyDone
	}
}

// consoleMeter reads the engine's metrics for the console's history.
type consoleMeter struct{ e *Engine }

func (m consoleMeter) Snapshot() console.Snapshot {
	e := m.e
	mt := e.metrics
	return console.Snapshot{
		Received:    mt.ReceivedTotal(),
		Delivered:   mt.Delivered.Get(),
		Transient:   mt.TransientFailures.Get(),
		Permanent:   mt.Bounced.Get() + mt.Expired.Get(),
		TLSFailures: mt.TLSFailures.Get() + e.recent.TLSFailures(),
		ConnsIn:     int(mt.ConnectionsIn.Get()),
		ConnsOut:    int(mt.ConnectionsOut.Get()),
		Depth:       consoleLive{e}.Depth(),
	}
}

// consoleLive is the console's view of the delivery loop and the shaper.
type consoleLive struct{ e *Engine }

func (l consoleLive) Depth() console.Depth {
	s, r := l.e.delivery.QueueDepth()
	return console.Depth{Scheduled: s, Ready: r, Suspended: l.e.delivery.HeldDepth(), Dead: int(l.e.spool.Stats().Dead)}
}

// DomainConnections: the transactions in progress per domain (observe.go).
func (l consoleLive) DomainConnections() map[string]int { return l.e.obs.domainConns() }

// Paths joins the loop's paths (depth, limits) with the shaper's state
// (back-off, a rule's suspension and the reply behind it) and the
// transactions in progress per site.
func (l consoleLive) Paths() []console.Path {
	e := l.e
	sites := e.delivery.Sites()
	conns := e.obs.siteConns()
	type key struct{ source, site string }
	shaped := map[key]shaping.PathStatus{}
	if e.shaper != nil {
		for _, p := range e.shaper.Status() {
			shaped[key{p.Source, strings.ToLower(p.Site)}] = p
		}
	}
	out := make([]console.Path, 0, len(sites))
	for _, s := range sites {
		p := console.Path{Site: s.Site, Source: s.Source, Ready: s.Ready, InFlight: s.InFlight, Rate: s.EffectiveRate,
			ConnLimit: s.Connections, Connections: conns[s.Site]}
		if ps, ok := shaped[key{s.Source, strings.ToLower(s.Site)}]; ok {
			p.Configured, p.Throttled, p.Reason, p.Suspended = ps.ConfiguredRate, ps.Throttled, ps.Reason, ps.Suspended
		}
		out = append(out, p)
	}
	return out
}
