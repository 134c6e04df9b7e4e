package engine

import (
	"crypto/x509"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"time"

	"gannet/engine/admin"
	"gannet/engine/bounce"
	"gannet/engine/config"
	"gannet/engine/dkim"
	"gannet/engine/logrec"
	"gannet/engine/outbound"
	"gannet/engine/policy"
	"gannet/engine/policy/lua"
	"gannet/queue"
	"gannet/resolver"
)

// This file is the configuration reload (SIGHUP). The parts of the engine
// that may change while it runs read the configuration through e.conf()
// and what is derived from it through e.policy(): one atomic pointer to a
// livePolicy, swapped whole by Reload, so that every reader sees either
// the old configuration or the new one, never a mix, and takes no lock.
//
// Applied at once by a reload:
//   - shaping: [delivery] limits, [shaping.*] tables (each path re-reads
//     its limits within a second; the backoff_* keys from a site's next
//     entry into backoff mode), [backoff] and [[shaping_rule]];
//   - the outbound TLS policy, [tls] and [tls_policy.*] (new connections;
//     pooled ones finish their life under the policy they were opened
//     with), including mta_sts and ca_file (re-read);
//   - the message policy (policy.Rules, built anew from the file):
//     [[tenant]] dkim_domain, dkim_domains and list_unsubscribe, [meta];
//   - [[tenant]] rates;
//     [queue] max_queue_depth and the retry schedule (retry_interval,
//     max_retry_interval, max_retry_age, greylist_retry: from the next failed attempt on;
//     retries already scheduled keep their time), dead_letter_after and
//     keep_bounced (for mail that ends from then on); [[api_key]]; [[smtp_user]];
//     [bounce] rules_file (re-read even when its name did not change);
//     [metrics] max_destination_labels; [log] level, rejections_per_connection,
//     rejection_rate, and the rotation: max_file_size, max_file_age and retain
//     (logrec.Writer.SetRotation);
//   - [[dkim]]: the keys are re-read, and a changed list is loaded anew;
//   - [[smtp_listener]]: matched by listen address (inbound.Reconfigure):
//     a new address is listened on at once; changed settings (limits,
//     relay_hosts, TLS certificate, AUTH settings, timeouts, name) serve
//     new connections while the open ones drain (421 4.3.2 at their next
//     command boundary, a transaction in progress finishes first); a
//     removed listener stops taking connections and drains the same way;
//   - [[http_listener]]: likewise (httpapi.Server.Replace for changed
//     settings; a removed one finishes its requests in progress);
//   - [resolver]: a new resolver is built and swapped in (liveresolver.go).
//
// A changed [spool] makes the reload refuse the whole file: nothing is
// applied. What else only a restart applies — [log] path (the record
// writer keeps its directory), the rest of [delivery], egress
// sources and pools — is reported as needing a restart while the rest is
// applied. A file that does not load (syntax, unknown keys, bad values,
// unreadable key files, a listen address in use) changes nothing: the
// engine keeps its configuration and reports every FILE:LINE problem.

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
	if e.delivery != nil {
		if r, ok := e.delivery.ScriptTenantRate(tenant); ok {
			return r // kumo.limit_sending
		}
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

// Reload applies what can change without a restart (SIGHUP, gannet
// reload, POST /api/admin/reload/v1). The certificates and DKIM key files
// are re-read; then, when the engine was started from a file, the file is
// read again and what it changes is applied (see the comment at the top of
// this file). It never stops the engine: problems are logged and returned.
func (e *Engine) Reload() admin.ReloadResponse {
	e.reloadMu.Lock()
	defer e.reloadMu.Unlock()
	res := admin.ReloadResponse{File: e.cfg.File, Applied: []string{}, NeedsRestart: []string{}, Errors: []string{}}
	if e.stopping {
		res.Errors = append(res.Errors, "gannet is stopping")
		return res
	}
	for name, s := range e.certs {
		if err := s.Reload(); err != nil {
			e.log.Error("reload certificate", "listener", name, "err", err)
			res.Errors = append(res.Errors, fmt.Sprintf("smtp_listener %q: certificate: %v", name, err))
		}
	}
	for _, l := range e.conf().SMTPListeners {
		if s := e.certs[l.Name]; s != nil {
			e.checkCertificate(l.Name, l.Hostname, s)
		}
	}
	if len(res.Errors) > 0 {
		e.log.Error("reload: keeping the running configuration", "file", e.cfg.File)
		return res // a certificate that does not load: the old one stays in use
	}
	res.Applied = append(res.Applied, "certificates (re-read)")
	if e.cfg.File == "" {
		e.reloadSigning()
		res.Applied = append(res.Applied, "[[dkim]] keys (re-read)")
		e.log.Info("reload: running the embedded default config; no file to re-read")
		return res
	}
	applied, restart, err := e.reloadConfig()
	if err != nil {
		var es config.Errors
		if errors.As(err, &es) {
			for _, p := range es {
				res.Errors = append(res.Errors, p.Error())
			}
		} else {
			res.Errors = append(res.Errors, err.Error())
		}
		for _, p := range res.Errors {
			e.log.Error("reload: config not applied", "problem", p)
		}
		e.log.Error("reload: keeping the running configuration", "file", e.cfg.File)
		res.Applied = []string{}
		return res
	}
	res.Applied = append(res.Applied, applied...)
	res.NeedsRestart = append(res.NeedsRestart, restart...)
	for _, what := range applied {
		e.log.Info("reload: applied", "setting", what)
	}
	for _, what := range restart {
		e.log.Warn("reload: changed, needs a restart to apply", "setting", what)
	}
	e.log.Info("config reloaded", "file", e.cfg.File, "applied", len(applied), "needs_restart", len(restart))
	return res
}

// refusedChanges are the settings a reload cannot apply and that make it
// refuse the whole file: the spool is the engine's state, and a relay
// running on one spool while its file names another would be wrong about
// where its mail is.
func refusedChanges(start, cfg *config.Config) []string {
	var changed []string
	if start.Spool.Path != cfg.Spool.Path {
		changed = append(changed, fmt.Sprintf("path %q → %q", start.Spool.Path, cfg.Spool.Path))
	}
	if start.Spool.Compression != cfg.Spool.Compression {
		changed = append(changed, fmt.Sprintf("compression %q → %q", start.Spool.Compression, cfg.Spool.Compression))
	}
	if len(changed) == 0 && !reflect.DeepEqual(start.Spool, cfg.Spool) {
		changed = append(changed, "settings")
	}
	if len(changed) == 0 {
		return nil
	}
	return []string{fmt.Sprintf("%s: [spool] changed (%s): the spool cannot change while gannet runs; "+
		"put the old [spool] back and reload, or restart gannet to use the new one", cfg.File, strings.Join(changed, ", "))}
}

// reloadConfig re-reads the configuration file and applies it. It returns
// what it applied and the settings that changed but need a restart, or the
// reason nothing was applied (config.Errors for a file that does not load).
// Everything that can fail — the policy, the policy script, a new
// resolver, new listeners' certificates and sockets — is done before
// anything changes, and undone on failure.
func (e *Engine) reloadConfig() (applied, restart []string, err error) {
	cfg, err := LoadConfig(e.cfg.File)
	if err != nil {
		return nil, nil, err
	}
	if r := refusedChanges(e.cfg, cfg); r != nil {
		return nil, nil, errors.New(strings.Join(r, "; "))
	}
	prev := e.policy()
	p, err := buildPolicy(cfg, prev)
	if err != nil {
		return nil, nil, err
	}
	if err := e.startHooks(cfg, p); err != nil {
		return nil, nil, err
	}
	undo := func(err error) ([]string, []string, error) {
		if p.hooks != nil {
			p.hooks.Close()
		}
		return nil, nil, err
	}
	var res *resolverSwap
	if e.resolver != nil && !reflect.DeepEqual(prev.cfg.Resolver, cfg.Resolver) {
		r, err := newResolver(cfg, e.now)
		if err != nil {
			return undo(fmt.Errorf("[resolver]: %w", err))
		}
		res = &resolverSwap{r}
	}
	authHook := p.hooks != nil && p.hooks.Has(lua.EventAuth)
	lcfgs, stores, err := e.listenerConfigs(cfg, authHook)
	if err != nil {
		return undo(err)
	}
	hx, err := e.prepareHTTP(cfg.HTTPListeners)
	if err != nil {
		return undo(err)
	}
	changes, err := e.inbound.Reconfigure(lcfgs, drainTimeout)
	if err != nil {
		hx.abort()
		return undo(err)
	}
	// Nothing fails from here on.
	e.commitListenerTLS(cfg, stores)
	applied = append(applied, hx.commit(e)...)
	for _, n := range changes.Added {
		applied = append(applied, fmt.Sprintf("smtp_listener %q added", n))
	}
	for _, n := range changes.Changed {
		applied = append(applied, fmt.Sprintf("smtp_listener %q changed (new connections; open ones drain)", n))
	}
	for _, n := range changes.Removed {
		applied = append(applied, fmt.Sprintf("smtp_listener %q removed (its sessions drain)", n))
	}
	for i, a := range e.inbound.Addrs() {
		for _, n := range changes.Added {
			if i < len(cfg.SMTPListeners) && cfg.SMTPListeners[i].Name == n {
				e.logSMTPListener(&cfg.SMTPListeners[i], a.String())
			}
		}
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
	if res != nil {
		e.resolver.swap(res.r)
	}
	e.shaper.SetPolicy(b, rules)
	e.metrics.SetMaxDestinationLabels(cfg.Metrics.MaxDestinationLabels)
	e.metrics.SetCompat(cfg.Metrics.Compat)
	e.applyLogLevel(cfg) // [log] level; rejections_per_connection and rejection_rate are read through conf()
	if rot := logRotation(cfg); rot != logRotation(prev.cfg) && e.records != nil {
		e.records.SetRotation(rot)
	}
	if e.delivery != nil {
		e.delivery.SetRetry(retryPolicy(cfg))
	}
	e.suppress.SetTTL(cfg.Suppression.TTL.Duration)
	restart = needsRestart(e.cfg, cfg)
	applied = append(applied, appliedSections(prev.cfg, cfg)...)
	return applied, restart, nil
}

// logRotation is [log]'s rotation and retention for the record writer.
func logRotation(cfg *config.Config) logrec.Rotation {
	return logrec.Rotation{
		MaxFileSize: int64(cfg.Log.MaxFileSize),
		MaxFileAge:  cfg.Log.MaxFileAge.Duration,
		Retain:      cfg.Log.Retain.Duration,
	}
}

// resolverSwap is a resolver built by a reload, swapped in once nothing
// can fail.
type resolverSwap struct{ r *resolver.Resolver }

// drainTimeout bounds how long the sessions of a removed SMTP listener, or
// the requests of a removed HTTP listener, may take to finish.
const drainTimeout = 5 * time.Minute

// appliedSections names the top-level settings that differ between the
// configuration in force before the reload and cfg, other than the
// listeners (reported by name) and what needs a restart (needsRestart).
func appliedSections(prev, cfg *config.Config) []string {
	var out []string
	skip := map[string]bool{"smtp_listener": true, "http_listener": true, "egress_source": true, "egress_pool": true}
	// Of [log] and [delivery], only what a reload applies.
	p := *prev
	p.Log.Path = cfg.Log.Path
	p.Delivery = cfg.Delivery
	p.Delivery.MaxConnectionsPerDomain, p.Delivery.MaxMessageRate, p.Delivery.MaxDeliveriesPerConnection =
		prev.Delivery.MaxConnectionsPerDomain, prev.Delivery.MaxMessageRate, prev.Delivery.MaxDeliveriesPerConnection
	pv, cv := reflect.ValueOf(p), reflect.ValueOf(*cfg)
	for _, f := range reflect.VisibleFields(pv.Type()) {
		k := tomlKey(f)
		if !f.IsExported() || k == "-" || f.Tag.Get("toml") == "-" || skip[k] {
			continue
		}
		if reflect.DeepEqual(pv.FieldByIndex(f.Index).Interface(), cv.FieldByIndex(f.Index).Interface()) {
			continue
		}
		name := "[" + k + "]"
		switch f.Type.Kind() {
		case reflect.Slice:
			name = "[[" + k + "]]"
		case reflect.Map:
			name = "[" + k + ".*]"
		}
		out = append(out, name)
	}
	return out
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
	// The record writer keeps its directory; the rest of [log] is applied.
	diff("[log] path", start.Log.Path, cfg.Log.Path)
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
	diff("[cluster]", start.Cluster, cfg.Cluster)
	diff("[[event_sink]]", start.EventSinks, cfg.EventSinks)
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
	if e.delivery.XferTarget(relayTo) {
		// Another node taking this node's mail (gannet xfer): its login
		// with [xfer] secret, else none (xferin.go).
		return e.xferLogin()
	}
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
		// Greylist: a first attempt greylisted (delivery's outcome.go).
		Greylist: cfg.Queue.GreylistRetry.Duration,
	}
}
