package engine

import (
	"crypto/x509"
	"fmt"
	"math/rand/v2"
	"regexp"
	"sync"
	"time"

	"gannet/engine/config"
	"gannet/engine/delivery"
	"gannet/engine/metrics"
	"gannet/engine/outbound"
	"gannet/engine/shaping"
	"gannet/queue"
)

// This file turns the delivery policy of the configuration — shaping
// tables, [backoff], [[shaping_rule]], [tls_policy], egress sources and
// pools, send_bounces — into what engine/outbound, engine/shaping and
// engine/delivery take. buildOutbound (engine.go) wires them; the parts a
// reload may change (reload.go) read the configuration through e.conf().

// newShaper builds the Shaper. Its limits are read through conf on every
// use, so that a reload changes them; the back-off settings and rules are
// those of conf() now, replaced by Shaper.SetPolicy on a reload.
//
// script, when set, lays a policy script's get_egress_path_config over
// the configured limits. onBackoff hears the sites entering and leaving
// backoff mode (backoff.go), onSuspend the suspensions of automation
// rules (cluster_suspend.go).
func newShaper(conf func() *config.Config, now func() time.Time, script func(outbound.Limits, string, []string) outbound.Limits,
	onBackoff func(shaping.BackoffEvent), onTune func(shaping.TuneState), onSuspend func(shaping.RuleSuspension),
	onCut func(shaping.CutState)) (*shaping.Shaper, error) {
	b, rules, err := shapingPolicy(conf())
	if err != nil {
		return nil, err
	}
	return shaping.New(shaping.Config{
		Base: func(domain string, hosts []string) outbound.Limits {
			l := limitsOf(conf().ShapingFor(domain, hosts))
			if script != nil {
				l = script(l, domain, hosts)
			}
			return l
		},
		Backoff:   b,
		Rules:     rules,
		Now:       now,
		Mode:      func(domain string, hosts []string) shaping.Mode { return modeOf(conf().ShapingFor(domain, hosts)) },
		OnBackoff: onBackoff,
		Tune:      func(domain string, hosts []string) shaping.Tuning { return tuningOf(conf().ShapingFor(domain, hosts)) },
		OnTune:    onTune,
		OnSuspend: onSuspend,
		OnCut:     onCut,
	}), nil
}

// tuningOf converts the self-tuning keys of a configured shaping rule.
func tuningOf(r config.ShapingRule) shaping.Tuning {
	return shaping.Tuning{Enabled: r.Tune, TargetDeferral: r.TuneTargetDeferral, Window: r.TuneWindow.Duration,
		MinAttempts: r.TuneMinAttempts, MinRate: r.TuneMinRate.PerSecond()}
}

// modeOf converts the backoff mode keys of a configured shaping rule.
func modeOf(r config.ShapingRule) shaping.Mode {
	return shaping.Mode{
		DeferralRate:            r.BackoffOnDeferralRate,
		Window:                  r.BackoffWindow.Duration,
		MinAttempts:             r.BackoffMinAttempts,
		Rate:                    r.BackoffRate.PerSecond(),
		RetryAfter:              r.BackoffRetryAfter.Duration,
		ToNormalAfter:           r.BackoffToNormalAfter.Duration,
		ToNormalAfterDeliveries: r.BackoffToNormalAfterDeliveries,
	}
}

// shapingPolicy converts [backoff] and [[shaping_rule]].
func shapingPolicy(cfg *config.Config) (shaping.Backoff, []shaping.Rule, error) {
	b := shaping.Backoff{
		Disabled:        !cfg.Backoff.Enabled,
		Factor:          cfg.Backoff.Factor,
		RecoverInterval: cfg.Backoff.RecoverInterval.Duration,
		RecoverStep:     cfg.Backoff.RecoverStep,
	}
	for _, s := range cfg.Backoff.ThrottleRegex {
		re, err := regexp.Compile(s)
		if err != nil {
			return b, nil, fmt.Errorf("[backoff] throttle_regex %q: %w", s, err)
		}
		b.Throttle = append(b.Throttle, re)
	}
	var rules []shaping.Rule
	for i, r := range cfg.ShapingRules {
		re, err := regexp.Compile(r.Regex)
		if err != nil {
			return b, nil, fmt.Errorf("shaping_rule[%d] regex %q: %w", i, r.Regex, err)
		}
		act, ok := shaping.ParseAction(r.Action)
		if !ok {
			return b, nil, fmt.Errorf("shaping_rule[%d]: unknown action %q", i, r.Action)
		}
		rules = append(rules, shaping.Rule{
			Domains: r.MatchDomain, MXSuffixes: r.MatchMXSuffix, Regex: re,
			Action: act, Duration: r.Duration.Duration, Rate: r.Rate.PerSecond(),
		})
	}
	return b, rules, nil
}

// limitsOf converts a configured shaping rule.
func limitsOf(r config.ShapingRule) outbound.Limits {
	return outbound.Limits{
		Connections:          r.ConnectionLimit,
		MaxDeliveriesPerConn: r.MaxDeliveriesPerConnection,
		MessageRate:          r.MaxMessageRate.PerSecond(),
		ConnectionRate:       r.MaxConnectionRate.PerSecond(),
	}
}

// tlsPolicyOf converts [tls]-style settings.
func tlsPolicyOf(t config.TLS, roots *x509.CertPool) (outbound.TLSPolicy, error) {
	mode, err := outbound.ParseTLSMode(t.Mode)
	if err != nil {
		return outbound.TLSPolicy{}, err
	}
	return outbound.TLSPolicy{
		Mode:              mode,
		MinVersion:        t.MinVersion.ID(),
		CipherSuites:      t.CipherSuiteIDs(),
		FallbackPlaintext: t.FallbackPlaintext,
		RootCAs:           roots,
	}, nil
}

// egressChooser picks an egress source for a tenant's mail from its pool
// ([[tenant]] egress_pool, else [delivery] egress_pool), by weight.
type egressChooser struct {
	pools   map[string][]weightedSource // by tenant; "" = the default pool
	named   map[string][]weightedSource // [[egress_pool]] by name (a script's get_queue_config egress_pool)
	mu      sync.Mutex
	rnd     *rand.Rand
	byName  map[string]outbound.Source
	hasPool bool
}

type weightedSource struct {
	src    outbound.Source
	weight int
}

func newEgressChooser(cfg *config.Config, seed uint64) *egressChooser {
	ec := &egressChooser{
		pools:  map[string][]weightedSource{},
		rnd:    rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
		byName: map[string]outbound.Source{},
	}
	for _, s := range cfg.EgressSources {
		ec.byName[s.Name] = outbound.Source{Name: s.Name, Addr: s.Addr(), EHLOName: s.EHLOName}
	}
	members := func(p *config.EgressPool) []weightedSource {
		if p == nil {
			return nil
		}
		var ws []weightedSource
		for _, m := range p.Sources {
			ws = append(ws, weightedSource{src: ec.byName[m.Name], weight: max(1, m.Weight)})
		}
		return ws
	}
	ec.named = map[string][]weightedSource{}
	for i := range cfg.EgressPools {
		ec.named[cfg.EgressPools[i].Name] = members(&cfg.EgressPools[i])
	}
	ec.pools[""] = members(cfg.TenantEgressPool(""))
	for _, t := range cfg.Tenants {
		ec.pools[t.Name] = members(cfg.TenantEgressPool(t.Name))
	}
	for _, ws := range ec.pools {
		if len(ws) > 0 {
			ec.hasPool = true
		}
	}
	return ec
}

// choose returns the source for one work item of tenant.
func (ec *egressChooser) choose(tenant string) outbound.Source {
	ws, ok := ec.pools[tenant]
	if !ok {
		ws = ec.pools[""]
	}
	return ec.pick(ws)
}

// pick chooses a member of ws by weight.
func (ec *egressChooser) pick(ws []weightedSource) outbound.Source {
	switch len(ws) {
	case 0:
		return outbound.Source{}
	case 1:
		return ws[0].src
	}
	total := 0
	for _, w := range ws {
		total += w.weight
	}
	ec.mu.Lock()
	n := ec.rnd.IntN(total)
	ec.mu.Unlock()
	for _, w := range ws {
		if n < w.weight {
			return w.src
		}
		n -= w.weight
	}
	return ws[len(ws)-1].src
}

// sendBounce returns delivery.Options.SendBounce: the DSN is spooled as a
// new message from the null sender (RFC 3464; RFC 5321 §4.5.5) and queued
// for delivery like any other. It is Gannet's own message, not one received:
// it does not take the store path (no policy, no Received field, no
// Reception record).
func (e *Engine) sendBounce(to string, body []byte) error {
	m := &queue.Message{
		ID:         e.ids.Next(),
		From:       "",
		Recipients: []queue.Recipient{{Addr: to}},
		Priority:   1,
		Created:    e.now(),
	}
	if err := e.appendToSpool(m, body); err != nil {
		return err
	}
	e.enqueue(m)
	return nil
}

// siteRateGauge installs gannet_site_effective_rate{site}: the effective
// message rate (per second; 0 = unlimited) of the busiest sites, with the
// rest summed under site="other".
func siteRateGauge(m *metrics.Metrics, loop *delivery.Loop) {
	m.SetSiteRates(func() []metrics.SiteRate {
		sites := loop.Sites()
		out := make([]metrics.SiteRate, 0, len(sites))
		for _, s := range sites {
			out = append(out, metrics.SiteRate{Site: s.Site, Source: s.Source, Rate: s.EffectiveRate, Weight: s.Ready + s.InFlight})
		}
		return out
	})
}
