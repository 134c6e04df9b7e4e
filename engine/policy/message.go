package policy

import (
	"time"

	"gannet/engine/dkim"
)

// Message is what a policy knows of a message at reception, before the
// client has its answer. It is the same for SMTP and HTTP: a field that one
// path does not know is empty.
type Message struct {
	// ID is the message's queue id: the left side of an added Message-ID,
	// "{id}" in a List-Unsubscribe template, and the id in log lines.
	ID string
	// Hostname is this host's name: the right side of an added Message-ID.
	Hostname string
	// Time is the time of reception: the value of an added Date.
	Time time.Time
	// Listener names where the message came in: the [[smtp_listener]]
	// name, or "http" for the HTTP inject API.
	Listener string
	// Sender is the envelope sender (RFC 5321 reverse-path), "" for the
	// null path; Recipients are the envelope recipients.
	Sender     string
	Recipients []string
	// Body is the message as received: header section and body, CRLF line
	// ends, without the Received field Gannet adds. A policy only reads it;
	// HeaderEdit spans are offsets into it.
	Body []byte
	// Tenant is the tenant the client is bound to — its SMTP AUTH account's
	// or its API key's — or the one the API request names; "" for none.
	// Campaign and Priority are what the API request names (SMTP has none).
	Tenant   string
	Campaign string
	Priority int // 0 bulk, 1 high (transactional)
	// Trusted says whether the client may route the message by header: it
	// is in the SMTP listener's relay_hosts, has authenticated, or is an
	// HTTP API caller (trusted host or API key).
	Trusted bool
}

// Decision is what a policy makes of a Message.
type Decision struct {
	// Tenant, Campaign and Priority are the message's routing metadata:
	// its scheduled queue is (tenant, campaign, destination domain), and a
	// priority of 1 puts it ahead of bulk mail.
	Tenant   string
	Campaign string
	Priority int
	// Edits are the changes to the message's header section, applied in
	// one pass by AppendEdited before the message is signed.
	Edits []HeaderEdit
	// DKIMDomains are the domains whose [[dkim]] keys sign the edited
	// message (RFC 6376), in the order of the DKIM-Signature fields; none:
	// the message is not signed.
	DKIMDomains []string
	// DKIMKeys are keys a policy script named (kumo.sign_dkim,
	// msg:dkim_sign): each signs the edited message too, after the
	// DKIMDomains signatures. The engine keeps one signer per key, so a
	// key file is read once, not per message.
	DKIMKeys []dkim.KeyConfig
	// Warnings are what the engine logs about the decision, with the
	// message id.
	Warnings []Warning
}

// Warning is one line for the operator's log.
type Warning struct {
	Text string
	Args []any // key-value pairs, as log/slog takes them
}
