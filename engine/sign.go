package engine

import (
	"fmt"

	"gannet/engine/config"
	"gannet/engine/dkim"
)

// buildSigning loads the [[dkim]] keys. A missing or unusable key file is a
// start-up error that names the file.
func (e *Engine) buildSigning() error {
	keys := make([]dkim.KeyConfig, len(e.cfg.DKIM))
	for i, k := range e.cfg.DKIM {
		keys[i] = dkim.KeyConfig(k)
	}
	s, err := dkim.New(keys)
	if err != nil {
		return fmt.Errorf("[[dkim]]: %w", err)
	}
	e.signers = s
	return nil
}

// dkimSigners returns the signers in force: those of the live policy
// (a reload that changed [[dkim]] replaces them), else those of New.
func (e *Engine) dkimSigners() *dkim.Signers {
	if p := e.policy(); p != nil && p.signers != nil {
		return p.signers
	}
	return e.signers
}

// reloadSigning re-reads the key files (SIGHUP, after a key rotation); a
// file that no longer loads keeps its previous key.
func (e *Engine) reloadSigning() {
	s := e.dkimSigners()
	if s == nil {
		return
	}
	if err := s.Reload(); err != nil {
		e.log.Error("reload DKIM keys", "err", err)
		return
	}
	e.log.Info("DKIM keys reloaded", "keys", len(e.conf().DKIM))
}

// sign returns the DKIM-Signature fields for body under cfg, the
// configuration prepare settled the message with (the message id is for
// the log), nil when no key applies. Which keys sign is the rule documented
// at [[tenant]] dkim_domains in default.toml:
//
//   - mail of no [[tenant]] (a trusted client naming none, or naming one
//     that is not configured) is signed with the keys of its header From
//     domain;
//   - mail of a [[tenant]] (bound by its API key or SMTP AUTH account, or
//     named by a trusted client) is signed with the keys of its From domain
//     only when that domain is one of the tenant's own (dkim_domain,
//     dkim_domains) — never with another tenant's key, nor with that of a
//     domain no tenant lists, whatever the From field says — and with the
//     keys of its dkim_domain (an ESP signing for itself and for its
//     customer gives both).
//
// A From domain that has a key and is refused for the tenant is logged
// with the tenant, the domain and the message id.
func (e *Engine) sign(body []byte, cfg *config.Config, tenant *config.Tenant, id string) ([]byte, error) {
	signers := e.dkimSigners()
	if signers == nil || len(cfg.DKIM) == 0 {
		return nil, nil
	}
	from := dkim.HeaderFromDomain(body)
	tenantDomain := ""
	if tenant != nil {
		tenantDomain = tenant.DKIMDomain
		if from != "" && !tenant.HasDomain(from) {
			if signers.Has(from) {
				e.logForeignFrom(cfg, tenant, from, id)
			}
			from = ""
		}
	}
	domains := signers.SelectDomains(from, tenantDomain)
	if len(domains) == 0 {
		return nil, nil
	}
	return signers.Sign(body, domains)
}

// logForeignFrom says why a tenant's message is not signed with the key of
// its From domain: the domain is another tenant's, or no tenant's.
func (e *Engine) logForeignFrom(cfg *config.Config, tenant *config.Tenant, domain, id string) {
	if owner := cfg.DomainTenant(domain); owner != nil {
		e.log.Warn("DKIM: not signing From domain of another tenant",
			"id", id, "tenant", tenant.Name, "domain", domain, "owner", owner.Name)
		return
	}
	e.log.Warn("DKIM: not signing From domain that is not the tenant's (dkim_domain, dkim_domains)",
		"id", id, "tenant", tenant.Name, "domain", domain)
}
