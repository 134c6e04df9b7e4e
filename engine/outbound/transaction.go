package outbound

import (
	"context"
	"fmt"
	"net"
	"time"

	"gannet/engine/trace"
	"gannet/msgheader"
	"gannet/smtpwire"
)

// newClientMessage works out what a transaction needs to know of env, once
// per envelope before any host is tried: its paths, its size, whether the
// body is 8-bit and its header section UTF-8, and whether the body is
// CRLF-clean (for BDAT and the copy-free dot-stuffing of writeBody).
func newClientMessage(env *Envelope) *smtpwire.ClientMessage {
	clean, ascii := bodyTraits(env.Body)
	m := &smtpwire.ClientMessage{
		From:      smtpwire.Path{Addr: env.From},
		Rcpts:     make([]smtpwire.Path, len(env.Rcpts)),
		Size:      int64(len(env.Body)),
		CRLFClean: clean,
		// RFC 8689 §4.2.1 step 4: MAIL carries REQUIRETLS.
		RequireTLS: env.RequireTLS,
	}
	for i, r := range env.Rcpts {
		m.Rcpts[i] = smtpwire.Path{Addr: r}
		if i < len(env.RcptDSN) {
			m.Rcpts[i].Notify, m.Rcpts[i].ORcpt = env.RcptDSN[i].Notify, env.RcptDSN[i].ORcpt
		}
	}
	m.Ret, m.EnvID = env.Ret, env.EnvID
	if !ascii {
		m.EightBit = true
		m.UTF8Headers = !isASCIIBytes(msgheader.Section(env.Body))
	}
	return m
}

// send runs one mail transaction (RFC 5321 §3.3) of msg on the session and
// returns one Result per recipient of env. The protocol — which commands go
// in which write, what each reply decides — is the session's
// smtpwire.ClientTxn's; send moves the bytes, keeps the deadlines and makes
// the Results.
// retryable is true when the server processed nothing of the transaction —
// typically a pooled connection the server had already closed, or a 421 to
// the opening RSET — so the caller may run it again on a fresh connection
// without risk of a duplicate. With follow not nil, the next message for
// the connection may be pipelined behind the body (follow.take, chain.go);
// the Manager runs it afterwards (runFollowers).
func (c *Client) send(ctx context.Context, env *Envelope, msg *smtpwire.ClientMessage, follow *follower) (res []Result, retryable bool) {
	t := c.current()
	if res, ok := c.begin(t, env, msg); !ok {
		return res, false
	}
	c.watch(ctx)
	err := c.exchange(ctx, t, env.Body, msg.CRLFClean, follow)
	return c.settle(ctx, t, env, err)
}

// current returns the transaction the session runs now: one of two, so
// that the next one can begin while this one waits for its final reply.
func (c *Client) current() *smtpwire.ClientTxn { return &c.txns[c.cur] }

// begin starts transaction t of msg (smtpwire.ClientTxn.Begin). When the
// message must not go to this server it returns false and a Result per
// recipient saying why; nothing was sent.
func (c *Client) begin(t *smtpwire.ClientTxn, env *Envelope, msg *smtpwire.ClientMessage) ([]Result, bool) {
	c.uses++
	c.checkTrace(envelopeDomain(env), false)
	if err := t.Begin(msg, &c.ext, smtpwire.ClientTxnOptions{RSETFirst: c.dirty, NoChunking: c.cfg.noChunking}); err != nil {
		res := newResults(env)
		st := Bounced
		if err == smtpwire.ErrNeedsRequireTLS {
			st = Transient // RFC 8689 §5: held until it expires, then bounced
		}
		setLocal(res, st, c.refusal(err, msg))
		return res, false
	}
	return nil, true
}

// newResults returns a Result for each recipient of env, Transient.
func newResults(env *Envelope) []Result {
	res := make([]Result, len(env.Rcpts))
	for i, r := range env.Rcpts {
		res[i].Rcpt = r
	}
	return res
}

// settle turns how the exchange of t ended (err) into the Results of env's
// recipients and reports whether t is retryable (see send).
func (c *Client) settle(ctx context.Context, t *smtpwire.ClientTxn, env *Envelope, err error) (res []Result, retryable bool) {
	res = newResults(env)
	c.dirty = t.NeedsRSET()
	if err != nil && c.traceID != 0 {
		c.publish(trace.Error, err.Error())
	}
	if err != nil || t.Closing() {
		// An I/O error, a timeout or a reply that is not SMTP leaves the
		// connection unusable, and so does a 421: the server is closing
		// the channel (RFC 5321 §3.8).
		c.broken = true
	}
	if err != nil && !t.Settled() {
		// A connection lost mid-transaction leaves every recipient of it for
		// a retry: without the final reply nothing is known to be decided.
		// 4.4.2 is "Bad connection" (RFC 3463 §3.5).
		rep := localReply(451, "4.4.2", fmt.Sprintf("connection to %s [%s] lost: %s", c.host, c.peer, errText(err)))
		setLocal(res, Transient, rep)
		return res, t.Replayable() && ctx.Err() == nil
	}
	for i := range res {
		res[i] = c.resultOf(res[i].Rcpt, t.Outcome(i))
	}
	return res, t.Replayable()
}

// exchange moves the bytes of t: it writes what the transaction asks for
// and feeds it the server's replies until it is done, passing every
// 4xx/5xx reply to Options.OnErrorReply. The deadlines follow RFC 5321
// §4.5.3.2: the command timeout after commands, the data timeout after a
// body (§4.5.3.2.6 allows the server 10 minutes for the final reply, which
// the reply to BDAT LAST is too). A transaction that was pipelined behind
// the last one's body has written its commands already: its first round
// only reads, under the command timeout.
//
// When the next transaction may be written now (ClientTxn.Chainable) and
// follow has a message ready, it goes in this round's write (RFC 2920
// §3.1): behind a DATA body its envelope, after a BDAT transaction all of
// it; its replies are left in the buffer for the Manager to feed it next.
func (c *Client) exchange(ctx context.Context, t *smtpwire.ClientTxn, body []byte, crlfClean bool, follow *follower) error {
	var aheadErr error // the write of only a following transaction failed
	for !t.Done() {
		if err := ctx.Err(); err != nil {
			return err
		}
		cmds, form := t.Send()
		// One deadline per round (a deadline costs a clock read and a
		// timer update): the round's writes and the replies it waits for
		// get the data timeout when it sends a body, else the command
		// timeout. The commands go into the buffer, so nothing is written
		// under the command timeout before the body is.
		var next followWrite
		chain, rset := t.Chainable()
		if follow != nil && chain {
			next = follow.take(c, rset)
		}
		timeout := c.cfg.commandTimeout
		if form != smtpwire.NoBody || next.form != smtpwire.NoBody || rset {
			// A body goes, or a BDAT LAST awaits its final reply.
			timeout = c.cfg.dataTimeout
		}
		c.conn.SetDeadline(time.Now().Add(timeout))
		if len(cmds) > 0 || form != smtpwire.NoBody || len(next.cmds) > 0 {
			if len(cmds) > 0 {
				c.traceCommands(cmds)
			}
			if err := c.write(cmds, form, body, crlfClean, &next); err != nil {
				if len(cmds) > 0 || form != smtpwire.NoBody {
					return err
				}
				// t wrote all it had before: its replies may have come
				// (the server answered, then closed). The following
				// transaction had none: it is replayable.
				aheadErr = err
			}
			if form != smtpwire.NoBody {
				c.traceBody(len(body))
			}
			if len(next.cmds) > 0 {
				c.traceCommands(next.cmds)
			}
			if next.form != smtpwire.NoBody {
				c.traceBody(len(next.body))
			}
		}
		for t.Awaiting() {
			n, rep, err := t.Feed(c.rr.unread())
			if err != nil {
				return fmt.Errorf("malformed reply: %w", err)
			}
			if n == 0 {
				if err := c.rr.fill(); err != nil {
					return err
				}
				continue
			}
			c.rr.consume(n)
			c.traceReply(rep)
			if h := c.cfg.onErrorReply; h != nil && rep.Code >= 400 {
				h(rep)
			}
		}
	}
	return aheadErr
}

// followWrite is what a transaction pipelined behind another writes: its
// commands, and after BDAT its body as it is.
type followWrite struct {
	cmds []byte
	form smtpwire.BodyForm // NoBody or BodyAsIs
	body []byte
}

// write sends cmds followed by body in the form the transaction asks for,
// then next (a transaction pipelined behind it), all under the round's
// deadline, which exchange sets: in one writev straight from the spool's
// buffers when vector allows, else through c.w.
func (c *Client) write(cmds []byte, form smtpwire.BodyForm, body []byte, crlfClean bool, next *followWrite) error {
	if bufs, ok := c.vector(cmds, form, body, crlfClean, next); ok {
		n := len(bufs)
		_, err := bufs.WriteTo(c.conn)
		clear(c.iov[:n]) // keep no slice of the body
		return err
	}
	if _, err := c.w.Write(cmds); err != nil {
		return err
	}
	var err error
	switch form {
	case smtpwire.BodyAsIs:
		_, err = c.w.Write(body)
	case smtpwire.BodyDotStuffed:
		err = writeBody(c.w, body, crlfClean, &c.scratch)
	}
	if err != nil {
		return err
	}
	if _, err := c.w.Write(next.cmds); err != nil {
		return err
	}
	if next.form == smtpwire.BodyAsIs {
		if _, err := c.w.Write(next.body); err != nil {
			return err
		}
	}
	return c.w.Flush()
}

// maxPieces bounds the slices of one writev (vector): a body with more
// stuffed lines than about half of it goes through the write buffer.
const maxPieces = 1024

// vector returns cmds, body and next as the slices of one writev (c.iov), with
// no copy of the body: on a plain TCP connection, for a body that would
// not fit the write buffer, as it is (BDAT) or CRLF-clean and dot-stuffed
// (DATA, the pieces of stuffedPieces). Otherwise, and for TLS, whose
// records take a copy anyway, it returns false.
func (c *Client) vector(cmds []byte, form smtpwire.BodyForm, body []byte, crlfClean bool, next *followWrite) (net.Buffers, bool) {
	size := len(cmds) + len(next.cmds) + len(next.body)
	if form != smtpwire.NoBody {
		size += len(body)
	}
	if _, plain := c.conn.(*net.TCPConn); !plain || c.w.Buffered() > 0 || size <= c.w.Available() {
		return nil, false
	}
	bufs := append(c.iov[:0], cmds)
	switch {
	case form == smtpwire.NoBody:
	case form == smtpwire.BodyAsIs:
		bufs = append(bufs, body)
	case form == smtpwire.BodyDotStuffed && crlfClean:
		if !stuffedPieces(body, func(p []byte) bool {
			bufs = append(bufs, p)
			return len(bufs) < maxPieces
		}) {
			clear(bufs)
			c.iov = bufs[:0]
			return nil, false
		}
	default:
		return nil, false
	}
	if len(next.cmds) > 0 {
		bufs = append(bufs, next.cmds)
	}
	if next.form == smtpwire.BodyAsIs {
		bufs = append(bufs, next.body)
	}
	c.iov = bufs[:0]
	return bufs, true
}

// watch arranges for the session's I/O to end at once when ctx is
// cancelled (a deadline in the past). The arrangement lasts while the
// session uses the same context — the delivery loop passes one for all its
// transactions — so it is made once per connection, not once per
// transaction; Close undoes it.
func (c *Client) watch(ctx context.Context) {
	if ctx == c.watched {
		return
	}
	c.unwatch()
	c.watched = ctx
	if ctx.Done() != nil {
		c.stopWatch = context.AfterFunc(ctx, func() { c.conn.SetDeadline(time.Unix(1, 0)) })
	}
}

// unwatch undoes watch.
func (c *Client) unwatch() {
	if c.stopWatch != nil {
		c.stopWatch()
	}
	c.watched, c.stopWatch = nil, nil
}

// refusal words, as a local reply, why Begin would not send msg to this
// server.
func (c *Client) refusal(err error, msg *smtpwire.ClientMessage) smtpwire.Reply {
	if err == smtpwire.ErrNeedsRequireTLS {
		return requireTLSError("%s [%s] does not offer REQUIRETLS", c.host, c.peer).refusal.Reply
	}
	if err == smtpwire.ErrNeedsSMTPUTF8 {
		// The message bounces with 5.6.7 (RFC 6531 §3.6.2).
		return localReply(550, "5.6.7", fmt.Sprintf("SMTPUTF8 is required, but %s [%s] does not offer it", c.host, c.peer))
	}
	return localReply(552, "5.3.4", fmt.Sprintf("message size %d exceeds the limit %d of %s [%s]", msg.Size, c.ext.Size, c.host, c.peer))
}

// resultOf makes the Result of a recipient from its outcome. A recipient
// the server never answered for (it closed before the RCPT was sent) gets a
// local 451 4.4.2.
func (c *Client) resultOf(rcpt string, o smtpwire.RcptOutcome) Result {
	if o.By == smtpwire.NotAnswered {
		rep := localReply(451, "4.4.2", fmt.Sprintf("%s [%s] closed the session", c.host, c.peer))
		return Result{Rcpt: rcpt, Status: Transient, Reply: rep, Local: true}
	}
	st := statusOf(o.Reply)
	if st == Delivered && !o.Delivered() {
		// A 2xx that did not answer the message itself (DATA answered
		// with 250) delivered nothing.
		st = Transient
	}
	return Result{Rcpt: rcpt, Status: st, Reply: o.Reply}
}

// setLocal gives every recipient the same status and a reply Gannet made
// itself (Result.Local).
func setLocal(res []Result, st Status, rep smtpwire.Reply) {
	for i := range res {
		res[i].Status, res[i].Reply, res[i].Local = st, rep, true
	}
}
