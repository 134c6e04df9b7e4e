package engine

// The event hooks of a policy script (engine/policy/lua, docs/policy.md)
// wired into the relay. The script comes with the configuration
// (config.Config.PolicyScript: a .lua configuration file, or [policy]
// script); its hooks are started with the live policy and replaced whole
// by a reload. Each hook runs where its event happens, never on an event
// loop:
//
//	smtp_server_greeting   inbound worker, after EHLO and after AUTH (Greet)
//	smtp_message_received  the store path, as the message policy (prepare)
//	smtp_server_auth       inbound worker, before [[smtp_user]] (authenticator)
//	smtp_delivery_result   delivery worker, per transaction (attempted)
//	http_request           HTTP handler, before the API's own checks (intercept)
//	get_queue_config       delivery, per message retry schedule (queueRetry)
//	get_egress_path_config shaping, per path limits (shapingPolicy's Base)
//
// What a script does to the relay goes through scriptHost: tenant rates,
// site rates, suspensions, bounces and campaign counters.

import (
	"cmp"
	"context"
	"encoding/json"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"gannet/engine/admin"
	"gannet/engine/config"
	"gannet/engine/delivery"
	"gannet/engine/dkim"
	"gannet/engine/httpapi"
	"gannet/engine/inbound"
	"gannet/engine/outbound"
	"gannet/engine/policy/lua"
	"gannet/mailaddr"
	"gannet/queue"
	"gannet/smtpwire"
)

// startHooks starts the event hooks of cfg's policy script, if it has
// one, into p: the message hook becomes p's message policy, over the
// configuration's rules.
func (e *Engine) startHooks(cfg *config.Config, p *livePolicy) error {
	s, ok := cfg.PolicyScript.(*lua.Script)
	if !ok || s == nil {
		return nil
	}
	h, err := s.Start(lua.Options{
		Host:    scriptHost{e},
		Log:     e.log,
		Timeout: cfg.Policy.HookTimeout.Duration,
		Errors: func(event string) {
			if e.metrics != nil {
				e.metrics.PolicyError(event)
			}
		},
		Base: p.messages,
	})
	if err != nil {
		return err
	}
	p.hooks = h
	if h.Has(lua.EventMessage) {
		p.messages = h
	}
	var events []string
	for _, ev := range []string{lua.EventGreeting, lua.EventMessage, lua.EventAuth, lua.EventDeliveryResult,
		lua.EventHTTPRequest, lua.EventQueueConfig, lua.EventEgressPath} {
		if h.Has(ev) {
			events = append(events, ev)
		}
	}
	file := cfg.Policy.Script
	if file == "" {
		file = cfg.File // a .lua configuration file
	}
	e.log.Info("policy script loaded", "script", file, "hooks", strings.Join(events, ","),
		"hook_timeout", cfg.Policy.HookTimeout.Duration)
	return nil
}

// hooksFor returns the live hooks when they have a handler for event.
func (e *Engine) hooksFor(event string) *lua.Hooks {
	if p := e.policy(); p != nil && p.hooks != nil && p.hooks.Has(event) {
		return p.hooks
	}
	return nil
}

// scriptHost is what a running script may do to the relay (lua.Host).
type scriptHost struct{ e *Engine }

// LimitSending sets a tenant's message rate; it takes precedence over
// [[tenant]] max_message_rate (tenantRate), is kept with the admin rules
// and shared with a cluster (engine/delivery's scriptrate.go).
func (h scriptHost) LimitSending(tenant string, perSecond float64) {
	if tenant == "" || h.e.delivery == nil {
		return
	}
	h.e.delivery.SetTenantRate(tenant, perSecond)
}

// AdjustDomainRate scales the rate of the domain's site(s).
func (h scriptHost) AdjustDomainRate(domain string, delta float64) {
	if h.e.shaper == nil {
		return
	}
	d := mailaddr.CanonicalDomain(domain)
	if n := h.e.shaper.ScaleDomain(d, 1+delta); n > 0 {
		h.e.log.Info("policy: domain rate adjusted", "domain", d, "by", delta, "paths", n)
	}
}

// Suspend holds queued mail as the admin API's suspend does.
func (h scriptHost) Suspend(sel lua.Selector, reason string, d time.Duration) {
	if h.e.delivery == nil {
		return
	}
	if d <= 0 {
		d = admin.DefaultSuspendDuration
	}
	r := h.e.delivery.Suspend(h.e.ids.Next(), delivery.OriginPolicy, deliverySelector(sel), reason, d)
	h.e.log.Info("policy suspend", "id", r.ID, "selector", r.Selector, "reason", reason, "duration", d)
}

// Bounce bounces queued mail as the admin API's bounce does.
func (h scriptHost) Bounce(sel lua.Selector, reason string, d time.Duration) {
	if h.e.delivery == nil {
		return
	}
	if d <= 0 {
		d = admin.DefaultBounceDuration
	}
	r := h.e.delivery.Bounce(context.Background(), h.e.ids.Next(), delivery.OriginPolicy, deliverySelector(sel), reason, d)
	h.e.log.Info("policy bounce", "id", r.ID, "selector", r.Selector, "reason", reason, "duration", d, "bounced", r.TotalBounced)
}

func deliverySelector(s lua.Selector) delivery.Selector {
	return delivery.Selector{Domain: s.Domain, Tenant: s.Tenant, Campaign: s.Campaign, Site: s.Site}
}

// CampaignEvent counts increment_campaign_metric.
func (h scriptHost) CampaignEvent(campaign, event string) {
	if h.e.metrics != nil {
		h.e.metrics.CampaignEvent(campaign, event)
	}
}

// Greet implements inbound.Greeter: smtp_server_greeting. Its state is the
// DKIM keys the hook named for the session's messages.
func (e *Engine) Greet(ctx context.Context, g *inbound.Greeting) (any, *smtpwire.Reply) {
	h := e.hooksFor(lua.EventGreeting)
	if h == nil {
		return nil, nil
	}
	res, err := h.Greeting(ctx, lua.GreetingMeta{
		Domain: g.Helo, Tenant: g.Tenant, AuthUser: g.AuthUser,
		Peer: g.Peer.Addr().String(), Listener: g.Listener,
	})
	if err != nil {
		return nil, nil // logged and counted by the hooks: the session goes on
	}
	var state any
	if len(res.DKIM) > 0 {
		state = res.DKIM
	}
	return state, res.Reject
}

// sessionKeys is the DKIM keys of an SMTP session's greeting (Greet).
func sessionKeys(in *inbound.Incoming) []dkim.KeyConfig {
	keys, _ := in.Greeting.([]dkim.KeyConfig)
	return keys
}

// scriptAuth asks smtp_server_auth about PLAIN and LOGIN credentials
// (CRAM-MD5 hands over no password). handled false: the configured
// accounts decide.
func (e *Engine) scriptAuth(ctx context.Context, cred smtpwire.AuthCredentials) (user, tenant string, ok, handled bool) {
	h := e.hooksFor(lua.EventAuth)
	if h == nil || cred.Mechanism == "CRAM-MD5" {
		return "", "", false, false
	}
	meta := lua.AuthMeta{Mechanism: cred.Mechanism}
	if s, ok := inbound.SessionFrom(ctx); ok {
		meta.Listener, meta.Peer = s.Listener, s.Peer.Addr().String()
	}
	res, err := h.Auth(ctx, cred.Username, cred.Password, meta)
	if err != nil {
		return "", "", false, true // a failing hook lets no one in
	}
	if !res.Handled {
		return "", "", false, false
	}
	return cred.Username, res.Tenant, res.OK, true
}

// attempted is delivery.Options.Attempted: smtp_delivery_result, once per
// transaction, with the reply that decided it.
func (e *Engine) attempted(a *delivery.Attempt) {
	h := e.hooksFor(lua.EventDeliveryResult)
	if h == nil {
		return
	}
	r, kind := attemptReply(a.Outcome)
	if r.Code == 0 {
		return
	}
	var rcpt string
	if len(a.Outcome.Results) > 0 {
		rcpt = a.Outcome.Results[0].Rcpt
	}
	_ = h.DeliveryResult(context.Background(), lua.DeliveryResult{
		Code: r.Code, Enhanced: r.Enhanced, Text: joinLines(r.Lines), Kind: kind,
	}, lua.DeliveryMeta{
		Domain: a.Path.Domain, Site: a.Path.Site.String(), Tenant: a.Tenant, Campaign: a.Campaign,
		ID: a.ID, Recipient: rcpt, Attempts: a.Attempts + 1,
	}) // an error is logged and counted by the hooks; the result stands
}

// attemptReply is the reply that sums a transaction up: the session's
// when it failed as a whole, else the first recipient's that failed, else
// the first recipient's; and its log record type.
func attemptReply(out *outbound.Outcome) (smtpwire.Reply, string) {
	if out.SessionReply.Code != 0 && len(out.Results) == 0 {
		return out.SessionReply, kindOf(out.SessionReply)
	}
	for i := range out.Results {
		if out.Results[i].Status != outbound.Delivered {
			return out.Results[i].Reply, statusKind(out.Results[i].Status)
		}
	}
	if len(out.Results) > 0 {
		return out.Results[0].Reply, "Delivery"
	}
	return out.SessionReply, kindOf(out.SessionReply)
}

func statusKind(s outbound.Status) string {
	switch s {
	case outbound.Delivered:
		return "Delivery"
	case outbound.Bounced:
		return "Bounce"
	}
	return "TransientFailure"
}

func kindOf(r smtpwire.Reply) string {
	switch {
	case r.Code >= 500:
		return "Bounce"
	case r.Code >= 400:
		return "TransientFailure"
	}
	return "Delivery"
}

func joinLines(lines []string) string {
	switch len(lines) {
	case 0:
		return ""
	case 1:
		return lines[0]
	}
	n := 0
	for _, l := range lines {
		n += len(l) + 1
	}
	b := make([]byte, 0, n)
	for i, l := range lines {
		if i > 0 {
			b = append(b, ' ')
		}
		b = append(b, l...)
	}
	return string(b)
}

// intercept is httpapi.Options.Intercept: http_request, before the API's
// own checks. A hook that fails answers 500, as the API's own errors do.
func (e *Engine) intercept(w http.ResponseWriter, r *http.Request) bool {
	h := e.hooksFor(lua.EventHTTPRequest)
	if h == nil {
		return false
	}
	headers := make(map[string]string, len(r.Header))
	for k, v := range r.Header {
		if len(v) > 0 {
			headers[k] = v[0]
		}
	}
	remote := r.RemoteAddr
	if ap, err := netip.ParseAddrPort(r.RemoteAddr); err == nil {
		remote = ap.Addr().Unmap().String()
	}
	resp, err := h.HTTPRequest(r.Context(), lua.HTTPRequest{Method: r.Method, Path: r.URL.Path, Headers: headers, Remote: remote})
	if err != nil {
		httpapi.WriteJSON(w, http.StatusInternalServerError, map[string]string{"error": "policy error"})
		return true
	}
	if resp == nil {
		return false
	}
	status := resp.Status
	if status < 100 || status > 999 {
		status = http.StatusForbidden
	}
	switch {
	case resp.JSON:
		w.Header().Set("Content-Type", "application/json")
	case json.Valid(resp.Body) && len(resp.Body) > 0 && (resp.Body[0] == '{' || resp.Body[0] == '['):
		w.Header().Set("Content-Type", "application/json")
	default:
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	}
	w.Header().Set("Content-Length", strconv.Itoa(len(resp.Body)))
	w.WriteHeader(status)
	_, _ = w.Write(resp.Body)
	return true
}

// keySigners holds one signer per key a script named (kumo.sign_dkim,
// msg:dkim_sign), so that a key file is read once, not per message. A key
// that does not load is remembered for keyRetry, then tried again; a
// reload (SIGHUP) forgets every key, so that rotated files are re-read.
type keySigners struct {
	mu   sync.Mutex
	keys map[string]*keySigner
}

type keySigner struct {
	s      *dkim.Signers
	err    error
	failed time.Time
}

const (
	keyRetry          = 30 * time.Second
	maxScriptDKIMKeys = 4096
)

func keyID(k dkim.KeyConfig) string {
	id := k.Domain + "\x00" + k.Selector + "\x00" + k.KeyFile
	for _, h := range k.Headers {
		id += "\x00" + h
	}
	return id
}

// signer returns the signer of k, loading it the first time.
func (ks *keySigners) signer(k dkim.KeyConfig, now time.Time) (*dkim.Signers, error) {
	id := keyID(k)
	ks.mu.Lock()
	defer ks.mu.Unlock()
	if s, ok := ks.keys[id]; ok && (s.err == nil || now.Sub(s.failed) < keyRetry) {
		return s.s, s.err
	}
	if ks.keys == nil || len(ks.keys) >= maxScriptDKIMKeys {
		ks.keys = map[string]*keySigner{}
	}
	s, err := dkim.New([]dkim.KeyConfig{k})
	ks.keys[id] = &keySigner{s: s, err: err, failed: now}
	return s, err
}

// forget drops every loaded key (reload).
func (ks *keySigners) forget() {
	ks.mu.Lock()
	ks.keys = nil
	ks.mu.Unlock()
}

// signWithKeys returns the DKIM-Signature fields of msg for each of keys.
func (e *Engine) signWithKeys(msg *dkim.Message, keys []dkim.KeyConfig) ([]byte, error) {
	var out []byte
	now := e.now()
	for i, k := range keys {
		dup := false
		for _, prev := range keys[:i] {
			dup = dup || keyID(prev) == keyID(k)
		}
		if dup {
			continue
		}
		s, err := e.scriptKeys.signer(k, now)
		if err != nil {
			return nil, err
		}
		sig, err := s.SignMessage(msg, []string{k.Domain})
		if err != nil {
			return nil, err
		}
		out = append(out, sig...)
	}
	return out, nil
}

// queueRetry is delivery.Options.RetryFor: get_queue_config's retry
// schedule for a queue (the hooks cache the answer per queue).
func (e *Engine) queueRetry(tenant, campaign, domain string) (queue.RetryPolicy, bool) {
	h := e.hooksFor(lua.EventQueueConfig)
	if h == nil {
		return queue.RetryPolicy{}, false
	}
	q, ok, err := h.QueueConfig(domain, tenant, campaign, "")
	if err != nil || !ok {
		return queue.RetryPolicy{}, false
	}
	return queue.RetryPolicy{Initial: q.RetryInterval, Max: q.MaxRetryInterval, MaxAge: q.MaxAge}, true
}

// scriptLimits lays get_egress_path_config's answer for the path to domain
// over its configured limits (the hooks cache the answer per path).
func (e *Engine) scriptLimits(l outbound.Limits, domain string, hosts []string) outbound.Limits {
	p, ok := e.scriptEgressPath(domain, strings.Join(hosts, ","))
	if !ok {
		return l
	}
	l.Connections = cmp.Or(p.ConnectionLimit, l.Connections)
	l.MaxDeliveriesPerConn = cmp.Or(p.MaxDeliveriesPerConnection, l.MaxDeliveriesPerConn)
	l.MessageRate = cmp.Or(p.MaxMessageRate, l.MessageRate)
	return l
}

// egressFor is delivery.Options.Egress: the [[egress_pool]] a policy
// script's get_queue_config names for the queue, else the tenant's pool.
// A pool name the configuration does not have is logged and ignored.
func (e *Engine) egressFor(ec *egressChooser) func(tenant, campaign, domain string) outbound.Source {
	return func(tenant, campaign, domain string) outbound.Source {
		if h := e.hooksFor(lua.EventQueueConfig); h != nil {
			if q, ok, err := h.QueueConfig(domain, tenant, campaign, ""); err == nil && ok && q.EgressPool != "" {
				if ws, found := ec.named[q.EgressPool]; found {
					return ec.pick(ws)
				}
				if _, seen := e.unknownPools.LoadOrStore(q.EgressPool, true); !seen {
					e.log.Warn("policy: get_queue_config names an unknown egress_pool (logged once)", "egress_pool", q.EgressPool, "domain", domain, "tenant", tenant)
				}
			}
		}
		return ec.choose(tenant)
	}
}

// scriptEgressPath is get_egress_path_config's answer for domain (and its
// site, when known); ok false when no hook answered.
func (e *Engine) scriptEgressPath(domain, site string) (lua.EgressPath, bool) {
	h := e.hooksFor(lua.EventEgressPath)
	if h == nil {
		return lua.EgressPath{}, false
	}
	p, ok, err := h.EgressPath(domain, "", site)
	return p, err == nil && ok
}

// scriptPort is outbound.Options.PortFor: get_egress_path_config's
// smtp_port.
func (e *Engine) scriptPort(domain, site string) int {
	p, _ := e.scriptEgressPath(domain, site)
	return p.SMTPPort
}

// scriptTLSMode maps get_egress_path_config's enable_tls (KumoMTA's
// spellings) to an outbound TLS mode for domain. RequiredInsecure (TLS
// without a certificate check) has no Gannet mode: it keeps the configured one.
func (e *Engine) scriptTLSMode(domain string) (outbound.TLSMode, bool) {
	p, ok := e.scriptEgressPath(domain, "")
	if !ok || p.EnableTLS == "" {
		return 0, false
	}
	switch strings.ToLower(p.EnableTLS) {
	case "opportunistic":
		return outbound.TLSOpportunistic, true
	case "opportunisticinsecure", "opportunistic-insecure":
		return outbound.TLSOpportunisticInsecure, true
	case "required":
		return outbound.TLSRequired, true
	case "disabled":
		return outbound.TLSDisabled, true
	}
	return 0, false
}
