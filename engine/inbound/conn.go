package inbound

import (
	"context"
	"crypto/tls"
	"net/netip"
	"sync/atomic"
	"time"

	"github.com/panjf2000/gnet/v2"

	"gannet/engine/trace"
	"gannet/mailaddr"
	"gannet/smtpwire"
)

// Limits on what one connection may leave buffered.
const (
	// maxOutbound is how many reply bytes may wait in gnet's buffer for a
	// client that does not read them (the kernel's socket buffers have
	// taken what they can by then); past it the client is dropped. The
	// session yields every smtpwire.DefaultMaxOutput bytes of replies
	// (EventFlush) so that this is checked before more are made. Replies
	// to a legitimate pipelined batch are a few kilobytes: 1000 RCPT
	// replies are 30 KB.
	maxOutbound = 256 << 10
	// extraInbound is how much a client may pipeline behind a command a
	// worker holds: command lines, which are short (RFC 2920 §3.1: a
	// command that changes state, like AUTH, ends a group, so a client
	// following the RFC sends nothing behind it at all). Behind a message
	// the next one may follow in BDAT chunks (RFC 3030 §4.2), so there
	// MaxMessageSize more is allowed. gnet keeps reading into its buffer
	// while the worker runs; past the limit the client is dropped.
	extraInbound = 256 << 10
	// inputChunk is the most input fed to the session at a time: gnet's
	// Peek copies when its ring buffer wraps, so a large backlog is fed a
	// bounded piece at a time rather than copied whole for every event.
	inputChunk = 64 << 10
)

// conn is the state of one SMTP connection. Everything except deadline and
// timeoutQueued is touched only on the connection's event loop: in gnet
// callbacks and in runnables queued with onLoop.
type conn struct {
	l     *listener
	c     gnet.Conn
	sess  *smtpwire.Session
	peer  netip.AddrPort
	local netip.AddrPort

	// The flags and small counters share one word (the struct stays in
	// the 256-byte size class).
	relay       bool   // peer is inside RelayHosts
	busy        bool   // a worker holds the pending event; parsing is paused
	heldMessage bool   // what the worker holds (or held last) is a message, not an AUTH check
	closing     bool   // QUIT, 421 or an error: flush and close
	closed      bool   // OnClose ran; late runnables do nothing
	rejections  uint16 // 4xx/5xx replies so far (Rejection.Seq), saturating
	traceGen    uint32 // trace.Hub.Gen when the session last checked whether it is traced
	traceID     uint32 // the session's number in traces; 0: not traced

	authUser, tenant string
	helo             string          // the last EHLO/HELO name
	greeting         any             // what the Greeter returned (Incoming.Greeting)
	refuse           *smtpwire.Reply // the Greeter's refusal of the session's mail
	tls              *tlsConn        // nil: plaintext
	refusal          []byte          // implicit TLS: the 421 to send after the handshake (listener.refuse)
	mailIn           *Incoming       // reused for CheckMail

	// deadline is when the current wait (command, data, idle) expires, in
	// Unix nanoseconds of the server clock; 0 while a worker is busy.
	deadline      atomic.Int64
	timeoutQueued atomic.Bool
	started       int64  // connection start, Unix nanoseconds
	armedLines    uint64 // Session.Lines when deadline was last armed
}

func newConn(l *listener, c gnet.Conn, peer, local netip.AddrPort) *conn {
	st := &conn{l: l, c: c, peer: peer, local: local}
	st.relay = l.mayRelay(peer.Addr())
	cfg := l.sessCfg[0]
	if st.relay {
		cfg = l.sessCfg[1]
	}
	st.sess = smtpwire.NewSession(cfg)
	if o := st.observer(); o != nil {
		st.sess.SetObserver(o, false)
	}
	st.started = l.srv.now().UnixNano()
	return st
}

// onTraffic handles readable bytes: while a worker holds the session they
// stay in gnet's buffer (bounded); otherwise they are parsed.
func (st *conn) onTraffic() gnet.Action {
	if st.closing {
		_, _ = st.c.Discard(-1)
		return gnet.None
	}
	if st.tls != nil {
		return st.tlsTraffic()
	}
	if st.busy {
		if st.c.InboundBuffered() > st.inboundLimit() {
			st.ranAhead()
			return gnet.Close
		}
		return gnet.None
	}
	st.process()
	if st.closing {
		return gnet.Close
	}
	return gnet.None
}

// inboundLimit is how much input the client may have buffered while a
// worker holds its session (see extraInbound).
func (st *conn) inboundLimit() int {
	if st.heldMessage {
		return int(st.l.cfg.MaxMessageSize) + extraInbound
	}
	return extraInbound
}

// ranAhead logs a client dropped for sending more than inboundLimit while a
// worker held its session.
func (st *conn) ranAhead() {
	st.l.srv.log.Debug("client ran too far ahead", "listener", st.l.name, "peer", st.peer.String())
}

// input returns unparsed plaintext, at most inputChunk bytes of it on a
// plaintext connection; consume drops the first n bytes.
func (st *conn) input() []byte {
	if st.tls != nil {
		return st.tls.plainInput()
	}
	b, _ := st.c.Peek(min(st.c.InboundBuffered(), inputChunk))
	return b
}

func (st *conn) consume(n int) {
	if n <= 0 {
		return
	}
	if st.tls != nil {
		st.tls.consumePlain(n)
		return
	}
	_, _ = st.c.Discard(n)
}

// process feeds buffered input to the session until it needs more input, a
// worker takes over, or the session ends; then writes the replies produced
// in one write (RFC 2920: replies to a pipelined batch go out together). A
// long batch is written whenever the session yields (EventFlush), so the
// replies kept in memory stay bounded.
func (st *conn) process() {
	st.checkTrace()
	for !st.busy && !st.closing && !st.closed {
		// Feed is called even with no input after an event: the session
		// may finish a step (e.g. "BDAT 0 LAST") without new bytes.
		n, ev := st.sess.Feed(st.input())
		st.consume(n)
		if ev.Kind == smtpwire.EventNone {
			if n > 0 {
				continue // the input was fed a chunk at a time: more may wait
			}
			break // all consumed, or a partial line kept by the session
		}
		st.handle(ev)
	}
	st.flush()
	if st.closed {
		return
	}
	if !st.closing && (st.l.srv.draining.Load() || st.l.draining.Load()) {
		st.drainIfIdle()
	}
	st.setDeadline()
}

// handle answers one session event.
func (st *conn) handle(ev smtpwire.Event) {
	switch ev.Kind {
	case smtpwire.EventHello:
		st.helo = ev.Hello
		if st.l.srv.greeter != nil {
			st.heldMessage = false
			st.greet()
		}
	case smtpwire.EventMail:
		st.sess.Respond(st.checkMail(ev))
	case smtpwire.EventRcpt:
		st.sess.Respond(st.checkRcpt(ev))
	case smtpwire.EventMessage:
		st.heldMessage = true
		st.submitMessage(ev)
	case smtpwire.EventAuth:
		st.heldMessage = false
		st.submitAuth(ev)
	case smtpwire.EventStartTLS:
		// The 220 is in the session's output. Everything the client sent
		// after STARTTLS is discarded unread (RFC 3207 §4.2, the
		// CVE-2011-0411 command injection), then the handshake starts.
		st.flush()
		if st.tls != nil || st.l.cfg.TLSConfig == nil {
			st.closing = true // the session should never offer it twice
			return
		}
		_, _ = st.c.Discard(-1)
		st.startTLS()
	case smtpwire.EventFlush:
		// A long pipelined batch: write the replies so far before the
		// session makes more; flush drops a client that does not read them.
		st.flush()
	case smtpwire.EventQuit, smtpwire.EventClose:
		st.closing = true
	}
}

// checkMail runs the Acceptor's MAIL FROM check. The Incoming is reused
// for every MAIL of the connection: CheckMail must not keep it.
func (st *conn) checkMail(ev smtpwire.Event) *smtpwire.Reply {
	if st.refuse != nil {
		if st.refuse.Code == 421 {
			st.closing = true
		}
		return st.refuse
	}
	if st.l.srv.draining.Load() {
		// Draining (gannet drain, or a stop): no new transaction; the
		// session ends with the 421 (RFC 5321 §3.8).
		st.closing = true
		return &replyDraining
	}
	if st.mailIn == nil {
		st.mailIn = new(Incoming)
	}
	*st.mailIn = *st.incoming(ev.Envelope, nil)
	r := st.l.srv.acc.CheckMail(st.mailIn)
	st.mailIn.Envelope = nil // it points into the session
	return r
}

// replyDraining answers MAIL while the server drains.
var replyDraining = smtpwire.Reply{Code: 421, Enhanced: "4.3.2", Lines: []string{"Service not taking new mail now (draining), try another server or later"}}

// checkRcpt is the relay control: a client inside RelayHosts, or one that
// authenticated, may send to any domain; any other gets 554 5.7.1 (the
// contract's "relay denied"). The feedback addresses — every recipient
// of a feedback listener, and the feedback domains — are Gannet's only
// local addresses: anyone may send to them. A transaction is feedback or
// relayed mail, not both: a recipient of the other kind gets 452 4.5.3,
// which tells the client to send it in a later transaction (RFC 5321
// §3.3, as for too many recipients). A relayed recipient then goes to the
// Acceptor's RcptChecker, when it has one (the suppression list).
func (st *conn) checkRcpt(ev smtpwire.Event) *smtpwire.Reply {
	if ev.Rcpt == nil { // not a RCPT event: only the relay control
		if !st.relay && st.authUser == "" {
			return &smtpwire.ReplyRelayDenied
		}
		return nil
	}
	fb := st.feedbackRcpt(ev.Rcpt.Addr)
	if ev.Envelope != nil && len(ev.Envelope.Rcpts) > 0 && st.feedbackRcpt(ev.Envelope.Rcpts[0].Addr) != fb {
		return &replyMixedFeedback
	}
	if fb {
		return nil // feedback is consumed here, never suppressed
	}
	if !st.relay && st.authUser == "" {
		return &smtpwire.ReplyRelayDenied
	}
	rc, ok := st.l.srv.acc.(RcptChecker)
	if !ok {
		return nil
	}
	if st.mailIn == nil {
		st.mailIn = new(Incoming)
	}
	*st.mailIn = *st.incoming(ev.Envelope, nil)
	r := rc.CheckRcpt(st.mailIn, ev.Rcpt.Addr)
	st.mailIn.Envelope = nil // it points into the session
	return r
}

// replyMixedFeedback answers a recipient whose kind (feedback or relayed)
// differs from the transaction's first.
var replyMixedFeedback = smtpwire.Reply{Code: 452, Enhanced: "4.5.3", Lines: []string{"Feedback and relayed mail go in separate transactions, send this recipient later"}}

// feedbackRcpt reports whether mail to addr is feedback on this listener.
func (st *conn) feedbackRcpt(addr string) bool {
	if st.l.cfg.Feedback {
		return true
	}
	f := st.l.srv.feedbackDomain
	return f != nil && f(mailaddr.Domain(addr))
}

// incoming describes the session's transaction to the Acceptor.
func (st *conn) incoming(env *smtpwire.Envelope, body []byte) *Incoming {
	return &Incoming{
		Listener: st.l.name,
		Hostname: st.l.cfg.Hostname,
		Peer:     st.peer,
		Local:    st.local,
		Envelope: env,
		Body:     body,
		TLS:      st.tlsState(),
		AuthUser: st.authUser,
		Tenant:   st.tenant,
		Greeting: st.greeting,
		Feedback: env != nil && len(env.Rcpts) > 0 && st.feedbackRcpt(env.Rcpts[0].Addr),
	}
}

// greet runs the Greeter on a worker. The session's next commands wait for
// it; when the worker pool is full, the session goes on without it.
func (st *conn) greet() {
	srv := st.l.srv
	g := &Greeting{Listener: st.l.name, Helo: st.helo, Peer: st.peer, AuthUser: st.authUser, Tenant: st.tenant}
	st.runWorker(func(ctx context.Context) func() {
		state, refuse := srv.greeter.Greet(ctx, g)
		return func() { st.greeting, st.refuse = state, refuse }
	}, nil)
}

func (st *conn) tlsState() *tls.ConnectionState {
	if st.tls == nil || st.tls.state == nil {
		return nil
	}
	return st.tls.state
}

// submitMessage hands a complete message to a worker. Parsing stops until
// the worker's reply is back on the loop; bytes the client pipelined behind
// the message stay in gnet's inbound buffer meanwhile.
func (st *conn) submitMessage(ev smtpwire.Event) {
	in := st.incoming(ev.Envelope, ev.Body)
	srv := st.l.srv
	st.runWorker(func(ctx context.Context) func() {
		r := srv.accept(ctx, in)
		size := len(in.Body)
		srv.noteBody(size)
		if srv.releaseBody {
			srv.bodies.Put(in.Body)
			in.Body = nil
		}
		return func() {
			if r.Positive() && !in.Feedback { // a consumed report is not a message taken
				srv.metrics.Received(st.l.name, size)
			}
			st.sess.Respond(&r)
		}
	}, &smtpwire.Reply{Code: 451, Enhanced: "4.3.2", Lines: []string{"Server busy, try again later"}})
}

// submitAuth checks AUTH credentials on a worker: a password hash costs
// milliseconds, too long for an event loop.
func (st *conn) submitAuth(ev smtpwire.Event) {
	if st.l.srv.auth == nil || ev.Auth == nil {
		st.sess.Respond(&smtpwire.ReplyAuthMechanism)
		return
	}
	st.checkAuth(*ev.Auth) // ev.Auth points into the session
}

// checkAuth asks the listener's AUTH guard whether cred's password may be
// checked, and checks it on a worker, waits for a slot, or answers a
// blocked client. The attempt is counted before the check (authGuard), so
// parallel AUTH from one address cannot outrun the block.
func (st *conn) checkAuth(cred smtpwire.AuthCredentials) {
	srv, guard := st.l.srv, st.l.guard
	verdict, attempt, delay := guard.reserve(st.peer.Addr(), srv.now(), func() {
		st.onLoop(func() {
			st.busy = false
			st.checkAuth(cred)
			st.process()
		})
	})
	switch verdict {
	case authBlocked:
		st.authBlocked()
		return
	case authWait:
		// Other checks from this address are in flight; the guard wakes
		// this one when one of them ends. No timeout runs meanwhile.
		st.busy = true
		st.deadline.Store(0)
		return
	}
	// A client that failed repeatedly waits for every answer; the wait is a
	// timer, so it holds neither the event loop nor a worker.
	submitted := st.runWorkerAfter(func(ctx context.Context) func() {
		ctx = context.WithValue(ctx, sessionKey{}, SessionInfo{Listener: st.l.name, Peer: st.peer})
		user, tenant, ok := srv.authenticate(ctx, cred)
		blocked := false
		if ok {
			attempt.release()
		} else {
			blocked = attempt.fail(srv.now())
		}
		return func() {
			if !ok {
				srv.log.Info("AUTH failed", "listener", st.l.name, "peer", st.peer.String(), "user", cred.Username, "mechanism", cred.Mechanism)
				if blocked {
					srv.log.Warn("AUTH failures: client blocked", "listener", st.l.name, "peer", st.peer.String(), "for", st.l.cfg.AuthFailWindow)
					st.authBlocked()
					return
				}
				st.sess.Respond(&smtpwire.ReplyAuthFailed)
				return
			}
			st.authUser, st.tenant = user, tenant
			st.sess.Respond(nil)
			if srv.greeter != nil {
				st.greet() // again, with the tenant
			}
		}
	}, delay, &smtpwire.Reply{Code: 454, Enhanced: "4.7.0", Lines: []string{"Temporary authentication failure"}})
	if !submitted {
		attempt.release() // nothing was checked
	}
}

// authBlocked answers the pending AUTH of a blocked client with 421 4.7.0
// and ends the session (RFC 4954 §6 leaves the policy to the server;
// RFC 3463 X.7.0 is "other or undefined security status").
func (st *conn) authBlocked() {
	st.sess.Respond(&smtpwire.Reply{Code: 421, Enhanced: "4.7.0",
		Lines: []string{st.l.cfg.Hostname + " Too many failed authentications, try again later"}})
	st.closing = true
}

// runWorker runs job on the worker pool; the function job returns is then
// run on the connection's event loop, followed by parsing whatever the
// client pipelined meanwhile. When the pool is full, busy is answered at
// once instead.
func (st *conn) runWorker(job func(ctx context.Context) func(), busy *smtpwire.Reply) {
	st.runWorkerAfter(job, 0, busy)
}

// runWorkerAfter is runWorker whose loop function runs no sooner than delay
// after the job ended: a timer queues it, so the worker is free at once. It
// reports whether the job was submitted (false: busy was answered).
func (st *conn) runWorkerAfter(job func(ctx context.Context) func(), delay time.Duration, busy *smtpwire.Reply) bool {
	srv := st.l.srv
	st.busy = true
	st.deadline.Store(0)
	srv.inflight.Add(1)
	err := srv.pool.Submit(func() {
		back := job(context.Background())
		resume := func() {
			// Execute either queues the closure (which then always runs,
			// and marks the job done) or fails because the engine is
			// stopping.
			queued := st.onLoopThen(func() {
				st.busy = false
				back()
				st.process()
			}, srv.inflight.Done)
			if !queued {
				srv.inflight.Done()
			}
		}
		if delay > 0 {
			time.AfterFunc(delay, resume)
			return
		}
		resume()
	})
	if err != nil {
		srv.inflight.Done()
		st.busy = false
		srv.log.Warn("worker pool full", "listener", st.l.name, "err", err)
		if busy != nil { // nil: no event waits for an answer
			st.sess.Respond(busy)
		}
		return false
	}
	return true
}

// onLoop queues fn to run on the connection's event loop (from any
// goroutine, or from the loop itself for later). fn does not run when the
// connection has closed meanwhile; when fn leaves the connection closing,
// it is flushed and closed. It reports whether fn was queued; it is not
// when the engine is shutting down.
func (st *conn) onLoop(fn func()) bool {
	return st.onLoopThen(fn, nil)
}

// onLoopThen is onLoop with an after function that runs on the loop in
// every case, closed connection or not.
func (st *conn) onLoopThen(fn, after func()) bool {
	err := st.c.EventLoop().Execute(context.Background(), gnet.RunnableFunc(func(context.Context) error {
		if after != nil {
			defer after()
		}
		if st.closed {
			return nil
		}
		fn()
		if st.closing && !st.closed {
			st.closeNow()
		}
		return nil
	}))
	return err == nil
}

// flush writes the session's pending replies in one write.
func (st *conn) flush() {
	if st.closed {
		return
	}
	out := st.sess.Output()
	if len(out) == 0 {
		return
	}
	countErrors(out, st.l.srv.metrics, st.l.name)
	st.write(out)
	st.sess.ConsumeOutput(len(out))
	if !st.closed && st.c.OutboundBuffered() > maxOutbound {
		// The client does not read its replies; stop serving it.
		st.l.srv.log.Debug("client does not read its replies", "listener", st.l.name, "peer", st.peer.String())
		st.closing = true
	}
}

// write sends plaintext bytes, through TLS when the session has it. gnet
// copies or writes them before returning.
func (st *conn) write(b []byte) {
	if st.tls != nil {
		st.tls.writePlain(b)
		return
	}
	_, _ = st.c.Write(b)
}

// closeNow flushes and closes the connection; only from a runnable queued
// with onLoop (gnet callbacks return gnet.Close instead).
func (st *conn) closeNow() {
	if st.closed {
		return
	}
	st.closing = true
	st.flush()
	if st.tls != nil {
		st.tls.closeNotify()
	}
	_ = st.c.EventLoop().Close(st.c)
}

// onClose runs in gnet's OnClose.
func (st *conn) onClose(err error) {
	st.closed = true
	st.deadline.Store(0)
	if st.traceID != 0 {
		text := "closed"
		if err != nil {
			text = "closed: " + err.Error()
		}
		st.publish(trace.Close, text)
	}
	if st.tls != nil {
		st.tls.abort()
	}
	if err != nil {
		st.l.srv.log.Debug("connection closed", "listener", st.l.name, "peer", st.peer.String(), "err", err)
	}
}

// setDeadline arms the timeout for the line the session waits for now. A
// deadline is per line, like Postfix's per-record deadline: each command
// line, SASL response and line of message data must be complete within its
// timeout of the previous one, so the deadline moves only when
// Session.Lines does, or when none is armed (after a worker's answer, after
// the TLS handshake). The bytes of an unfinished line do not move it, so a
// client trickling a byte at a time is cut off (issue #15, slowloris).
// SessionTimeout caps every deadline.
func (st *conn) setDeadline() {
	if st.busy || st.closing || st.closed {
		st.deadline.Store(0)
		return
	}
	lines := st.sess.Lines()
	if lines == st.armedLines && st.deadline.Load() != 0 {
		return
	}
	st.armedLines = lines
	cfg := &st.l.cfg
	// RFC 5321 §4.5.3.2: the data block timeout while message bytes are
	// due, the command timeout inside a transaction or a SASL exchange,
	// the idle timeout between transactions.
	d := cfg.IdleTimeout
	switch {
	case st.sess.InData():
		d = cfg.DataTimeout
	case st.sess.InTransaction() || st.sess.InAuth():
		d = cfg.CommandTimeout
	}
	if st.tls != nil && !st.tls.ready {
		d = cfg.CommandTimeout
	}
	at := st.l.srv.now().UnixNano() + int64(d)
	if cfg.SessionTimeout > 0 {
		at = min(at, st.started+int64(cfg.SessionTimeout))
	}
	st.deadline.Store(at)
	st.timeoutQueued.Store(false)
}

// expire runs on the loop when the sweep found the deadline passed: the
// session says "421 4.4.2 … timeout" and the connection closes.
func (st *conn) expire() {
	st.timeoutQueued.Store(false)
	if st.closed || st.closing || st.busy {
		return
	}
	if d := st.deadline.Load(); d == 0 || st.l.srv.now().UnixNano() < d {
		return // the client sent something since the sweep looked
	}
	st.l.srv.log.Debug("session timeout", "listener", st.l.name, "peer", st.peer.String())
	st.closing = true
	if st.tls != nil && !st.tls.ready {
		return // no session to speak for during the handshake
	}
	st.sess.Timeout()
	st.flush()
}

// drainIfIdle runs on the loop while the server stops: a session between
// transactions is told 421 4.3.2 and closed; one inside a transaction is
// left to finish it.
func (st *conn) drainIfIdle() {
	if st.closed || st.closing || st.busy || st.sess.InTransaction() || st.sess.InData() {
		return
	}
	if st.tls != nil && !st.tls.ready {
		return
	}
	st.l.srv.metrics.ErrorIn(st.l.name, 421)
	r := st.l.reply(421, "4.3.2", st.l.cfg.Hostname+" Service shutting down")
	st.Reply("shutdown", r)
	st.write(r)
	st.closing = true
}

// countErrors counts the 4xx and 5xx replies in out (the last line of each
// reply: "NNN " rather than "NNN-").
func countErrors(out []byte, m Metrics, listener string) {
	lineStart := true
	for i := 0; i < len(out); i++ {
		if lineStart && (out[i] == '4' || out[i] == '5') && i+3 < len(out) && out[i+3] == ' ' {
			m.ErrorIn(listener, int(out[i]-'0')*100+int(out[i+1]-'0')*10+int(out[i+2]-'0'))
		}
		lineStart = out[i] == '\n'
	}
}
