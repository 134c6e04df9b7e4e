package engine

import (
	"crypto/x509"
	"errors"
	"fmt"
	"reflect"
	"strings"

	"gannet/engine/bounce"
	"gannet/engine/config"
	"gannet/engine/dkim"
	"gannet/engine/outbound"
	"gannet/engine/policy"
	"gannet/engine/policy/lua"
	"gannet/queue"
)

// This file is the configuration reload (SIGHUP). The parts of the engine
// that may change while it runs read the configuration through e.conf()
// and what is derived from it through e.policy(): one atomic pointer to a
// livePolicy, swapped whole by Reload, so that every reader sees either
// the old configuration or the new one, never a mix, and takes no lock.
//
// Applied at once by a reload:
//   - shaping: [delivery] limits, [shaping.*] tables (each path re-reads
//     its limits within a second), [backoff] and [[shaping_rule]];
//   - the outbound TLS policy, [tls] and [tls_policy.*] (new connections;
//     pooled ones finish their life under the policy they were opened
//     with), including mta_sts and ca_file (re-read);
//   - the message policy (policy.Rules, built anew from the file):
//     [[tenant]] dkim_domain, dkim_domains and list_unsubscribe, [meta];
//   - [[tenant]] rates;
//     [queue] max_queue_depth and the retry schedule (retry_interval,
//     max_retry_interval, max_retry_age: from the next failed attempt on;
//     retries already scheduled keep their time), dead_letter_after and
//     keep_bounced (for mail that ends from then on); [[api_key]]; [[smtp_user]];
//     [bounce] rules_file (re-read even when its name did not change);
//     [metrics] max_destination_labels; [log] level, rejections_per_connection
//     and rejection_rate;
//   - [[dkim]]: the keys are re-read, and a changed list is loaded anew.
//
// Everything else — listeners, the spool and log paths, the resolver, the
// rest of [delivery], egress sources and pools — is built once
// at start: a reload logs each such change as needing a restart and keeps
// running with the old value. A file that does not load (syntax, unknown
// keys, bad values, unreadable key files) changes nothing: the engine keeps
// its configuration and logs every FILE:LINE problem.

// livePolicy is the configuration in force and what is derived from it.
// It is never modified after it is stored.
type livePolicy struct {
	cfg          *config.Config
	tenantRates  map[string]float64 // [[tenant]] max_message_rate, per second; only rates > 0
	tlsDefault   outbound.TLSPolicy
	tlsDomains   map[string]outbound.TLSPolicy // [tls_policy."DOMAIN"]
	tlsGen       int                           // counts the reloads that changed the TLS policy
	roots        *x509.CertPool                // system roots + [tls] ca_file; nil: system roots
	stsByDomain  map[string]bool               // [tls_policy."DOMAIN"] mta_sts, where set
	daneByDomain map[string]bool               // [tls_policy."DOMAIN"] dane, where set
	bounces      *bounce.Classifier
	signers      *dkim.Signers
	messages     messagePolicy // [meta], [[tenant]], [[dkim]]: policy.Rules; or the script's message hook over them
	hooks        *lua.Hooks    // the policy script's event hooks (script.go); nil: no script
}

// conf returns the configuration in force.
func (e *Engine) conf() *config.Config {
	if p := e.live.Load(); p != nil {
		return p.cfg
	}
	return e.cfg // an Engine built by a test without New
}

// policy returns the live policy (nil only in an Engine built without New).
func (e *Engine) policy() *livePolicy { return e.live.Load() }

// buildPolicy derives a livePolicy from cfg. It does everything that can
// fail — compiling regular expressions, parsing TLS settings, reading the
// bounce rules file, loading changed DKIM keys — so that the reload can
// refuse the file before anything changes. prev is the policy in force
// (nil at start, when the caller loads the DKIM keys): its DKIM signers are
// kept when [[dkim]] did not change.
func buildPolicy(cfg *config.Config, prev *livePolicy) (*livePolicy, error) {
	p := &livePolicy{cfg: cfg, tenantRates: map[string]float64{}, messages: policy.NewRules(cfg)}
	for _, t := range cfg.Tenants {
		if r := t.MaxMessageRate.PerSecond(); r > 0 {
			p.tenantRates[t.Name] = r
		}
	}
	var err error
	if p.roots, err = caRoots(cfg.TLS.CAFile); err != nil {
		return nil, fmt.Errorf("[tls] ca_file: %w", err)
	}
	if p.tlsDefault, err = tlsPolicyOf(cfg.TLS, p.roots); err != nil {
		return nil, fmt.Errorf("[tls]: %w", err)
	}
	p.tlsDomains = make(map[string]outbound.TLSPolicy, len(cfg.TLSPolicies))
	for d, o := range cfg.TLSPolicies {
		if p.tlsDomains[d], err = tlsPolicyOf(cfg.TLSFor(d), p.roots); err != nil {
			return nil, fmt.Errorf("tls_policy %q: %w", d, err)
		}
		if o.DANE != nil {
			if p.daneByDomain == nil {
				p.daneByDomain = map[string]bool{}
			}
			p.daneByDomain[d] = *o.DANE
		}
		if o.MTASTS != nil {
			if p.stsByDomain == nil {
				p.stsByDomain = map[string]bool{}
			}
			p.stsByDomain[d] = *o.MTASTS
		}
	}
	if _, _, err := shapingPolicy(cfg); err != nil {
		return nil, err
	}
	p.bounces = bounce.Default()
	if f := cfg.Bounce.RulesFile; f != "" {
		if p.bounces, err = bounce.LoadFile(f); err != nil {
			return nil, fmt.Errorf("[bounce] rules_file: %w", err)
		}
	}
	if prev == nil {
		return p, nil // at start, New loads the DKIM keys (buildSigning)
	}
	p.tlsGen = prev.tlsGen
	if !reflect.DeepEqual(prev.cfg.TLS, cfg.TLS) || !reflect.DeepEqual(prev.cfg.TLSPolicies, cfg.TLSPolicies) {
		p.tlsGen++
	}
	if reflect.DeepEqual(prev.cfg.DKIM, cfg.DKIM) {
		p.signers = prev.signers
		return p, nil
	}
	keys := make([]dkim.KeyConfig, len(cfg.DKIM))
	for i, k := range cfg.DKIM {
		keys[i] = dkim.KeyConfig(k)
	}
	if p.signers, err = dkim.New(keys); err != nil {
		return nil, fmt.Errorf("[[dkim]]: %w", err)
	}
	return p, nil
}

// tenantRate is delivery.Options.TenantRate and admin.Options.TenantRate:
// the tenant's max_message_rate per second, 0 when it has none.
func (e *Engine) tenantRate(tenant string) float64 {
	if r, ok := e.scriptRates.Load(tenant); ok {
		return r.(float64) // kumo.limit_sending
	}
	if p := e.policy(); p != nil {
		return p.tenantRates[tenant]
	}
	return 0
}

// tlsFor is outbound.Options.TLSFor: [tls_policy."DOMAIN"] over [tls]. The
// key names the policy a pooled connection was opened under; it carries
// the reload generation, so that after a reload that changed the policy
// new connections are opened under the new one while the old pools drain.
func (e *Engine) tlsFor(domain string) (outbound.TLSPolicy, string) {
	p := e.policy()
	pol, key := p.tlsDefault, ""
	if d, ok := p.tlsDomains[domain]; ok {
		pol, key = d, domain
	}
	if mode, ok := e.scriptTLSMode(domain); ok && mode != pol.Mode {
		pol.Mode = mode
		key = domain + "+script:" + mode.String()
	}
	if p.tlsGen > 0 {
		key = fmt.Sprintf("%s#%d", key, p.tlsGen)
	}
	return pol, key
}

// Reload applies what can change without a restart (SIGHUP). The
// certificates and DKIM key files are re-read; then, when the engine was
// started from a file, the file is read again and what it changes is
// applied (see the comment at the top of this file). It never stops the
// engine: problems are logged.
func (e *Engine) Reload() {
	e.reloadMu.Lock()
	defer e.reloadMu.Unlock()
	for name, s := range e.certs {
		if err := s.Reload(); err != nil {
			e.log.Error("reload certificate", "listener", name, "err", err)
		}
	}
	for _, l := range e.cfg.SMTPListeners {
		if s := e.certs[l.Name]; s != nil {
			e.checkCertificate(l.Name, l.Hostname, s)
		}
	}
	if e.cfg.File == "" {
		e.reloadSigning()
		e.log.Info("reload: running the embedded default config; no file to re-read")
		return
	}
	restart, err := e.reloadConfig()
	if err != nil {
		var es config.Errors
		if errors.As(err, &es) {
			for _, p := range es {
				e.log.Error("reload: config not applied", "problem", p.Error())
			}
		} else {
			e.log.Error("reload: config not applied", "err", err)
		}
		e.log.Error("reload: keeping the running configuration", "file", e.cfg.File)
		return
	}
	for _, what := range restart {
		e.log.Warn("reload: changed, needs a restart to apply", "setting", what)
	}
	e.log.Info("config reloaded", "file", e.cfg.File, "needs_restart", len(restart))
}

// reloadConfig re-reads the configuration file and applies it. It returns
// the settings that changed but need a restart, or the reason nothing was
// applied (config.Errors for a file that does not load).
func (e *Engine) reloadConfig() (restart []string, err error) {
	cfg, err := LoadConfig(e.cfg.File)
	if err != nil {
		return nil, err
	}
	prev := e.policy()
	p, err := buildPolicy(cfg, prev)
	if err != nil {
		return nil, err
	}
	if err := e.startHooks(cfg, p); err != nil {
		return nil, err
	}
	e.scriptKeys.forget()
	if p.signers == prev.signers {
		e.reloadSigning() // same [[dkim]] list: re-read the key files
	} else {
		e.log.Info("DKIM keys loaded", "keys", len(cfg.DKIM))
	}
	b, rules, _ := shapingPolicy(cfg) // checked by buildPolicy
	e.live.Store(p)
	if prev.hooks != nil {
		prev.hooks.Close() // calls in flight finish on their states
	}
	e.shaper.SetPolicy(b, rules)
	e.metrics.SetMaxDestinationLabels(cfg.Metrics.MaxDestinationLabels)
	e.applyLogLevel(cfg) // [log] level; rejections_per_connection and rejection_rate are read through conf()
	if e.delivery != nil {
		e.delivery.SetRetry(retryPolicy(cfg))
	}
	return needsRestart(e.cfg, cfg), nil
}

// needsRestart lists the settings that differ between the configuration
// the engine started with and cfg, and that only a restart applies.
func needsRestart(start, cfg *config.Config) []string {
	var out []string
	diff := func(name string, a, b any) {
		if !reflect.DeepEqual(a, b) {
			out = append(out, name)
		}
	}
	diff("[spool]", start.Spool, cfg.Spool)
	sl, cl := start.Log, cfg.Log
	// level and the rejection caps are applied; compare the rest.
	sl.Level, sl.RejectionsPerConnection, sl.RejectionRate = "", 0, config.Rate{}
	cl.Level, cl.RejectionsPerConnection, cl.RejectionRate = "", 0, config.Rate{}
	diff("[log]", sl, cl)
	diff("[[smtp_listener]]", start.SMTPListeners, cfg.SMTPListeners)
	diff("[[http_listener]]", start.HTTPListeners, cfg.HTTPListeners)
	diff("[resolver]", start.Resolver, cfg.Resolver)
	sd, cd := start.Delivery, cfg.Delivery
	// The shaping keys of [delivery] are applied; compare the rest.
	sd.MaxConnectionsPerDomain, sd.MaxMessageRate, sd.MaxDeliveriesPerConnection = 0, config.Rate{}, 0
	cd.MaxConnectionsPerDomain, cd.MaxMessageRate, cd.MaxDeliveriesPerConnection = 0, config.Rate{}, 0
	// So are the smarthost's login and TLS (relayAuth, at each new connection).
	sd.RelayUser, sd.RelayPassword, sd.RelayPasswordFile, sd.RelayTLS, sd.RelayAllowInsecureAuth = "", "", "", "", false
	cd.RelayUser, cd.RelayPassword, cd.RelayPasswordFile, cd.RelayTLS, cd.RelayAllowInsecureAuth = "", "", "", "", false
	for _, f := range reflect.VisibleFields(reflect.TypeOf(sd)) {
		diff("[delivery] "+tomlKey(f), reflect.ValueOf(sd).FieldByIndex(f.Index).Interface(),
			reflect.ValueOf(cd).FieldByIndex(f.Index).Interface())
	}
	diff("[[egress_source]]", start.EgressSources, cfg.EgressSources)
	diff("[[egress_pool]]", start.EgressPools, cfg.EgressPools)
	pools := func(c *config.Config) map[string]string {
		m := map[string]string{}
		for _, t := range c.Tenants {
			if t.EgressPool != "" { // a tenant without one uses [delivery] egress_pool
				m[t.Name] = t.EgressPool
			}
		}
		return m
	}
	diff("[[tenant]] egress_pool", pools(start), pools(cfg))
	return out
}

// relayAuth returns the TLS and login for the smarthost relayTo, for mail
// of tenant to domain, from the configuration in force ([delivery],
// [[tenant]] or [relay."DOMAIN"] relay_tls, relay_user, …). Credentials
// go only to the smarthost they were configured for: when relayTo is not
// that (the configuration changed since the mail was routed), no login.
func (e *Engine) relayAuth(tenant, domain, relayTo string) outbound.RelayAuth {
	sh := e.conf().SmarthostFor(tenant, domain)
	t, _ := outbound.ParseRelayTLS(sh.TLS) // checked at load
	if sh.RelayTo != relayTo {
		return outbound.RelayAuth{TLS: t}
	}
	return outbound.RelayAuth{TLS: t, User: sh.User, Password: sh.Password, AllowInsecureAuth: sh.AllowInsecureAuth}
}

// relayFor names the smarthost of a [[tenant]] or [relay."DOMAIN"] for
// mail of tenant to domain; "" for [delivery] relay_to (as started) or the
// MX hosts.
func (e *Engine) relayFor(tenant, domain string) string {
	c := e.conf()
	if !c.HasRelayOverrides() {
		return ""
	}
	if sh := c.SmarthostFor(tenant, domain); sh.RelayTo != c.Delivery.RelayTo {
		return sh.RelayTo
	}
	return ""
}

// tomlKey returns the TOML key of a struct field.
func tomlKey(f reflect.StructField) string {
	k, _, _ := strings.Cut(f.Tag.Get("toml"), ",")
	if k == "" {
		return f.Name
	}
	return k
}

// retryPolicy is the [queue] retry schedule.
func retryPolicy(cfg *config.Config) queue.RetryPolicy {
	return queue.RetryPolicy{
		Initial: cfg.Queue.RetryInterval.Duration,
		Max:     cfg.Queue.MaxRetryInterval.Duration,
		MaxAge:  cfg.Queue.MaxRetryAge.Duration,
	}
}
