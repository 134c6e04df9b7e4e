package engine

import (
	"cmp"
	"errors"
	"fmt"

	"gannet/engine/delivery"
	"gannet/engine/handover"
	"gannet/engine/inbound"
	"gannet/engine/outbound"
	"gannet/engine/policy"
	"gannet/queue"
	"gannet/smtpwire"
)

// The receiving side of a handover (gannet xfer, engine/handover): a
// session that logged in as handover.User with [xfer] secret is another
// node handing its mail over. Its message's X-Gannet-Xfer field is
// verified (the MAC, with the same secret) and then decides the
// message's tenant, campaign, first reception and attempts; a message
// Gannet signed already is not signed again; the Reception records name
// the id it had there (xfer_from). The field stays in the spooled message
// (queue.Message.Xferred), where the delivery loop reads the hops and the
// node it came from, and is taken out of every delivery. From any other
// session the field is ignored and stripped, so that no client can claim
// to be a node.

// xferIn is what a verified handover gives the store path (arrival.xfer).
type xferIn = handover.Meta

// isXferSession reports whether the session logged in as another node.
func isXferSession(in *inbound.Incoming) bool { return in.AuthUser == handover.User }

// xferArrival applies the handover field of an SMTP message to a: verified
// from a node's session, stripped from any other. A non-nil reply refuses
// the message: a field that does not verify (another secret, an altered
// message), or one past handover.MaxHops.
func (e *Engine) xferArrival(in *inbound.Incoming, a *arrival) *smtpwire.Reply {
	if !isXferSession(in) {
		// One pass over the header section; the message itself when it
		// has no such field (the usual case).
		if stripped := handover.Strip(a.msg.Body); len(stripped) != len(a.msg.Body) {
			e.log.Warn("xfer: an "+handover.HeaderName+" field from a session that is not another node's was removed",
				"listener", in.Listener, "peer", in.Peer.String(), "user", in.AuthUser)
			a.msg.Body = stripped
		}
		return nil
	}
	meta, _, err := handover.Verify(e.conf().Xfer.Key(), a.msg.Body)
	switch {
	case errors.Is(err, handover.ErrNoField):
		return nil
	case err != nil:
		e.log.Warn("xfer: a handover refused", "peer", in.Peer.String(), "err", err)
		return &smtpwire.Reply{Code: 550, Enhanced: "5.7.1", Lines: []string{"xfer: the " + handover.HeaderName + " field does not verify"}}
	case meta.Hops > handover.MaxHops:
		e.log.Warn("xfer: a handover refused: too many hops", "peer", in.Peer.String(), "node", meta.Node, "id", meta.ID, "hops", meta.Hops)
		// RFC 3463 §3.5: X.4.6 routing loop detected.
		return &smtpwire.Reply{Code: 554, Enhanced: "5.4.6", Lines: []string{
			fmt.Sprintf("xfer: handed over %d times, more than %d (xfer rules in a loop?)", meta.Hops, handover.MaxHops)}}
	}
	a.xfer = &meta
	a.msg.Tenant = meta.Tenant
	return nil
}

// applyXfer makes the policy's decision keep what the handover carries:
// the tenant and campaign, and no second signature of a signed message.
func applyXfer(d *policy.Decision, x *xferIn) {
	d.Tenant, d.Campaign = x.Tenant, x.Campaign
	if x.Signed {
		d.DKIMDomains, d.DKIMKeys = nil, nil
	}
}

// xferMessage marks the spool record of a handed-over message.
func xferMessage(m *queue.Message, x *xferIn) {
	m.Xferred = true
	if !x.Received.IsZero() && x.Received.Before(m.Created) {
		m.Created = x.Received
	}
	m.Attempts = x.Attempts
}

// handoverIdentity is delivery.Options.Handover: the [xfer] secret in
// force, this node's id ([cluster] node_id, else its host name) and the
// address of its first SMTP listener (what `gannet cluster status` shows
// and a rule on another node names).
func (e *Engine) handoverIdentity() delivery.HandoverIdentity {
	c := e.conf()
	id := delivery.HandoverIdentity{Secret: c.Xfer.Key(), Node: cmp.Or(c.Cluster.NodeID, e.hostname())}
	if as := e.SMTPAddrs(); len(as) > 0 {
		id.SMTP = as[0].String()
	}
	return id
}

// xferLogin is the login for the target of an xfer rule: with [xfer]
// secret, AUTH as handover.User over STARTTLS, the certificate verified
// (as [tls] says) unless allow_insecure_auth; without, none (the target
// must relay for this node).
func (e *Engine) xferLogin() outbound.RelayAuth {
	x := &e.conf().Xfer
	if x.Key() == "" {
		return outbound.RelayAuth{}
	}
	return outbound.RelayAuth{TLS: outbound.RelayStartTLS, User: handover.User, Password: handover.Password(x.Key()),
		AllowInsecureAuth: x.AllowInsecureAuth}
}
