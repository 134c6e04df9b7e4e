package engine

import (
	"context"
	"crypto/tls"
	"fmt"
	"path/filepath"
	"time"

	"gannet/engine/certs"
	"gannet/engine/config"
	"gannet/engine/handover"
	"gannet/engine/inbound"
	"gannet/engine/policy/lua"
	"gannet/smtpwire"
)

// buildInbound builds the SMTP server of every [[smtp_listener]] (none
// is fine: a reload may add them).
func (e *Engine) buildInbound() error {
	cfgs, stores, err := e.listenerConfigs(e.cfg, e.hooksFor(lua.EventAuth) != nil)
	if err != nil {
		return err
	}
	e.commitListenerTLS(e.cfg, stores)
	opts := inbound.Options{
		Logger:        e.log,
		Now:           e.now,
		Metrics:       inboundMetrics{e},
		Authenticator: authenticator{conf: e.conf, script: e.scriptAuth},
		OnRejection:   e.rejection, // rejections.go
		Trace:         e.trace,
		// [feedback] domains and return_path_domain (feedback.go)
		FeedbackDomain: e.feedbackDomain,
	}
	if e.cfg.PolicyScript != nil {
		opts.Greeter = e // smtp_server_greeting, if the script (or a reloaded one) has it
	}
	srv, err := inbound.New(cfgs, e, opts)
	if err != nil {
		return err
	}
	e.inbound = srv
	return nil
}

// listenerTLS is the certificate of a listener and the TLS configuration
// built on it, kept across reloads while tls_cert, tls_key, hostname and
// tls_min_version stay the same (the certificate files are re-read in
// place by Reload).
type listenerTLS struct {
	key   string
	store *certs.Store
	tc    *tls.Config
}

func listenerTLSKey(l *config.SMTPListener) string {
	return fmt.Sprintf("%q %q %q %v", l.TLSCert, l.TLSKey, l.Hostname, l.TLSMinVersion)
}

// listenerConfigs turns every [[smtp_listener]] of cfg into an inbound
// listener configuration with its TLS certificate: the one in use when
// its settings did not change, else opened now. It returns the
// certificates by listener name for commitListenerTLS.
func (e *Engine) listenerConfigs(cfg *config.Config, authHook bool) ([]inbound.ListenerConfig, map[string]listenerTLS, error) {
	var cfgs []inbound.ListenerConfig
	stores := map[string]listenerTLS{}
	for i := range cfg.SMTPListeners {
		l := &cfg.SMTPListeners[i]
		lt, ok := e.listenerTLS[l.Name]
		if !ok || lt.key != listenerTLSKey(l) {
			store, err := certs.Open(l.TLSCert, l.TLSKey, filepath.Join(e.dataDir(), "tls"), l.Hostname)
			if err != nil {
				return nil, nil, fmt.Errorf("smtp_listener %q: %w", l.Name, err)
			}
			lt = listenerTLS{key: listenerTLSKey(l), store: store, tc: store.TLSConfig(l.TLSMinVersion.ID())}
		}
		stores[l.Name] = lt
		bare := smtpwire.BareLFNormalize
		if l.BareLF == config.BareLFReject {
			bare = smtpwire.BareLFReject
		}
		var mechs []string
		if cfg.HasLogins() || authHook {
			mechs = l.AuthMechanisms
		}
		delayAfter := offIfZero(l.AuthFailDelayAfter)
		if l.AuthFailDelay.Duration == 0 {
			delayAfter = -1 // auth_fail_delay = "0s": no delay
		}
		cfgs = append(cfgs, inbound.ListenerConfig{
			Name:                l.Name,
			Listen:              l.Listen,
			Hostname:            l.Hostname,
			RelayHosts:          l.RelayHosts.Prefixes(),
			MaxMessageSize:      l.MaxMessageSize.Bytes(),
			MaxRecipients:       l.MaxRecipients,
			MaxConnections:      l.MaxConnections,
			MaxConnectionsPerIP: l.MaxConnectionsPerIP,
			MaxBadCommands:      l.MaxBadCommands,
			BareLF:              bare,
			CommandTimeout:      l.CommandTimeout.Duration,
			DataTimeout:         l.DataTimeout.Duration,
			IdleTimeout:         l.IdleTimeout.Duration,
			SessionTimeout:      l.SessionTimeout.Duration,
			TLSConfig:           lt.tc,
			ImplicitTLS:         l.ImplicitTLS,
			AuthMechs:           mechs,
			AuthRequireTLS:      l.AuthRequireTLS,
			AuthFailDelayAfter:  delayAfter,
			AuthFailDelay:       l.AuthFailDelay.Duration,
			AuthFailBlockAfter:  offIfZero(l.AuthFailBlockAfter),
			AuthFailWindow:      l.AuthFailWindow.Duration,
			ProxyProtocol:       l.ProxyProtocol,
			TrustedProxies:      l.TrustedProxies.Prefixes(),
			ProxyHeaderTimeout:  l.ProxyHeaderTimeout.Duration,
			Feedback:            l.Feedback,
		})
	}
	return cfgs, stores, nil
}

// commitListenerTLS makes stores the listeners' certificates (e.certs,
// re-read by Reload, and the expiry metric); it logs problems with new
// ones.
func (e *Engine) commitListenerTLS(cfg *config.Config, stores map[string]listenerTLS) {
	certsBy := make(map[string]*certs.Store, len(stores))
	for _, l := range cfg.SMTPListeners {
		lt := stores[l.Name]
		certsBy[l.Name] = lt.store
		if old, ok := e.listenerTLS[l.Name]; !ok || old.store != lt.store {
			e.metrics.CertificateExpiry(l.Name, lt.store.NotAfter)
			e.checkCertificate(l.Name, l.Hostname, lt.store)
		}
	}
	e.listenerTLS = stores
	e.certs = certsBy
}

// certWarnBefore is how long before a listener certificate expires that
// the log warns at start and on reload (the alert
// GannetTLSCertificateExpiresSoon uses the same 14 days).
const certWarnBefore = 14 * 24 * time.Hour

// checkCertificate logs a warning when the certificate of a listener has
// expired, expires within certWarnBefore or does not cover the listener's
// hostname.
func (e *Engine) checkCertificate(listener, hostname string, store *certs.Store) {
	leaf := store.Leaf()
	for _, p := range certs.Problems(leaf, hostname, e.now(), certWarnBefore) {
		args := []any{"listener", listener, "problem", p}
		if leaf != nil {
			args = append(args, "not_after", leaf.NotAfter.UTC().Format(time.RFC3339))
		}
		e.log.Warn("listener certificate", args...)
	}
}

// offIfZero maps the config's "0 turns it off" to inbound's negative "off"
// (zero there means the default).
func offIfZero(n int) int {
	if n == 0 {
		return -1
	}
	return n
}

// inboundMetrics feeds the listener's events to the metrics registry.
type inboundMetrics struct{ e *Engine }

func (m inboundMetrics) ConnOpened(string) {
	m.e.metrics.ConnectionsIn.Inc()
	m.e.metrics.ConnectionsOpenedIn.Inc()
}
func (m inboundMetrics) ConnClosed(string)    { m.e.metrics.ConnectionsIn.Dec() }
func (m inboundMetrics) Received(string, int) {} // counted once durable, in Accept
func (m inboundMetrics) ErrorIn(string, int)  { m.e.metrics.SMTPErrorsIn.Inc() }
func (m inboundMetrics) TLSFailure(string)    { m.e.metrics.TLSFailures.Inc() }
func (m inboundMetrics) ProxyRefused(listener, reason string) {
	m.e.metrics.ProxyRefused(listener, reason).Inc()
}

// authenticator checks SMTP AUTH against [[smtp_user]] of the
// configuration in force (a reload changes the accounts). Its answer takes
// as long for a name that does not exist as for a wrong password
// (config.Login), so that timing does not enumerate the accounts.
//
// A policy script's smtp_server_auth hook, when there is one, answers
// first (script); the accounts decide what it leaves unanswered.
type authenticator struct {
	conf   func() *config.Config
	script func(ctx context.Context, cred smtpwire.AuthCredentials) (user, tenant string, ok, handled bool)
}

func (a authenticator) Authenticate(ctx context.Context, cred smtpwire.AuthCredentials) (string, string, bool) {
	if cred.Username == handover.User {
		// Another node handing mail over (gannet xfer, xferin.go): the
		// name is reserved for it, and needs [xfer] secret.
		key := a.conf().Xfer.Key()
		ok := key != "" && (cred.Mechanism == "CRAM-MD5" && cred.VerifyCRAMMD5(handover.Password(key)) ||
			cred.Mechanism != "CRAM-MD5" && handover.CheckPassword(key, cred.Password))
		if !ok {
			return "", "", false
		}
		return handover.User, "", true
	}
	if a.script != nil {
		if user, tenant, ok, handled := a.script(ctx, cred); handled {
			return user, tenant, ok
		}
	}
	conf := a.conf()
	var u *config.SMTPUser
	if cred.Mechanism == "CRAM-MD5" {
		u = cramLogin(conf, cred)
	} else {
		u = conf.Login(cred.Username, cred.Password)
	}
	if u == nil {
		return "", "", false
	}
	return u.Name, u.Tenant, true
}

// cramNoSecret stands in for the secret of a CRAM-MD5 name that has none:
// its digest is computed all the same, so the answer takes as long.
const cramNoSecret = "\x00no clear password"

// cramLogin checks a CRAM-MD5 response (RFC 2195), which needs the clear
// password: a bcrypt-only account cannot use it. The digest is computed
// for every name, known or not.
func cramLogin(conf *config.Config, cred smtpwire.AuthCredentials) *config.SMTPUser {
	u := conf.SMTPUser(cred.Username)
	known := u != nil && u.Password != ""
	secret := cramNoSecret
	if known {
		secret = u.Password
	}
	if ok := cred.VerifyCRAMMD5(secret); !ok || !known {
		return nil
	}
	return u
}
