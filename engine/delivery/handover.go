package delivery

import (
	"gannet/engine/handover"
	"gannet/msgheader"
	"gannet/queue"
)

// The sending side of a node-to-node handover (gannet xfer with [xfer]
// secret; engine/handover): the message goes to the target with an
// X-Gannet-Xfer field on top that carries its id, tenant, campaign, first
// reception, attempts and hops, MACed with the secret. A message that
// came here by a handover (queue.Message.Xferred) keeps the verified
// field in the spool: every delivery takes it out, a handover replaces
// it (one more hop), and the message never goes back to the node it
// came from — a rule whose target is that node's SMTP address is passed
// over, and the message goes to its own destination instead — so two
// nodes whose rules point at each other do not pass mail back and forth.
// The target refuses more than handover.MaxHops handovers besides.

// HandoverIdentity is what a handover says of this node.
type HandoverIdentity struct {
	Secret string // [xfer] secret; "": handovers carry no field
	Node   string // this node's id ([cluster] node_id, else the host name)
	SMTP   string // this node's SMTP listener, host:port (what a target's rule names)
}

// handoverBody returns the body a transaction of a (message m, body)
// sends: without the field of an earlier handover, and with a new one
// when it goes to an xfer target. back is true when the item's xfer
// target is the node the message came from: the item must be routed
// again without that rule.
func (l *Loop) handoverBody(it *workItem, m *queue.Message, body []byte) (out []byte, back bool) {
	if !m.Xferred && it.xfer == nil {
		return body, false
	}
	var prev handover.Meta
	had := false
	if m.Xferred {
		prev, had = handover.Parse(body)
		body = handover.Strip(body)
	}
	if it.xfer == nil {
		return body, false
	}
	if had && prev.From != "" && prev.From == it.xfer.Target {
		l.admin.mu.Lock()
		if l.admin.xferBack == nil {
			l.admin.xferBack = make(map[string]string)
		}
		l.admin.xferBack[m.ID] = prev.From
		l.admin.mu.Unlock()
		l.log.Warn("xfer: not handing a message back to the node it came from; it goes to its own destination",
			"rule", it.xfer.ID, "target", it.xfer.Target, "id", m.ID, "from_node", prev.Node, "from_id", prev.ID)
		return body, true
	}
	var id HandoverIdentity
	if l.opts.Handover != nil {
		id = l.opts.Handover()
	}
	if id.Secret == "" {
		return body, false
	}
	_, signed := msgheader.Get(body, "DKIM-Signature")
	meta := handover.Meta{Node: id.Node, From: id.SMTP, ID: m.ID, Tenant: it.ms.env.tenant, Campaign: it.ms.env.campaign,
		Received: m.Created, Attempts: m.Attempts, Hops: prev.Hops + 1, Signed: signed}
	return handover.Prepend(id.Secret, meta, body), false
}

// xferBackTo returns the target a message must not be handed to (the
// node it came from), "" when none; under l.admin.mu.
func (l *Loop) xferBackTo(id string) string {
	return l.admin.xferBack[id]
}
