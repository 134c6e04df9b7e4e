package outbound

import (
	"bytes"
	"context"
	"fmt"
	"time"

	"gannet/mailaddr"
	"gannet/smtpwire"
)

// txInfo is what Deliver works out once per envelope, before any host is
// tried.
type txInfo struct {
	from        smtpwire.Path
	rcpts       []smtpwire.Path
	needUTF8    bool // non-ASCII in the envelope: SMTPUTF8 is required (RFC 6531 §3.4)
	utf8Headers bool // non-ASCII in the header section: send SMTPUTF8 when offered
	eightBit    bool // non-ASCII anywhere in the body: BODY=8BITMIME when offered (RFC 6152)
}

func newTxInfo(env *Envelope) *txInfo {
	t := &txInfo{from: smtpwire.Path{Addr: env.From}, rcpts: make([]smtpwire.Path, len(env.Rcpts))}
	t.needUTF8 = !mailaddr.IsASCII(env.From)
	for i, r := range env.Rcpts {
		t.rcpts[i] = smtpwire.Path{Addr: r}
		if !mailaddr.IsASCII(r) {
			t.needUTF8 = true
		}
	}
	if !isASCIIBytes(env.Body) {
		t.eightBit = true
		t.utf8Headers = !isASCIIBytes(headerSection(env.Body))
	}
	return t
}

// send runs one mail transaction (RFC 5321 §3.3) on the session and returns
// one Result per recipient of env. retryable is true when the session failed
// before the server answered anything of this transaction — typically a
// pooled connection the server had already closed — so the caller may run
// it again on a fresh connection without risk of a duplicate.
func (c *Client) send(ctx context.Context, env *Envelope, tx *txInfo) (res []Result, retryable bool) {
	res = make([]Result, len(env.Rcpts))
	for i, r := range env.Rcpts {
		res[i].Rcpt = r
	}
	c.uses++

	// RFC 6531 §3.4: a message that needs SMTPUTF8 must not be sent to a
	// server that does not offer it; it bounces with 5.6.7 (RFC 6531 §3.6.2).
	if tx.needUTF8 && !c.ext.SMTPUTF8 {
		rep := localReply(550, "5.6.7", fmt.Sprintf("SMTPUTF8 is required, but %s [%s] does not offer it", c.host, c.peer))
		setLocal(res, Bounced, rep)
		return res, false
	}
	// RFC 1870 §6: do not send a message larger than the server's SIZE.
	if c.ext.Size > 0 && int64(len(env.Body)) > c.ext.Size {
		rep := localReply(552, "5.3.4", fmt.Sprintf("message size %d exceeds the limit %d of %s [%s]", len(env.Body), c.ext.Size, c.host, c.peer))
		setLocal(res, Bounced, rep)
		return res, false
	}
	opts := smtpwire.MailOptions{
		Body8BIT: tx.eightBit && c.ext.EightBitMIME,
		SMTPUTF8: (tx.needUTF8 || tx.utf8Headers) && c.ext.SMTPUTF8,
	}
	if c.ext.Size > 0 {
		// RFC 1870 §6: declare the size to a server that announced a limit.
		opts.Size = int64(len(env.Body))
	}

	stop := context.AfterFunc(ctx, func() { c.conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()

	answered := false // the server replied to something of this transaction
	fail := func(err error) ([]Result, bool) {
		c.broken = true
		// A connection lost mid-transaction leaves every recipient of it for
		// a retry: without the final reply nothing is known to be decided.
		// 4.4.2 is "Bad connection" (RFC 3463 §3.5).
		rep := localReply(451, "4.4.2", fmt.Sprintf("connection to %s [%s] lost: %s", c.host, c.peer, errText(err)))
		setLocal(res, Transient, rep)
		return res, !answered && ctx.Err() == nil
	}

	// The envelope. With PIPELINING (RFC 2920 §3.1) RSET (if needed), MAIL,
	// every RCPT and DATA go in one write; otherwise each command waits for
	// its reply. A server that also offers CHUNKING gets the message in the
	// same write, as one "BDAT <size> LAST" chunk (RFC 3030 §2, §4.2): no
	// round trip for the 354 and no dot-stuffing. (A body that is not
	// CRLF-clean goes with DATA, which normalises it.)
	c.conn.SetDeadline(time.Now().Add(c.cfg.commandTimeout))
	pipelined := c.ext.Pipelining
	bdat := pipelined && c.ext.Chunking && !c.cfg.noChunking && cleanCRLF(env.Body)
	var mailRep, dataRep smtpwire.Reply
	rcptReps := make([]smtpwire.Reply, len(env.Rcpts))
	accepted := 0
	if pipelined {
		var err error
		buf := c.scratch[:0]
		rset := c.dirty
		if rset {
			buf = append(buf, "RSET\r\n"...)
		}
		if bdat {
			buf = smtpwire.AppendEnvelopeBDAT(buf, tx.from, tx.rcpts, opts, len(env.Body))
		} else {
			buf = smtpwire.AppendEnvelope(buf, tx.from, tx.rcpts, opts)
		}
		c.scratch = buf
		if _, err := c.w.Write(buf); err != nil {
			return fail(err)
		}
		if bdat {
			// RFC 5321 §4.5.3.2.6 allows the server 10 minutes for the
			// final reply, which the BDAT LAST reply is.
			c.conn.SetDeadline(time.Now().Add(c.cfg.dataTimeout))
			if _, err := c.w.Write(env.Body); err != nil {
				return fail(err)
			}
		}
		if err := c.w.Flush(); err != nil {
			return fail(err)
		}
		// Replies come in the order of the commands (RFC 2920 §3.2).
		if rset {
			var rsetRep smtpwire.Reply
			if rsetRep, err = c.rr.read(); err != nil {
				return fail(err)
			}
			answered = true
			c.dirty = false
			if rsetRep.Code == 421 {
				return closedAtRSET(c, res, rsetRep)
			}
		}
		// A 421 means the server closes the channel (RFC 5321 §3.8): the
		// replies still outstanding will not come and count as that 421.
		var closing *smtpwire.Reply
		next := func(dst *smtpwire.Reply) error {
			if closing != nil {
				*dst = *closing
				return nil
			}
			r, err := c.rr.read()
			if err != nil {
				return err
			}
			answered = true
			*dst = r
			if r.Code == 421 {
				closing = dst
			}
			return nil
		}
		if err := next(&mailRep); err != nil {
			return fail(err)
		}
		for i := range rcptReps {
			if err := next(&rcptReps[i]); err != nil {
				return fail(err)
			}
		}
		if err := next(&dataRep); err != nil {
			return fail(err)
		}
		if bdat {
			return c.bdatResults(res, mailRep, rcptReps, dataRep), false
		}
	} else {
		var err error
		if c.dirty {
			rsetRep, err := c.roundTrip([]byte("RSET\r\n"))
			if err != nil {
				return fail(err)
			}
			answered = true
			c.dirty = false
			if rsetRep.Code == 421 {
				return closedAtRSET(c, res, rsetRep)
			}
		}
		c.scratch = smtpwire.AppendMail(c.scratch[:0], tx.from, opts)
		if mailRep, err = c.roundTrip(c.scratch); err != nil {
			return fail(err)
		}
		answered = true
		if mailRep.Code/100 == 2 {
			for i := range rcptReps {
				c.scratch = smtpwire.AppendRcpt(c.scratch[:0], tx.rcpts[i])
				if rcptReps[i], err = c.roundTrip(c.scratch); err != nil {
					return fail(err)
				}
				if rcptReps[i].Code/100 == 2 {
					accepted++
				}
				if rcptReps[i].Code == 421 {
					// The server is closing: no DATA; accepted recipients
					// get the 421 too.
					dataRep = rcptReps[i]
					break
				}
			}
			if accepted > 0 && dataRep.Code != 421 {
				if dataRep, err = c.roundTrip([]byte("DATA\r\n")); err != nil {
					return fail(err)
				}
			}
		}
	}
	c.noteReplies(mailRep, dataRep)
	c.noteReplies(rcptReps...)

	if mailRep.Code/100 != 2 {
		// The sender was refused: that reply is every recipient's answer
		// (the RCPT replies are then "503 bad sequence" and say nothing).
		setAll(res, statusOf(mailRep), mailRep)
		c.finishAbandoned(dataRep)
		return res, false
	}
	if accepted = c.settleRcpts(res, rcptReps); accepted == 0 {
		// RFC 2920 §3.1: with no recipient accepted the DATA reply must
		// still be checked; a server that answered 354 gets a lone "." (an
		// empty message that it must not deliver), otherwise RSET next time.
		c.finishAbandoned(dataRep)
		return res, false
	}
	if dataRep.Code != 354 {
		st := statusOf(dataRep)
		if st == Delivered {
			st = Transient
		}
		for i := range res {
			if rcptReps[i].Code/100 == 2 {
				res[i].Status, res[i].Reply = st, dataRep
			}
		}
		c.dirty = true
		return res, false
	}

	// The message (RFC 5321 §4.1.1.4), dot-stuffed (§4.5.2), then the final
	// reply, which applies to every accepted recipient. RFC 5321 §4.5.3.2.6
	// allows the server 10 minutes to answer the final ".".
	c.conn.SetDeadline(time.Now().Add(c.cfg.dataTimeout))
	if err := writeBody(c.w, env.Body, &c.scratch); err != nil {
		return fail(err)
	}
	if err := c.w.Flush(); err != nil {
		return fail(err)
	}
	final, err := c.rr.read()
	if err != nil {
		return fail(err)
	}
	noteClosing(c, final)
	if h := c.cfg.onErrorReply; h != nil && final.Code >= 400 {
		h(final)
	}
	st := statusOf(final)
	for i := range res {
		if rcptReps[i].Code/100 == 2 {
			res[i].Status, res[i].Reply = st, final
		}
	}
	return res, false
}

// bdatResults settles a transaction sent with BDAT LAST: the message went
// with the envelope, so the BDAT reply is the final reply for the accepted
// recipients (RFC 3030 §2). A refused MAIL is every recipient's answer; a
// refused RCPT that recipient's; a server that refused the chunk (or had no
// recipient left) discarded it, and the next transaction starts with RSET.
func (c *Client) bdatResults(res []Result, mailRep smtpwire.Reply, rcptReps []smtpwire.Reply, final smtpwire.Reply) []Result {
	c.noteReplies(mailRep, final)
	c.noteReplies(rcptReps...)
	if mailRep.Code/100 != 2 {
		setAll(res, statusOf(mailRep), mailRep)
		c.dirty = true
		return res
	}
	accepted := c.settleRcpts(res, rcptReps)
	st := statusOf(final)
	for i, rep := range rcptReps {
		if rep.Code/100 == 2 {
			res[i].Status, res[i].Reply = st, final
		}
	}
	if accepted == 0 || final.Code/100 != 2 {
		c.dirty = true
	}
	return res
}

// noteReplies marks the session broken on a 421 among replies (RFC 5321
// §3.8) and passes every 4xx/5xx to Options.OnErrorReply.
func (c *Client) noteReplies(replies ...smtpwire.Reply) {
	h := c.cfg.onErrorReply
	for _, r := range replies {
		noteClosing(c, r)
		if h != nil && r.Code >= 400 {
			h(r)
		}
	}
}

// settleRcpts gives each recipient that was not accepted its RCPT reply as
// its result (a reply never sent — a non-pipelined session stopped at a
// 421 — becomes a local 451 4.4.2) and returns how many were accepted; the
// accepted ones wait for the final reply.
func (c *Client) settleRcpts(res []Result, rcptReps []smtpwire.Reply) (accepted int) {
	for i, rep := range rcptReps {
		if rep.Code == 0 {
			rep = localReply(451, "4.4.2", fmt.Sprintf("%s [%s] closed the session", c.host, c.peer))
			res[i].Local = true
		}
		if rep.Code/100 == 2 {
			accepted++
			continue
		}
		res[i].Status, res[i].Reply = statusOf(rep), rep
		if res[i].Status == Delivered {
			res[i].Status = Transient
		}
	}
	return accepted
}

// finishAbandoned ends a transaction in which nothing will be sent. If the
// server nonetheless answered DATA with 354 it is waiting for a message:
// RFC 2920 §3.1 says to send a single "." (the server must not deliver an
// empty transaction without recipients). Either way the next transaction
// on this connection starts with RSET.
func (c *Client) finishAbandoned(dataRep smtpwire.Reply) {
	c.dirty = true
	if dataRep.Code != 354 {
		return
	}
	c.conn.SetDeadline(time.Now().Add(c.cfg.commandTimeout))
	if _, err := c.roundTrip([]byte(".\r\n")); err != nil {
		c.broken = true
	}
}

// closedAtRSET handles a 421 to the RSET that starts a transaction on a
// reused connection: nothing of the transaction was processed, so it may
// run again at once on a new connection.
func closedAtRSET(c *Client, res []Result, rep smtpwire.Reply) ([]Result, bool) {
	c.broken = true
	setAll(res, Transient, rep)
	return res, true
}

// noteClosing marks the session broken on 421: the server is closing the
// transmission channel (RFC 5321 §3.8).
func noteClosing(c *Client, r smtpwire.Reply) {
	if r.Code == 421 {
		c.broken = true
	}
}

func setAll(res []Result, st Status, rep smtpwire.Reply) {
	for i := range res {
		res[i].Status, res[i].Reply, res[i].Local = st, rep, false
	}
}

// setLocal is setAll with a reply Gannet made itself (Result.Local).
func setLocal(res []Result, st Status, rep smtpwire.Reply) {
	for i := range res {
		res[i].Status, res[i].Reply, res[i].Local = st, rep, true
	}
}

// headerSection returns the header of a message: everything up to and
// including the empty line, or the whole body when it has none.
func headerSection(body []byte) []byte {
	if i := bytes.Index(body, []byte("\r\n\r\n")); i >= 0 {
		return body[:i+4]
	}
	return body
}
