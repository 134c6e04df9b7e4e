package shaping

// SetPolicy replaces the adaptive back-off settings and the automation
// rules, as a configuration reload does; the defaults of New apply to the
// zero fields of b. It also asks Config.Base again for the configured
// limits of every known path, so that new limits apply at once (a path
// that is used continuously would otherwise keep the limits it read
// first). The state of every path is kept: a cut rate recovers under the
// new settings, and a suspension, bounce or rate cap already in force runs
// to its end.
func (s *Shaper) SetPolicy(b Backoff, rules []Rule) {
	n := New(Config{Backoff: b, Rules: rules, Base: s.cfg.Base, Now: s.cfg.Now})
	s.mu.Lock()
	defer s.unlock()
	s.cfg.Backoff, s.cfg.Rules = n.cfg.Backoff, n.cfg.Rules
	for _, p := range s.paths {
		p.base, p.tuning = s.cfg.Base(p.domain, p.hosts), s.tuningOf(p)
	}
}
