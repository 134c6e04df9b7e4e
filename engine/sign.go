package engine

import (
	"fmt"

	"gannet/engine/dkim"
)

// The DKIM keys: loaded at start, re-read on SIGHUP. Which keys sign a
// message is the message policy's decision (policy.Rules, engine/policy);
// the store path signs with the keys of the live policy (prepare).

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
