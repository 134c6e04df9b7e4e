package engine

import (
	"fmt"
	"time"

	"gannet/queue"
)

// draft is what SMTP and HTTP know about a message before it is prepared.
type draft struct {
	id       string
	body     []byte // as received: header and body, CRLF line ends, no Received yet
	host     string // our host name, for Message-ID
	tenant   string // from SMTP AUTH, the API key or the API request; "" for none
	campaign string // from the API request
	priority int    // from the API request
	// trace is the Received field to put on top of the final message
	// (above the signatures, so it is not signed); nil for none.
	trace []byte
	// trusted: the [meta] header values count (the client may route by
	// header); otherwise the headers are only stripped.
	trusted bool
}

// prepared is a message ready to spool: the routing metadata and the
// final content (edited and signed, below draft.trace).
type prepared struct {
	tenant, campaign string
	priority         int
	body             []byte
}

// prepare is the one path every message takes between reception and the
// spool, for SMTP and HTTP alike:
//
//  1. the [meta] headers are read (when trusted) and stripped (when
//     strip_meta_headers is set): tenant, campaign, priority;
//  2. the tenant, campaign and priority are settled: SMTP AUTH user or API
//     key first, then the API request, then the headers;
//  3. missing Date and Message-ID and, for bulk mail of a tenant with
//     list_unsubscribe, List-Unsubscribe (RFC 8058) are added;
//  4. the message is signed with DKIM (the From domain's key — for mail of
//     a tenant only when the domain is the tenant's own — and the tenant's
//     dkim_domain key, see sign), so the signature covers the final content.
//
// The draft's Received field (trace) goes above the signatures, so trace
// fields are not signed. The final message is built once: one buffer with
// room in front for the trace and the signatures, into which the received
// bytes are copied once, without the stripped fields and with the added
// ones; the signers read it in place. prepare is CPU work (an RSA signature is about a
// millisecond): it runs on inbound worker goroutines and HTTP handler
// goroutines, never on an event loop, and takes no lock.
func (e *Engine) prepare(d draft, now time.Time) (prepared, error) {
	meta := e.readMeta(d.body, d.trusted)
	p := prepared{tenant: d.tenant, campaign: d.campaign, priority: d.priority}
	if p.tenant == "" {
		p.tenant = meta.tenant
	}
	if p.campaign == "" {
		p.campaign = meta.campaign
	}
	p.priority = max(p.priority, meta.priority)

	cfg := e.conf() // one configuration for the whole message
	tenant := cfg.Tenant(p.tenant)
	at, add := plannedEditsExcept(cfg, d.body, meta.strip, tenant, p.campaign).fields(d.body, meta.strip, d.id, d.host, now)

	head := len(d.trace)
	if len(cfg.DKIM) > 0 {
		head += sigReserve
	}
	n := len(d.body) + len(add)
	for _, r := range meta.strip {
		n -= r[1] - r[0]
	}
	buf := appendContent(e.bodies.Get(head + n)[:head], d.body, meta.strip, at, add)
	content := buf[head:]

	sigs, err := e.sign(content, cfg, tenant, d.id)
	if err != nil {
		return prepared{}, fmt.Errorf("message %s: %w", d.id, err)
	}
	if front := len(d.trace) + len(sigs); front <= head {
		start := head - front
		copy(buf[start:], d.trace)
		copy(buf[start+len(d.trace):], sigs)
		p.body = buf[start:]
	} else { // signatures longer than reserved: one more copy
		p.body = append(append(append(make([]byte, 0, front+len(content)), d.trace...), sigs...), content...)
	}
	return p, nil
}

// sigReserve is the room prepare leaves in front of a message for its
// DKIM-Signature fields: two signatures (From domain and tenant domain) of
// about 500–700 bytes each (an RSA-2048 b= is 344 characters).
const sigReserve = 2048

// withReceived returns recv followed by body, in a new slice.
func withReceived(recv, body []byte) []byte {
	out := make([]byte, 0, len(recv)+len(body))
	return append(append(out, recv...), body...)
}

// newQueueMessage builds the spool record of a prepared message.
func newQueueMessage(id, from string, rcpts []string, p prepared, now time.Time) *queue.Message {
	m := &queue.Message{
		ID:       id,
		From:     from,
		Tenant:   p.tenant,
		Campaign: p.campaign,
		Priority: p.priority,
		Created:  now,
	}
	m.Recipients = make([]queue.Recipient, len(rcpts))
	for i, r := range rcpts {
		m.Recipients[i] = queue.Recipient{Addr: r}
	}
	return m
}
