package engine

// The suppression list in the engine: built on the spool (buildSuppression),
// consulted as mail comes in (CheckRcpt for SMTP, httpSuppressed for HTTP,
// dropSuppressed in the store path), fed by hard bounces (suppressBounce)
// and swept of expired entries with the spool's maintenance.

import (
	"errors"
	"strconv"
	"strings"

	"gannet/engine/config"
	"gannet/engine/inbound"
	"gannet/engine/logrec"
	"gannet/engine/suppress"
	"gannet/queue"
	"gannet/smtpwire"
)

// replySuppressed refuses a suppressed recipient at RCPT TO (and is what
// an HTTP caller is told for one).
var replySuppressed = smtpwire.Reply{Code: 550, Enhanced: "5.7.1", Lines: []string{"Recipient address is on the suppression list; mail to it is not sent"}}

// buildSuppression loads the suppression list from the spool.
func (e *Engine) buildSuppression() error {
	e.suppress = suppress.New(e.spool, e.now)
	e.suppress.SetTTL(e.cfg.Suppression.TTL.Duration)
	e.suppress.SetOnAdd(func(source string) { e.metrics.SuppressionAdded(source).Inc() })
	n, err := e.suppress.Load()
	if err != nil {
		return err
	}
	if n > 0 {
		e.log.Info("suppression list loaded", "entries", n, "mode", e.cfg.Suppression.Mode)
	}
	e.metrics.SetSuppressionEntries(func() float64 { return float64(e.suppress.Len()) })
	return nil
}

// Suppression returns the suppression list: the admin API's, and the one
// the feedback listener adds asynchronous bounces and complaints to
// (List.Add).
func (e *Engine) Suppression() *suppress.List { return e.suppress }

// suppressionMode is [suppression] mode as reloaded.
func (e *Engine) suppressionMode() string { return e.conf().Suppression.Mode }

// CheckRcpt implements inbound.RcptChecker: in mode refuse, a recipient
// on the global list or on the list of the session's tenant (its AUTH
// account's) is refused with 550 5.7.1 and a Suppressed record. It runs
// on an event loop and reads memory only. A tenant known only from the
// message (a header, a policy) is checked in the store path instead.
func (e *Engine) CheckRcpt(in *inbound.Incoming, rcpt string) *smtpwire.Reply {
	if e.suppressionMode() != config.SuppressionRefuse || !e.suppress.Suppressed(in.Tenant, rcpt) {
		return nil
	}
	var sender string
	if in.Envelope != nil {
		sender = in.Envelope.From.Addr
	}
	e.recordSuppressed(config.SuppressionRefuse, "", sender, rcpt, in.Tenant, in.Listener, replySuppressed, "")
	return &replySuppressed
}

// httpSuppressed is httpapi.Options.Suppressed: in mode refuse, whether
// an injection of tenant to rcpt is refused for that recipient (counted
// and recorded here; the API reports it per recipient).
func (e *Engine) httpSuppressed(tenant, sender, rcpt string) (string, bool) {
	if e.suppressionMode() != config.SuppressionRefuse || !e.suppress.Suppressed(tenant, rcpt) {
		return "", false
	}
	e.recordSuppressed(config.SuppressionRefuse, "", sender, rcpt, tenant, "http", replySuppressed, "")
	return replySuppressed.String(), true
}

// dropSuppressed takes out of m, before it is spooled, every recipient
// suppressed for m's tenant as the policy decided it, each with a
// Suppressed record (mode drop; in mode refuse these are the recipients
// whose tenant was not known when they were refused or accepted). It
// returns whether recipients remain.
func (e *Engine) dropSuppressed(m *queue.Message, listener string) bool {
	if e.suppressionMode() == config.SuppressionOff || e.suppress.Len() == 0 {
		return true
	}
	kept := m.Recipients[:0]
	for _, r := range m.Recipients {
		list, ok := e.suppress.Match(m.Tenant, r.Addr)
		if !ok {
			kept = append(kept, r)
			continue
		}
		reason := ""
		if en, found, err := e.suppress.Get(list, r.Addr); err == nil && found {
			reason = en.Reason
		}
		e.recordSuppressed(config.SuppressionDrop, m.ID, m.From, r.Addr, m.Tenant, listener,
			smtpwire.Reply{Code: 250, Enhanced: "2.0.0", Lines: []string{"Suppressed, not sent"}}, reason)
	}
	clear(m.Recipients[len(kept):])
	m.Recipients = kept
	return len(kept) > 0
}

// recordSuppressed counts a suppressed recipient and writes its
// Suppressed record; the content is the reply, then the entry's reason.
func (e *Engine) recordSuppressed(mode, id, sender, rcpt, tenant, listener string, r smtpwire.Reply, reason string) {
	e.metrics.Suppressed(mode).Inc()
	if e.suppress.Erased(rcpt) { // an erased address is not written again in clear
		rcpt = addressMask(addressHash(rcpt), rcpt)
		reason = ""
	}
	content := strings.Join(r.Lines, "\n")
	if reason != "" {
		content += " (" + reason + ")"
	}
	now := e.now()
	e.records.Write(&logrec.Record{
		Type:      logrec.Suppressed,
		ID:        id,
		Sender:    sender,
		Recipient: rcpt,
		Response:  logrec.Response{Code: r.Code, EnhancedCode: r.Enhanced, Content: content},
		Tenant:    tenant,
		Timestamp: now,
		Created:   now,
		Listener:  listener,
	})
}

// suppressBounce adds the recipient of a Bounce record whose class is one
// of [suppression] bounce_classes to its tenant's list (not in mode off).
// It is part of logrec.Options.OnRecord, on the goroutine that settled the
// recipient; the write is not synced (suppress: a crash may lose it).
func (e *Engine) suppressBounce(r *logrec.Record) {
	if r.Type != logrec.Bounce || e.suppress == nil {
		return
	}
	sc := &e.conf().Suppression
	if sc.Mode == config.SuppressionOff || !bounceSuppresses(sc.BounceClasses, r.BounceClassification) {
		return
	}
	reason := strconv.Itoa(r.Response.Code)
	if r.Response.EnhancedCode != "" {
		reason += " " + r.Response.EnhancedCode
	}
	reason += " " + r.Response.Content
	if err := e.suppress.Add(r.Tenant, r.Recipient, reason, suppress.SourceBounce); err != nil {
		if !errors.Is(err, suppress.ErrBadAddress) {
			e.log.Error("suppression list: adding a bounced recipient", "id", r.ID, "err", err)
		}
	}
}

func bounceSuppresses(classes []string, class string) bool {
	for _, c := range classes {
		if c == class {
			return true
		}
	}
	return false
}

// sweepSuppression removes expired entries (with the spool's compaction).
func (e *Engine) sweepSuppression() {
	n, err := e.suppress.Sweep()
	switch {
	case err != nil && !errors.Is(err, queue.ErrClosed):
		e.log.Error("suppression list: removing expired entries", "err", err)
	case n > 0:
		e.log.Info("suppression list: expired entries removed", "count", n)
	}
}
