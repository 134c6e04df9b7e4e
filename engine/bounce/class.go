package bounce

import "strconv"

// Class is a bounce classification: why a recipient could not be delivered,
// in KumoMTA's vocabulary, so that log records and metrics read the same as
// KumoMTA's "bounce_classification".
type Class uint8

// The classes, with KumoMTA's names and meanings. The zero value is
// Uncategorized.
const (
	// Uncategorized: no rule or status code said more.
	Uncategorized Class = iota
	// InvalidRecipient: the recipient address does not exist.
	InvalidRecipient
	// DNSFailure: a DNS lookup failed (not a definite "no such domain").
	DNSFailure
	// SpamBlock: the sender (IP, domain) is blocked as a spam source:
	// block lists, reputation, complaints.
	SpamBlock
	// SpamContent: the message itself was judged to be spam.
	SpamContent
	// ProhibitedAttachment: the message carried an attachment the receiver
	// refuses.
	ProhibitedAttachment
	// RelayDenied: the receiver does not relay for this recipient.
	RelayDenied
	// AutoReply: an auto-reply or vacation message.
	AutoReply
	// TransientFailure: delivery was delayed for now: throttling, try later.
	TransientFailure
	// Subscribe: a subscribe request.
	Subscribe
	// Unsubscribe: an unsubscribe request.
	Unsubscribe
	// ChallengeResponse: a challenge-response probe.
	ChallengeResponse
	// BadConfiguration: the remote host is misconfigured or failed
	// internally.
	BadConfiguration
	// BadConnection: the connection to the remote host broke.
	BadConnection
	// BadDomain: the recipient domain does not exist or takes no mail.
	BadDomain
	// ContentRelated: the message's content or format was refused.
	ContentRelated
	// InactiveMailbox: the mailbox exists but is disabled, suspended,
	// expired or moved.
	InactiveMailbox
	// InvalidSender: the envelope sender or its domain was refused as
	// invalid.
	InvalidSender
	// MessageExpired: the message could not be delivered before it expired.
	MessageExpired
	// NoAnswerFromHost: the remote host did not answer.
	NoAnswerFromHost
	// PolicyRelated: refused for the receiver's general policy reasons.
	PolicyRelated
	// ProtocolErrors: SMTP syntax or sequence errors.
	ProtocolErrors
	// QuotaIssues: a mailbox or system storage quota or size limit was hit.
	QuotaIssues
	// RelayingIssues: the remote server had relaying problems.
	RelayingIssues
	// RoutingErrors: mail for the recipient domain could not be routed.
	RoutingErrors
	// SpamRelated: refused for other spam-related reasons.
	SpamRelated
	// VirusRelated: the message was found to carry a virus or malware.
	VirusRelated
	// AuthenticationFailed: sender authentication (SPF, DKIM, DMARC, SMTP
	// AUTH) was required and not met.
	AuthenticationFailed
	// TooManyRecipients: a per-session or per-message recipient limit was
	// hit; the other recipients should be retried even after a 5xx.
	TooManyRecipients

	numClasses
)

var classNames = [numClasses]string{
	Uncategorized:        "Uncategorized",
	InvalidRecipient:     "InvalidRecipient",
	DNSFailure:           "DNSFailure",
	SpamBlock:            "SpamBlock",
	SpamContent:          "SpamContent",
	ProhibitedAttachment: "ProhibitedAttachment",
	RelayDenied:          "RelayDenied",
	AutoReply:            "AutoReply",
	TransientFailure:     "TransientFailure",
	Subscribe:            "Subscribe",
	Unsubscribe:          "Unsubscribe",
	ChallengeResponse:    "ChallengeResponse",
	BadConfiguration:     "BadConfiguration",
	BadConnection:        "BadConnection",
	BadDomain:            "BadDomain",
	ContentRelated:       "ContentRelated",
	InactiveMailbox:      "InactiveMailbox",
	InvalidSender:        "InvalidSender",
	MessageExpired:       "MessageExpired",
	NoAnswerFromHost:     "NoAnswerFromHost",
	PolicyRelated:        "PolicyRelated",
	ProtocolErrors:       "ProtocolErrors",
	QuotaIssues:          "QuotaIssues",
	RelayingIssues:       "RelayingIssues",
	RoutingErrors:        "RoutingErrors",
	SpamRelated:          "SpamRelated",
	VirusRelated:         "VirusRelated",
	AuthenticationFailed: "AuthenticationFailed",
	TooManyRecipients:    "TooManyRecipients",
}

// String returns the KumoMTA name of the class, e.g. "InvalidRecipient";
// it does not allocate.
func (c Class) String() string {
	if c < numClasses {
		return classNames[c]
	}
	return classNames[Uncategorized]
}

// ParseClass returns the class with the given KumoMTA name (exact case).
func ParseClass(name string) (Class, bool) {
	for i, n := range classNames {
		if n == name {
			return Class(i), true
		}
	}
	return Uncategorized, false
}

// Classes returns every class, in declaration order (Uncategorized first),
// for example to pre-register one metric label per class.
func Classes() []Class {
	out := make([]Class, numClasses)
	for i := range out {
		out[i] = Class(i)
	}
	return out
}

// MarshalText implements encoding.TextMarshaler with the class name.
func (c Class) MarshalText() ([]byte, error) { return []byte(c.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler; unknown names are an
// error.
func (c *Class) UnmarshalText(b []byte) error {
	v, ok := ParseClass(string(b))
	if !ok {
		return &UnknownClassError{Name: string(b)}
	}
	*c = v
	return nil
}

// UnknownClassError reports a class name that is not one of KumoMTA's.
type UnknownClassError struct{ Name string }

func (e *UnknownClassError) Error() string { return "bounce: unknown class " + strconv.Quote(e.Name) }
