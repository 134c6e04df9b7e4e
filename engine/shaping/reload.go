package shaping

// SetPolicy replaces the adaptive back-off settings and the automation
// rules, as a configuration reload does; the defaults of New apply to the
// zero fields of b. The configured limits are re-read through Config.Base
// on their own (each path asks again at least once a second). The state of
// every path is kept: a cut rate recovers under the new settings, and a
// suspension, bounce or rate cap already in force runs to its end.
func (s *Shaper) SetPolicy(b Backoff, rules []Rule) {
	n := New(Config{Backoff: b, Rules: rules, Base: s.cfg.Base, Now: s.cfg.Now})
	s.mu.Lock()
	s.cfg.Backoff, s.cfg.Rules = n.cfg.Backoff, n.cfg.Rules
	s.mu.Unlock()
}
