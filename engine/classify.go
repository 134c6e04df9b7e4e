package engine

import "gannet/smtpwire"

// classify names the bounce_classification of a failed delivery attempt
// with the engine's bounce rules.
func (e *Engine) classify(r smtpwire.Reply) string {
	return e.bounces.ClassifyLines(r.Code, r.Enhanced, r.Lines).String()
}
