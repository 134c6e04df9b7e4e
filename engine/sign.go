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

// sign returns the DKIM-Signature fields for body: one signature per key of
// the header From domain and of the tenant's dkim_domain (an ESP signing
// for itself and for its customer gives both), nil when no key applies.
func (e *Engine) sign(body []byte, tenant *config.Tenant) ([]byte, error) {
	signers := e.dkimSigners()
	if signers == nil || len(e.conf().DKIM) == 0 {
		return nil, nil
	}
	tenantDomain := ""
	if tenant != nil {
		tenantDomain = tenant.DKIMDomain
	}
	domains := signers.SelectDomains(dkim.HeaderFromDomain(body), tenantDomain)
	if len(domains) == 0 {
		return nil, nil
	}
	return signers.Sign(body, domains)
}
