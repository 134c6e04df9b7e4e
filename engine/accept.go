package engine

import (
	"cmp"
	"context"

	"gannet/engine/inbound"
	"gannet/engine/policy"
	"gannet/smtpwire"
)

// CheckMail refuses new transactions while the spool cannot take mail,
// with spoolReply's answer: 452 4.3.1 while the queue or the disk is full,
// 451 4.3.0 after a failed spool write (until the spool's health probe lets
// mail in again). It runs on an event loop and does not block.
func (e *Engine) CheckMail(*inbound.Incoming) *smtpwire.Reply {
	if err := e.admit(1); err != nil {
		r := spoolReply(err)
		return &r
	}
	return nil
}

// Accept makes a received message durable and queues it for delivery
// through the store path (take). It runs on an inbound worker goroutine,
// which also does the DKIM signing. A message the store path refuses is
// answered by spoolReply: 452 4.3.1 when the queue or the disk is full,
// else 451 4.3.0.
func (e *Engine) Accept(_ context.Context, in *inbound.Incoming) smtpwire.Reply {
	if in.Feedback {
		return e.acceptFeedback(in) // feedback.go: consumed, not spooled
	}
	a := e.smtpArrival(in)
	if r := e.xferArrival(in, &a); r != nil {
		return *r // xferin.go
	}
	ids, err := e.take([]arrival{a})
	if err != nil {
		return spoolReply(err)
	}
	return smtpwire.Reply{Code: 250, Enhanced: "2.0.0", Lines: []string{"OK id=" + ids[0]}}
}

// smtpArrival is what the store path needs of an SMTP message.
func (e *Engine) smtpArrival(in *inbound.Incoming) arrival {
	env := in.Envelope
	rcpts := make([]string, len(env.Rcpts))
	for i, r := range env.Rcpts {
		rcpts[i] = r.Addr
	}
	return arrival{
		msg: policy.Message{
			Hostname:   cmp.Or(in.Hostname, e.hostname()),
			Listener:   in.Listener,
			Sender:     env.From.Addr,
			Recipients: rcpts,
			Body:       in.Body,
			Tenant:     in.Tenant,
			// An authenticated client may route by header (its tenant is
			// its account's); otherwise only hosts in relay_hosts may.
			Trusted: in.Tenant != "" || e.trusted(in),
		},
		// inbound's builder writes the Received field: RFC 3848
		// protocol names, the TLS comment, "for" with one recipient.
		received: in,
		peer:     in.Peer.Addr(),
		helo:     env.Helo,
		tls:      in.TLS,
		keys:     sessionKeys(in),
		// RFC 8689 §4.1: the session offered REQUIRETLS (only under TLS)
		// and the client asked for it.
		requireTLS: env.RequireTLS,
		dsn:        env,
	}
}

// ReleasesBody tells the inbound server (inbound.BodyReleaser) that Accept
// keeps nothing of in.Body: the store path copies it into the final
// message, so the server may reuse the buffer for the connection's next
// message.
func (e *Engine) ReleasesBody() bool { return true }

// trusted reports whether the client may set routing metadata by header:
// only hosts in the listener's relay_hosts.
func (e *Engine) trusted(in *inbound.Incoming) bool {
	l := e.cfg.SMTPListener(in.Listener)
	return l != nil && l.RelayHosts.Contains(in.Peer.Addr())
}
