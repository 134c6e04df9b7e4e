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

type recordKind uint8

const (
	kindDelivery recordKind = iota
	kindBounce
	kindTransient
	kindExpiration
)

func (k recordKind) logType() logrec.Type {
	switch k {
	case kindDelivery:
		return logrec.Delivery
	case kindBounce:
		return logrec.Bounce
	case kindExpiration:
		return logrec.Expiration
	}
	return logrec.TransientFailure
}

// record is one outcome to log: the recipient (index) and its result.
type record struct {
	kind   recordKind
	rcpt   int
	result outbound.Result
}

type logRecord = logrec.Record

// makeRecord builds the log record; it runs under the message lock.
func (l *Loop) makeRecord(m *queue.Message, it *workItem, rc record, out *outbound.Outcome, now time.Time) logRecord {
	r := logrec.Record{
		Type:        rc.kind.logType(),
		ID:          m.ID,
		Sender:      m.From,
		Recipient:   m.Recipients[rc.rcpt].Addr,
		Queue:       QueueName(m.Campaign, m.Tenant, it.domain),
		Size:        int64(m.Size),
		NumAttempts: m.Recipients[rc.rcpt].Attempts,
		Response: logrec.Response{
			Code:         rc.result.Reply.Code,
			EnhancedCode: rc.result.Reply.Enhanced,
			Content:      strings.Join(rc.result.Reply.Lines, "\n"),
		},
		TLSProtocolVersion: out.TLSVersion,
		TLSCipher:          out.TLSCipher,
		EgressSource:       it.source.Name,
		Tenant:             m.Tenant,
		Campaign:           m.Campaign,
		Timestamp:          now,
		Created:            m.Created,
	}
	if it.route != nil {
		r.Site = it.route.Site
	}
	if out.Peer.IsValid() {
		r.PeerAddress = logrec.PeerAddress{Name: out.Host, Addr: out.Peer.Addr().String()}
	}
	switch rc.kind {
	case kindBounce:
		r.BounceClassification = l.classify(rc.result.Reply)
	case kindExpiration:
		r.BounceClassification = "MessageExpired"
	}
	return r
}

func (l *Loop) emit(r logRecord) {
	if l.opts.Record != nil {
		l.opts.Record.Write(&r)
	}
}

func (l *Loop) classify(r smtpwire.Reply) string {
	if l.opts.Classify != nil {
		return l.opts.Classify(r)
	}
	return Classify(r)
}

// QueueName is the scheduled queue's name in KumoMTA's form
// "campaign:tenant@domain", leaving out the parts that are empty.
func QueueName(campaign, tenant, domain string) string {
	var b strings.Builder
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
