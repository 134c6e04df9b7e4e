package delivery

import (
	"strings"
	"time"

	"gannet/engine/logrec"
	"gannet/engine/outbound"
	"gannet/queue"
	"gannet/smtpwire"
)

// Recorder takes log records (*logrec.Writer has it). Write must not block.
type Recorder interface {
	Write(r *logrec.Record) bool
}

// recordKind is the type of a log record delivery writes: what became of
// one recipient in one step.
type recordKind uint8

const (
	kindDelivery    recordKind = iota // delivered: final
	kindBounce                        // refused by the server or by DNS: final
	kindTransient                     // deferred: the recipient stays pending
	kindExpiration                    // deferred past max_retry_age: final
	kindAdminBounce                   // bounced by an operator: final
	kindAdminDelete                   // deleted by an operator, no bounce: final
	kindXferOut                       // handed to another node by an xfer rule (xfer.go): final
)

func (k recordKind) logType() logrec.Type {
	switch k {
	case kindDelivery:
		return logrec.Delivery
	case kindBounce:
		return logrec.Bounce
	case kindExpiration:
		return logrec.Expiration
	case kindAdminBounce:
		return logrec.AdminBounce
	case kindAdminDelete:
		return logrec.AdminDelete
	case kindXferOut:
		return logrec.XferOut
	}
	return logrec.TransientFailure
}

// state is the recipient state a verdict of this kind leaves.
func (k recordKind) state() queue.RcptState {
	switch k {
	case kindDelivery, kindXferOut:
		return queue.Delivered
	case kindBounce, kindAdminBounce, kindAdminDelete:
		return queue.Bounced
	case kindExpiration:
		return queue.Expired
	}
	return queue.Pending
}

// newRecord builds the log record of a verdict on recipient v.rcpt of m;
// out is the transaction it reports (nil: none ran). Under the message
// lock: it reads m.
func (l *Loop) newRecord(m *queue.Message, v *verdict, out *outbound.Outcome, now time.Time) logrec.Record {
	rc := &m.Recipients[v.rcpt]
	r := logrec.Record{
		Type:        v.kind.logType(),
		ID:          m.ID,
		Sender:      m.From,
		Recipient:   rc.Addr,
		Queue:       QueueName(m.Campaign, m.Tenant, v.dest.Domain),
		Site:        v.dest.Site.String(),
		Size:        int64(m.Size),
		NumAttempts: rc.Attempts,
		Response: logrec.Response{
			Code:         v.reply.Code,
			EnhancedCode: v.reply.Enhanced,
			Content:      strings.Join(v.reply.Lines, "\n"),
		},
		EgressSource: v.dest.Source,
		Tenant:       m.Tenant,
		Campaign:     m.Campaign,
		Timestamp:    now,
		Created:      m.Created,
	}
	if out != nil {
		r.TLSProtocolVersion = out.TLSVersion
		r.TLSCipher = out.TLSCipher
		r.TLSPolicy = out.TLSPolicy
		if v.kind != kindDelivery {
			r.TLSResultType = out.TLSResultType
		}
		if out.Peer.IsValid() {
			r.PeerAddress = logrec.PeerAddress{Name: out.Host, Addr: out.Peer.Addr().String()}
		}
	}
	switch v.kind {
	case kindBounce, kindAdminBounce:
		r.BounceClassification = l.classify(v.reply)
	case kindExpiration:
		r.BounceClassification = "MessageExpired"
	}
	return r
}

func (l *Loop) classify(r smtpwire.Reply) string {
	if l.opts.Classify != nil {
		return l.opts.Classify(r)
	}
	return Classify(r)
}

// QueueName is the scheduled queue's name in KumoMTA's form
// "campaign:tenant@domain", leaving out the parts that are empty.
// Every log record of a delivery names it: a name that is just the domain
// is the domain itself, any other is built in one allocation.
func QueueName(campaign, tenant, domain string) string {
	if campaign == "" && tenant == "" {
		return domain
	}
	var b strings.Builder
	b.Grow(len(campaign) + 1 + len(tenant) + 1 + len(domain))
	if campaign != "" {
		b.WriteString(campaign)
		b.WriteByte(':')
	}
	if tenant != "" {
		b.WriteString(tenant)
		b.WriteByte('@')
	}
	b.WriteString(domain)
	return b.String()
}

// Classify is the default bounce classification, from the enhanced status
// code (RFC 3463) of a permanent reply, using KumoMTA's class names.
func Classify(r smtpwire.Reply) string {
	e := r.Enhanced
	switch {
	case e == "5.1.10" || e == "5.1.2" || e == "5.4.4":
		return "BadDomain"
	case strings.HasPrefix(e, "5.1.") && e != "5.1.7" && e != "5.1.8":
		return "InvalidRecipient"
	case e == "5.1.7" || e == "5.1.8":
		return "InvalidSender"
	case e == "5.2.2":
		return "QuotaIssues"
	case e == "5.2.1":
		return "InactiveMailbox"
	case e == "5.7.1" && r.Code == 554:
		return "SpamBlock"
	case strings.HasPrefix(e, "5.7."):
		return "PolicyRelated"
	case strings.HasPrefix(e, "5.6.") || e == "5.3.4":
		return "ContentRelated"
	case strings.HasPrefix(e, "5.5."):
		return "ProtocolErrors"
	case strings.HasPrefix(e, "5.4."):
		return "RoutingErrors"
	}
	return "Uncategorized"
}
