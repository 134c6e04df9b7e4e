package engine

// Feedback in: the bounces (asynchronous DSNs, RFC 3464) and complaints
// (ARF reports, RFC 5965) that come back to the return path and the FBL
// addresses. A message to a feedback address (a [[smtp_listener]] with
// feedback = true, or a recipient in [feedback] domains or
// return_path_domain) is not spooled: acceptFeedback parses it (package
// feedback), matches it to the message Gannet sent by its signed
// reference, writes OOB or Feedback records, hands hard bounces and
// complaints to the suppression list, and answers.
//
// Outbound, prepare adds the X-Gannet-Ref field before signing
// (feedbackRef) and delivery asks returnPath for the envelope sender.

import (
	"cmp"
	"errors"
	"strings"

	"gannet/engine/bounce"
	"gannet/engine/inbound"
	"gannet/engine/logrec"
	"gannet/feedback"
	"gannet/mailaddr"
	"gannet/smtpwire"
)

// Suppressor is the suppression list as feedback uses it: a permanent
// out-of-band bounce of a hard class (source "oob") or a complaint
// (source "complaint") adds the recipient for the original message's
// tenant. Add must be safe for concurrent use; *suppress.List has it.
// Options.Suppressor nil: the engine's own list.
type Suppressor interface {
	Add(tenant, address, reason, source string) error
}

// The suppression sources feedback uses.
const (
	suppressOOB       = "oob"
	suppressComplaint = "complaint"
)

// Replies to feedback messages.
var (
	replyFeedbackOK = smtpwire.Reply{Code: 250, Enhanced: "2.0.0", Lines: []string{"OK report recorded"}}
	// replyNotReport: what comes to a feedback address must be a report;
	// an auto-reply or a person's answer is refused (its sender learns
	// the address takes reports only), and a bounce from the null sender
	// refused here is dropped by the reporter.
	replyNotReport = smtpwire.Reply{Code: 550, Enhanced: "5.6.0", Lines: []string{
		"This address takes only delivery status notifications (RFC 3464) and feedback reports (RFC 5965)"}}
)

// hardClasses are the bounce classes of an address that will not take
// mail again: an OOB bounce of one of them suppresses the address.
var hardClasses = map[bounce.Class]bool{
	bounce.InvalidRecipient: true, bounce.BadDomain: true, bounce.InactiveMailbox: true,
}

// complaintTypes are the Feedback-Types (RFC 5965 §7.3 and the opt-out
// draft) that mean "do not mail me again".
var complaintTypes = map[string]bool{"abuse": true, "fraud": true, "opt-out": true}

// feedbackDomain is inbound.Options.FeedbackDomain: reload-safe.
func (e *Engine) feedbackDomain(domain string) bool {
	f := &e.conf().Feedback
	if len(f.Domains) == 0 && f.ReturnPathDomain == "" {
		return false
	}
	return f.FeedbackDomain(domain)
}

// feedbackKey returns the key of the references, invalid without
// [feedback] secret.
func (e *Engine) feedbackKey() feedback.Key { return feedback.NewKey(e.conf().Feedback.Secret) }

// feedbackRef returns the X-Gannet-Ref value of a message, "" when the
// field is not wanted ([feedback] ref_header, secret).
func (e *Engine) feedbackRef(id, tenant, campaign string) string {
	f := &e.conf().Feedback
	if !f.RefHeader || f.Secret == "" {
		return ""
	}
	return feedback.NewKey(f.Secret).Seal(feedback.Ref{ID: id, Tenant: tenant, Campaign: campaign})
}

// returnPath is delivery.Options.ReturnPath: the envelope sender of a
// transaction of message id, sent by from, to rcpts. With [feedback]
// return_path_domain it is the VERP address naming the message (and the
// recipient, when the transaction has one); the null sender stays null
// (RFC 5321 §4.5.5).
func (e *Engine) returnPath(id, tenant, campaign, from string, rcpts []string) string {
	f := &e.conf().Feedback
	if from == "" || f.ReturnPathDomain == "" || f.Secret == "" {
		return from
	}
	ref := feedback.Ref{ID: id, Tenant: tenant, Campaign: campaign}
	if len(rcpts) == 1 {
		ref.Recipient = rcpts[0]
	}
	return feedback.VERPAddress(f.ReturnPathPrefix, feedback.NewKey(f.Secret).Seal(ref), f.ReturnPathDomain)
}

// matchedRef is what a report was matched to.
type matchedRef struct {
	ref feedback.Ref
	by  string // "verp", "header"; "" when not matched
	why string // why not matched
}

// matchReport finds the reference of a report: the VERP token of the
// address it was sent to, else the X-Gannet-Ref field it quotes. Only a
// token that verifies under [feedback] secret matches.
func (e *Engine) matchReport(rcpts []smtpwire.Path, r *feedback.Report) matchedRef {
	k := e.feedbackKey()
	if !k.Valid() {
		return matchedRef{why: "no [feedback] secret"}
	}
	var why string
	prefix := e.conf().Feedback.ReturnPathPrefix
	for _, p := range rcpts {
		tok, ok := feedback.VERPToken(p.Addr, prefix)
		if !ok {
			continue
		}
		ref, err := k.Open(tok)
		if err == nil {
			return matchedRef{ref: ref, by: "verp"}
		}
		why = "return path: " + refError(err)
	}
	if r.Ref != "" {
		ref, err := k.Open(r.Ref)
		if err == nil {
			return matchedRef{ref: ref, by: "header"}
		}
		why = feedback.RefHeader + ": " + refError(err)
	}
	if why == "" {
		why = "no reference (no VERP return path, no " + feedback.RefHeader + " in the returned header)"
	}
	return matchedRef{why: why}
}

func refError(err error) string {
	if errors.Is(err, feedback.ErrForged) {
		return "forged reference (the signature does not verify)"
	}
	return "malformed reference"
}

// acceptFeedback consumes a message sent to feedback addresses: a DSN
// becomes OOB records (one per recipient it reports on), an ARF report a
// Feedback record per reported recipient. Unmatched reports are recorded
// too, with matched false and the reason; only matched ones suppress. A
// message that is not a report gets 550 5.6.0. Nothing is spooled or
// relayed.
func (e *Engine) acceptFeedback(in *inbound.Incoming) smtpwire.Reply {
	r, err := feedback.Parse(in.Body)
	if err != nil {
		e.log.Info("feedback: message refused", "listener", in.Listener, "peer", in.Peer.Addr().String(),
			"sender", in.Envelope.From.Addr, "err", err)
		if errors.Is(err, feedback.ErrMalformed) {
			reply := replyNotReport
			reply.Lines = []string{"Malformed report: " + strings.TrimPrefix(err.Error(), feedback.ErrMalformed.Error()+": ")}
			return reply
		}
		return replyNotReport
	}
	m := e.matchReport(in.Envelope.Rcpts, r)
	base := logrec.Record{
		Sender:      in.Envelope.From.Addr,
		Size:        int64(len(in.Body)),
		PeerAddress: logrec.PeerAddress{Name: in.Envelope.Helo, Addr: in.Peer.Addr().String()},
		Timestamp:   e.now(),
		Listener:    in.Listener,
	}
	if m.by != "" {
		base.ID, base.Tenant, base.Campaign = m.ref.ID, m.ref.Tenant, m.ref.Campaign
	}
	rep := logrec.Report{Matched: m.by != "", MatchedBy: m.by, Unmatched: m.why, ReportingMTA: r.ReportingMTA}
	switch r.Kind {
	case feedback.DSN:
		e.recordOOB(base, rep, r, m)
	case feedback.ARF:
		e.recordFeedback(base, rep, r, m)
	}
	e.metrics.FeedbackReport(r.Kind.String(), m.by != "").Inc()
	return replyFeedbackOK
}

// recordOOB writes the OOB records of a DSN.
func (e *Engine) recordOOB(base logrec.Record, rep logrec.Report, r *feedback.Report, m matchedRef) {
	rcpts := r.Recipients
	if len(rcpts) == 0 { // a DSN without recipient groups: the VERP recipient, if any
		rcpts = []feedback.Recipient{{FinalRecipient: m.ref.Recipient}}
	}
	for _, rc := range rcpts {
		rec, rp := base, rep
		rec.Type = logrec.OOB
		rec.Recipient = rc.FinalRecipient
		code := rc.Code
		if code == 0 && len(rc.Status) > 0 { // no SMTP reply quoted: the class says
			code = map[byte]int{'2': 250, '4': 450, '5': 550}[rc.Status[0]]
		}
		rec.Response = logrec.Response{Code: code, EnhancedCode: rc.Status, Content: rc.Diagnostic}
		class := e.policy().bounces.Classify(code, rc.Status, rc.Diagnostic)
		rec.BounceClassification = class.String()
		rp.RemoteMTA, rp.Action = rc.RemoteMTA, rc.Action
		if m.by != "" && rc.Permanent() && hardClasses[class] {
			addr := suppressAddress(m.ref.Recipient, rc.OriginalRecipient, rc.FinalRecipient)
			reason := strings.TrimSpace(rc.Status + " " + rc.Diagnostic)
			rp.Suppressed = e.suppressFeedback(m.ref.Tenant, addr, reason, suppressOOB)
		}
		rec.Report = &rp
		e.records.Write(&rec)
	}
}

// recordFeedback writes the Feedback records of an ARF report: one per
// Original-Rcpt-To, else one for the VERP recipient (or none named).
func (e *Engine) recordFeedback(base logrec.Record, rep logrec.Report, r *feedback.Report, m matchedRef) {
	rcpts := r.OriginalRcptTo
	if len(rcpts) == 0 {
		rcpts = []string{m.ref.Recipient}
	}
	rep.FeedbackType, rep.UserAgent, rep.SourceIP = r.FeedbackType, r.UserAgent, r.SourceIP
	for _, to := range rcpts {
		rec, rp := base, rep
		rec.Type = logrec.Feedback
		rec.Recipient = to
		if m.by != "" && complaintTypes[r.FeedbackType] {
			addr := suppressAddress(m.ref.Recipient, to)
			rp.Suppressed = e.suppressFeedback(m.ref.Tenant, addr, r.FeedbackType+" report from "+cmp.Or(r.UserAgent, r.ReportingMTA, "unknown"), suppressComplaint)
		}
		rec.Report = &rp
		e.records.Write(&rec)
	}
}

// suppressAddress is the first of the candidates that is an address: the
// recipient the reference names, then what the report says.
func suppressAddress(candidates ...string) string {
	for _, a := range candidates {
		if strings.Contains(a, "@") && mailaddr.Domain(a) != "" {
			return a
		}
	}
	return ""
}

// suppressFeedback hands addr to the suppression list (Options.Suppressor,
// else the engine's own, engine/suppress); it reports whether the list
// took it.
func (e *Engine) suppressFeedback(tenant, addr, reason, source string) bool {
	var list Suppressor = e.suppressor
	if list == nil && e.suppress != nil {
		list = e.suppress
	}
	if list == nil || addr == "" {
		return false
	}
	if err := list.Add(tenant, addr, reason, source); err != nil {
		e.log.Error("feedback: suppression list", "tenant", tenant, "source", source, "err", err)
		return false
	}
	return true
}
