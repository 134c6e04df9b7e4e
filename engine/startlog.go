package engine

import (
	"strings"

	"gannet/engine/config"
	"gannet/engine/dkim"
	"gannet/resolver"
)

// The start-up lines: one per listener and one for delivery, saying where
// mail comes in and where it goes, so that an operator sees at a glance a
// relay about to deliver to the Internet through the system's resolver.

// logSMTPListener writes the line of one SMTP listener bound at addr.
func (e *Engine) logSMTPListener(l *config.SMTPListener, addr string) {
	tls := "starttls"
	if l.ImplicitTLS {
		tls = "implicit"
	}
	auth := "off"
	if e.cfg.HasLogins() || e.hooksFor("smtp_server_auth") != nil {
		auth = strings.Join(l.AuthMechanisms, ",")
		if l.AuthRequireTLS {
			auth += " (after TLS)"
		}
	}
	e.log.Info("smtp listening", "name", l.Name, "addr", addr, "tls", tls, "auth", auth,
		"relay_hosts", l.RelayHosts.String())
}

// logDelivery writes the delivery line: the smarthost, or the resolver
// that finds the MX hosts, marked "system resolver" when it comes from
// resolv.conf — and then a warning, since mail will go to real domains.
func (e *Engine) logDelivery() {
	d := &e.cfg.Delivery
	for _, t := range e.cfg.Tenants {
		if t.RelayTo != "" {
			e.log.Info("delivery: mail of a tenant goes to its smarthost", "tenant", t.Name, "relay_to", t.RelayTo, "relay_user", t.RelayUser)
		}
	}
	for dom, r := range e.cfg.Relays {
		e.log.Info("delivery: mail to a domain goes to its smarthost", "domain", dom, "relay_to", r.RelayTo, "relay_user", r.RelayUser)
	}
	if d.RelayTo != "" {
		e.log.Info("delivery: every message goes to the smarthost relay_to", "relay_to", d.RelayTo,
			"relay_tls", d.RelayTLS, "relay_user", d.RelayUser)
		return
	}
	var servers []string
	if e.resolver != nil {
		servers = e.resolver.Nameservers()
	}
	if len(e.cfg.Resolver.Nameservers) > 0 {
		e.log.Info("delivery: to the MX hosts of each domain", "resolver", strings.Join(servers, ","),
			"smtp_port", d.SMTPPort)
		return
	}
	e.log.Warn("delivery: to the MX hosts of each domain, found through the system resolver: mail goes to real destinations on the Internet (set [delivery] relay_to or [resolver] nameservers to keep it local)",
		"resolver", strings.Join(servers, ",")+" (system resolver, "+resolver.DefaultResolvConf+")",
		"smtp_port", d.SMTPPort)
}

// logSigning says which RSA implementation DKIM signatures use: "go"
// (crypto/rsa) or "openssl" (`make build-openssl`).
func (e *Engine) logSigning() {
	e.log.Info("dkim rsa signing", "backend", dkim.RSABackend, "keys", len(e.cfg.DKIM))
}
