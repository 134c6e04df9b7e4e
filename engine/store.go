package engine

// The store path: the one way a message goes from a listener into the
// spool and the delivery queue, for SMTP (Accept) and HTTP (Inject) alike.

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"time"

	"gannet/engine/dkim"
	"gannet/engine/logrec"
	"gannet/engine/policy"
	"gannet/feedback"
	"gannet/queue"
	"gannet/smtpwire"
)

// messagePolicy decides, for each message the store path takes, its
// tenant, campaign and priority, the edits to its header section and the
// domains whose DKIM keys sign it. policy.Rules, the policy the
// configuration states, is the one in use; a scripted policy is a second
// implementation. Decide gets the message by value: a policy changes
// nothing the store path holds, it says what to change in its Decision
// (m.Body is shared and read only). Decide runs on many goroutines at once;
// an error refuses the message (451 4.3.0 over SMTP, 500 over HTTP).
type messagePolicy interface {
	Decide(m policy.Message) (policy.Decision, error)
}

// arrival is one message as a listener hands it to the store path: what
// differs between SMTP and HTTP.
type arrival struct {
	// msg is what the policy sees: listener, envelope, body, the client's
	// tenant binding and whether its headers are trusted, and Hostname,
	// this host's name for the listener. take sets ID and Time.
	msg policy.Message
	// received writes the message's Received field once its id and time
	// are known.
	received receivedField
	// peer, helo and tls name the client in the Reception records: its
	// address, its HELO/EHLO name ("" over HTTP) and the session's TLS
	// state (nil for a plaintext session and for HTTP).
	peer netip.Addr
	helo string
	tls  *tls.ConnectionState
	// keys are DKIM keys the SMTP session's greeting hook named: they sign
	// each of its messages, after the policy's own.
	keys []dkim.KeyConfig
	// requireTLS: the client sent MAIL … REQUIRETLS (RFC 8689 §4.1); the
	// message keeps it in the spool (queue.Message.RequireTLS).
	requireTLS bool
	// dsn is the SMTP envelope with the DSN parameters (RFC 3461) the
	// message is spooled with; nil for HTTP.
	dsn *smtpwire.Envelope
	// xfer is what another node's verified handover carries (xferin.go);
	// nil for other mail.
	xfer *xferIn
}

// receivedField is what the store path needs to write the trace field a
// message gets on top (RFC 5321 §4.4): *inbound.Incoming for SMTP, an
// httpTrace for HTTP. Both build it with msgheader.Trace.
type receivedField interface {
	ReceivedHeader(id string, now time.Time) []byte
}

// maxParallelAppends bounds the goroutines one take of a batch uses to
// prepare and append its messages, so that they share group commits.
const maxParallelAppends = 64

// take is the store path of every message. It takes a batch — the one
// message of an SMTP transaction, or all the messages of an HTTP inject
// request — all or nothing:
//
//  1. admission: the queue has room for the whole batch ([queue]
//     max_queue_depth) and the spool is healthy;
//  2. each message (in parallel for a batch: the signatures use every
//     core and the appends share fsyncs) gets its id, the policy's
//     decision and its final form — header edits applied, DKIM-signed,
//     Received on top (prepare) — and is appended to the spool, durable
//     when Append returns; its buffer goes back to the pool;
//  3. when any message fails, those appended already are removed again
//     and the whole batch is refused: the caller turns the error into its
//     answer (spoolReply for SMTP, injectError for HTTP, replies.go);
//  4. once every message is durable, each is counted, gets its Reception
//     records and is queued for delivery (release).
//
// It returns the ids in batch order. It runs on inbound worker goroutines
// and HTTP handler goroutines, never on an event loop.
func (e *Engine) take(batch []arrival) ([]string, error) {
	if err := e.admit(len(batch)); err != nil {
		return nil, err
	}
	lp := e.policy() // one configuration for the whole batch
	now := e.now()
	ms := make([]*queue.Message, len(batch))
	var err error
	if len(batch) == 1 {
		ms[0], err = e.spoolArrival(lp, &batch[0], now)
	} else {
		// The goroutines get a copy of the batch: the arrivals of the
		// caller's batch do not escape to the heap, so that the one
		// message of an SMTP transaction stays on its worker's stack.
		err = e.spoolEach(lp, slices.Clone(batch), ms, now)
	}
	if err != nil {
		removed := 0
		for _, m := range ms {
			if m == nil {
				continue
			}
			e.hot.drop(m.ID)
			if e.spool.Remove(m.ID) == nil {
				removed++
			}
		}
		e.log.Error("store: messages not taken", "listener", batch[0].msg.Listener,
			"messages", len(batch), "removed", removed, "err", err)
		return nil, err
	}
	ids := make([]string, len(ms))
	for i, m := range ms {
		ids[i] = m.ID
		e.release(m, &batch[i])
	}
	return ids, nil
}

// admit reports whether n new messages may be taken now.
func (e *Engine) admit(n int) error {
	if max := e.conf().Queue.MaxQueueDepth; max > 0 && e.delivery.Messages()+n > max {
		return errQueueFull
	}
	return e.spool.Healthy()
}

// spoolEach spools every arrival of batch on up to maxParallelAppends
// goroutines, setting ms[i] for each one that is durable.
func (e *Engine) spoolEach(lp *livePolicy, batch []arrival, ms []*queue.Message, now time.Time) error {
	errs := make([]error, len(batch))
	var wg sync.WaitGroup
	sem := make(chan struct{}, maxParallelAppends)
	for i := range batch {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			ms[i], errs[i] = e.spoolArrival(lp, &batch[i], now)
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// spoolArrival prepares one arrival and appends it to the spool: the
// message is durable when it returns without error.
func (e *Engine) spoolArrival(lp *livePolicy, a *arrival, now time.Time) (*queue.Message, error) {
	id := e.ids.Next()
	p, err := e.prepare(lp, a, id, now)
	if err != nil {
		return nil, fmt.Errorf("message %s: %w", id, err)
	}
	if !e.dropSuppressed(p.m, a.msg.Listener) {
		// Every recipient is suppressed: nothing to spool or deliver; the
		// client is answered as for any message taken (mode drop).
		e.bodies.Put(p.buf)
		return p.m, nil
	}
	err = e.appendToSpool(p.m, p.final)
	// The spool copied the final message into its record: the buffer goes
	// to the first attempt (hotbody.go), or back for the next message.
	if err != nil || !e.hot.put(id, p.final, p.buf, now) {
		e.bodies.Put(p.buf)
	}
	if err != nil {
		return nil, fmt.Errorf("message %s: %w", id, err)
	}
	return p.m, nil
}

// appendToSpool appends m with its content to the spool and measures the
// commit: m is durable when it returns without error (group commit).
func (e *Engine) appendToSpool(m *queue.Message, content []byte) error {
	t0 := time.Now()
	if err := e.spool.Append(m, content); err != nil {
		return err
	}
	e.metrics.SpoolCommit.UpdateDuration(t0)
	return nil
}

// prepared is a message ready to spool.
type prepared struct {
	m     *queue.Message
	final []byte // the Received field, the DKIM-Signature fields, the edited message
	buf   []byte // the pooled buffer final lies in (unless the signatures outgrew their room)
}

// sigReserve is the room prepare leaves in front of a message it signs for
// the DKIM-Signature fields: two signatures (From domain and tenant domain)
// of about 500–700 bytes each (an RSA-2048 b= is 344 characters).
const sigReserve = 2048

// prepare asks the policy about a (with id and now) and builds the final
// message: the Received field (RFC 5321 §4.4), then the DKIM-Signature
// fields (RFC 6376), then the message with the policy's header edits. The
// signatures cover the edited message, so everything the policy added is
// signed; the Received field goes above them and is not (trace fields are
// not signed).
//
// The final message is built once: one pooled buffer with room in front for
// the Received field and the signatures, into which the received bytes are
// copied once (policy.AppendEdited); the signers read it in place. prepare
// is CPU work (an RSA signature is about a millisecond) and takes no lock.
func (e *Engine) prepare(lp *livePolicy, a *arrival, id string, now time.Time) (prepared, error) {
	a.msg.ID, a.msg.Time = id, now
	d, err := lp.messages.Decide(a.msg)
	if err != nil {
		return prepared{}, fmt.Errorf("policy: %w", err)
	}
	for _, w := range d.Warnings {
		e.log.Warn(w.Text, append([]any{"id", id}, w.Args...)...)
	}
	if a.xfer != nil {
		applyXfer(&d, a.xfer) // the handover's tenant and campaign, no second signature
	}
	// The signed reference that matches bounces and complaints back to
	// this message (feedback.go), set before the signatures are made so
	// that they may cover it; a field the client sent is replaced.
	if ref := e.feedbackRef(id, d.Tenant, d.Campaign); ref != "" {
		d.Edits = append(slices.Clip(d.Edits), policy.HeaderEdit{Kind: policy.Replace, Name: feedback.RefHeader, Value: ref})
	}
	trace := a.received.ReceivedHeader(id, now)

	keys := d.DKIMKeys
	if len(a.keys) > 0 && (a.xfer == nil || !a.xfer.Signed) {
		keys = append(slices.Clip(keys), a.keys...)
	}
	signed := len(d.DKIMDomains) > 0 || len(keys) > 0
	head := len(trace)
	if signed {
		head += sigReserve
	}
	buf := e.bodies.Get(head + policy.EditedLen(a.msg.Body, d.Edits))
	out, err := policy.AppendEdited(buf[:head], a.msg.Body, d.Edits)
	if err != nil {
		e.bodies.Put(buf)
		return prepared{}, err
	}
	content := out[head:]
	var sigs []byte
	var toSign *dkim.Message // its body is hashed once for every key
	if signed {
		toSign = dkim.NewMessage(content)
	}
	if len(d.DKIMDomains) > 0 {
		if sigs, err = lp.signers.SignMessage(toSign, d.DKIMDomains); err != nil {
			e.bodies.Put(buf)
			return prepared{}, fmt.Errorf("DKIM: %w", err)
		}
	}
	if len(keys) > 0 {
		more, err := e.signWithKeys(toSign, keys)
		if err != nil {
			e.bodies.Put(buf)
			return prepared{}, fmt.Errorf("DKIM (policy script): %w", err)
		}
		sigs = append(sigs, more...)
	}
	p := prepared{m: newQueueMessage(&a.msg, d, now), buf: buf}
	p.m.RequireTLS = a.requireTLS
	withDSN(p.m, a.dsn)
	if a.xfer != nil {
		xferMessage(p.m, a.xfer)
	}
	if front := len(trace) + len(sigs); front <= head {
		start := head - front
		copy(out[start:], trace)
		copy(out[start+len(trace):], sigs)
		p.final = out[start:]
	} else { // signatures longer than reserved: one more copy
		p.final = append(append(append(make([]byte, 0, front+len(content)), trace...), sigs...), content...)
	}
	return p, nil
}

// newQueueMessage builds the spool record of a message and its decision.
func newQueueMessage(msg *policy.Message, d policy.Decision, now time.Time) *queue.Message {
	m := &queue.Message{
		ID:       msg.ID,
		From:     msg.Sender,
		Tenant:   d.Tenant,
		Campaign: d.Campaign,
		Priority: d.Priority,
		Created:  now,
	}
	m.Recipients = make([]queue.Recipient, len(msg.Recipients))
	for i, r := range msg.Recipients {
		m.Recipients[i] = queue.Recipient{Addr: r}
	}
	return m
}

// withDSN copies the DSN parameters of an SMTP envelope (RFC 3461: RET and
// ENVID of MAIL, NOTIFY and ORCPT of each RCPT) into m. A recipient is
// matched by address, as the policy may have changed the list.
func withDSN(m *queue.Message, env *smtpwire.Envelope) {
	if env == nil {
		return
	}
	m.DSNRet, m.EnvID = uint8(env.Ret), env.EnvID
	used := make([]bool, len(env.Rcpts))
	for i := range m.Recipients {
		r := &m.Recipients[i]
		for k := range env.Rcpts {
			p := &env.Rcpts[k]
			if used[k] || p.Addr != r.Addr {
				continue
			}
			used[k] = true
			r.Notify, r.ORcpt = uint8(p.Notify), p.ORcpt
			break
		}
	}
}

// release hands a durable message over: it is counted, its Reception
// records are written (they read m, so before delivery owns it), and it is
// queued for delivery.
func (e *Engine) release(m *queue.Message, a *arrival) {
	e.metrics.Received(a.msg.Listener).Inc()
	if len(m.Recipients) == 0 {
		return // all suppressed (dropSuppressed): not spooled
	}
	xferFrom := ""
	if a.xfer != nil {
		xferFrom = a.xfer.ID
	}
	e.writeReception(m, a.msg.Listener, a.peer.String(), a.helo, a.tls, xferFrom)
	e.enqueue(m)
}

// enqueue hands a durable message to delivery.
func (e *Engine) enqueue(m *queue.Message) {
	e.obs.enqueued(m) // before delivery can record an outcome
	if err := e.delivery.Enqueue(m); err != nil {
		// The message is durable; it is picked up again at the next start.
		e.log.Error("enqueue", "id", m.ID, "err", err)
	}
}

// writeReception writes one Reception record per recipient. For a session
// protected by TLS (STARTTLS, RFC 3207, or implicit TLS, RFC 8314) the
// records name the negotiated protocol version and cipher suite, as
// KumoMTA's do; cs is nil for plaintext sessions and HTTP.
func (e *Engine) writeReception(m *queue.Message, listener, peer, helo string, cs *tls.ConnectionState, xferFrom string) {
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
			XferFrom:    xferFrom,

			TLSProtocolVersion: tlsVersion,
			TLSCipher:          tlsCipher,
		})
	}
}
