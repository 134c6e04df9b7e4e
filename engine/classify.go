package engine

import "gannet/smtpwire"

// classify names the bounce_classification of a failed delivery attempt
// with the engine's bounce rules.
func (e *Engine) classify(r smtpwire.Reply) string {
	c := e.bounces
	if p := e.policy(); p != nil {
		c = p.bounces // a reload may have replaced the rules
	}
	return c.ClassifyLines(r.Code, r.Enhanced, r.Lines).String()
}
