package engine

import (
	"context"
	"crypto/tls"
	"time"

	"gannet/engine/inbound"
	"gannet/engine/logrec"
	"gannet/queue"
	"gannet/smtpwire"
)

// CheckMail refuses new transactions while the spool cannot take mail,
// with spoolReply's answer: 452 4.3.1 while the queue or the disk is full,
// 451 4.3.0 after a failed spool write (until the spool's health probe lets
// mail in again). It runs on an event loop and does not block.
func (e *Engine) CheckMail(*inbound.Incoming) *smtpwire.Reply {
	if err := e.admit(); err != nil {
		r := spoolReply(err)
		return &r
	}
	return nil
}

// admit reports whether a new message may be taken now.
func (e *Engine) admit() error {
	if max := e.conf().Queue.MaxQueueDepth; max > 0 && e.delivery.Messages() >= max {
		return errQueueFull
	}
	return e.spool.Healthy()
}

// Accept makes a received message durable and queues it for delivery. It
// runs on an inbound worker goroutine, which also does the DKIM signing.
func (e *Engine) Accept(_ context.Context, in *inbound.Incoming) smtpwire.Reply {
	if err := e.admit(); err != nil {
		return spoolReply(err)
	}
	env := in.Envelope
	now := e.now()
	id := e.ids.Next()
	host := in.Hostname
	if host == "" {
		host = e.hostname()
	}
	p, err := e.prepare(draft{
		id:     id,
		body:   in.Body,
		host:   host,
		tenant: in.Tenant,
		trace:  in.ReceivedHeader(id, now),
		// An authenticated client may route by header (its tenant is its
		// account's); otherwise only hosts in relay_hosts may.
		trusted: in.Tenant != "" || e.trusted(in),
	}, now)
	if err != nil {
		e.log.Error("prepare message", "id", id, "err", err)
		return replyLocalError
	}
	rcpts := make([]string, len(env.Rcpts))
	for i, r := range env.Rcpts {
		rcpts[i] = r.Addr
	}
	m := newQueueMessage(id, env.From.Addr, rcpts, p, now)
	received := func() {
		e.metrics.Received(in.Listener).Inc()
		e.writeReception(m, in.Listener, in.Peer.Addr().String(), env.Helo, in.TLS)
	}
	err = e.store(m, p.body, received)
	// The spool copied the final message into its record: the buffer goes
	// back for the next message (prepare takes its buffers from e.bodies).
	e.bodies.Put(p.body)
	if err != nil {
		e.log.Error("spool append", "id", id, "err", err)
		return spoolReply(err)
	}
	return smtpwire.Reply{Code: 250, Enhanced: "2.0.0", Lines: []string{"OK id=" + id}}
}

// ReleasesBody tells the inbound server (inbound.BodyReleaser) that Accept
// keeps nothing of in.Body: prepare copies it into the final message, so the
// server may reuse the buffer for the connection's next message.
func (e *Engine) ReleasesBody() bool { return true }

// store appends m to the spool (durably), measures the commit and hands the
// message to delivery. durable, when set, runs once the message is on disk
// and before delivery owns m (the Reception records read m, which the
// delivery loop then updates).
func (e *Engine) store(m *queue.Message, body []byte, durable func()) error {
	t0 := time.Now()
	if err := e.spool.Append(m, body); err != nil {
		return err
	}
	e.metrics.SpoolCommit.UpdateDuration(t0)
	if durable != nil {
		durable()
	}
	e.obs.enqueued(m) // before delivery can record an outcome
	if err := e.delivery.Enqueue(m); err != nil {
		// The message is durable; it is picked up again at the next start.
		e.log.Error("enqueue", "id", m.ID, "err", err)
	}
	return nil
}

// recordReception writes the Reception records of a message received
// without TLS (the HTTP inject API).
func (e *Engine) recordReception(m *queue.Message, listener, peer, helo string) {
	e.writeReception(m, listener, peer, helo, nil)
}

// writeReception writes one Reception record per recipient. For a session
// protected by TLS (STARTTLS, RFC 3207, or implicit TLS, RFC 8314) the
// records name the negotiated protocol version and cipher suite, as
// KumoMTA's do; cs is nil for plaintext sessions.
func (e *Engine) writeReception(m *queue.Message, listener, peer, helo string, cs *tls.ConnectionState) {
	now := e.now()
	var tlsVersion, tlsCipher string
	if cs != nil && cs.HandshakeComplete {
		tlsVersion, tlsCipher = logrec.TLSVersion(cs.Version), tls.CipherSuiteName(cs.CipherSuite)
	}
	for _, r := range m.Recipients {
		e.records.Write(&logrec.Record{
			Type:        logrec.Reception,
			ID:          m.ID,
			Sender:      m.From,
			Recipient:   r.Addr,
			Size:        int64(m.Size),
			Response:    logrec.Response{Code: 250, EnhancedCode: "2.0.0", Content: "OK id=" + m.ID},
			PeerAddress: logrec.PeerAddress{Name: helo, Addr: peer},
			Tenant:      m.Tenant,
			Campaign:    m.Campaign,
			Timestamp:   now,
			Created:     m.Created,
			Listener:    listener,

			TLSProtocolVersion: tlsVersion,
			TLSCipher:          tlsCipher,
		})
	}
}

// trusted reports whether the client may set routing metadata by header:
// only hosts in the listener's relay_hosts.
func (e *Engine) trusted(in *inbound.Incoming) bool {
	l := e.cfg.SMTPListener(in.Listener)
	return l != nil && l.RelayHosts.Contains(in.Peer.Addr())
}
