package smtpwire

import (
	"errors"
	"strconv"
)

// ClientMessage is one message as a client transaction needs it: the
// envelope, and what the content asks of the server. The host works it out
// once per message and may run several transactions with it (one per
// server tried); it must not change while a transaction uses it.
type ClientMessage struct {
	From  Path
	Rcpts []Path
	// Size is the length of the body in bytes: the SIZE= parameter
	// (RFC 1870) and the size of a BDAT chunk (RFC 3030).
	Size int64
	// EightBit: the body has bytes over 127, so BODY=8BITMIME is declared
	// to a server that offers it (RFC 6152 §3).
	EightBit bool
	// UTF8Headers: the header section is not ASCII, so SMTPUTF8 is declared
	// to a server that offers it (RFC 6531 §3.4).
	UTF8Headers bool
	// CRLFClean: every line of the body ends in CRLF and no CR or LF stands
	// alone. Only such a body may go as a BDAT chunk, which the server
	// takes byte for byte (RFC 3030 §2); any other goes with DATA, whose
	// dot-stuffing makes every line end CRLF.
	CRLFClean bool
	// RequireTLS: the message was received with REQUIRETLS (RFC 8689 §4.2):
	// it goes only to a server that offers REQUIRETLS, and MAIL carries the
	// parameter. Whether the session is TLS and validated is the host's
	// to check.
	RequireTLS bool
	// Ret and EnvID are the DSN parameters of MAIL (RFC 3461 §4.3, §4.4),
	// sent to a server that offers DSN with the recipients' Notify and
	// ORcpt (§6.2.1). Zero: none.
	Ret   DSNRet
	EnvID string
}

// ClientTxnOptions are the host's side of a client transaction: the state
// of its connection and its policy.
type ClientTxnOptions struct {
	// RSETFirst: the last transaction on this connection was abandoned
	// (ClientTxn.NeedsRSET), so this one starts with RSET (RFC 5321
	// §4.1.1.5).
	RSETFirst bool
	// NoChunking keeps to DATA even with a server that offers CHUNKING.
	NoChunking bool
}

// Errors of ClientTxn.Begin: the message must not go to this server. Nothing
// is sent; another server may take it.
var (
	// ErrNeedsSMTPUTF8: an address of the envelope is not ASCII and the
	// server does not offer SMTPUTF8; RFC 6531 §3.4 forbids sending the
	// message to it.
	ErrNeedsSMTPUTF8 = errors.New("smtpwire: the envelope needs SMTPUTF8, which the server does not offer")
	// ErrOverServerSize: the message is larger than the fixed limit the
	// server announced with SIZE (RFC 1870 §6).
	ErrOverServerSize = errors.New("smtpwire: the message is larger than the server's SIZE")
	// ErrNeedsRequireTLS: the message was received with REQUIRETLS and the
	// server does not offer it (RFC 8689 §4.2.1 step 4).
	ErrNeedsRequireTLS = errors.New("smtpwire: the message needs REQUIRETLS, which the server does not offer")
)

// BodyForm says whether and how the message body follows the commands of a
// write.
type BodyForm uint8

const (
	// NoBody: only the commands.
	NoBody BodyForm = iota
	// BodyDotStuffed: after the 354 to DATA, the body dot-stuffed and ended
	// by ".\r\n" (RFC 5321 §4.5.2); see AppendDotStuffed.
	BodyDotStuffed
	// BodyAsIs: the body exactly as it is, the chunk announced by the
	// "BDAT <size> LAST" that ends the commands (RFC 3030 §2).
	BodyAsIs
)

// DecidedBy names the reply that decided a recipient of a client
// transaction.
type DecidedBy uint8

const (
	// NotAnswered: nothing was said about the recipient. Without PIPELINING
	// the server closed with 421 before its RCPT was sent. The Reply is
	// zero.
	NotAnswered DecidedBy = iota
	// DecidedByRSET: a 421 to the RSET that opened the transaction; the
	// server processed nothing of it.
	DecidedByRSET
	// DecidedByMAIL: the sender was refused; that reply is every
	// recipient's answer.
	DecidedByMAIL
	// DecidedByRCPT: the recipient was refused.
	DecidedByRCPT
	// DecidedByDATA: the recipient was accepted but DATA was not answered
	// with 354, so the message was not sent.
	DecidedByDATA
	// DecidedByMessage: the reply to the message itself, after its final
	// "." or to BDAT LAST.
	DecidedByMessage
)

var decidedByNames = [...]string{"not-answered", "RSET", "MAIL", "RCPT", "DATA", "message"}

func (d DecidedBy) String() string {
	if int(d) < len(decidedByNames) {
		return decidedByNames[d]
	}
	return "DecidedBy(" + strconv.Itoa(int(d)) + ")"
}

// RcptOutcome is what a client transaction did for one recipient: the
// server's reply that decided it and which command that reply answered.
type RcptOutcome struct {
	Reply Reply // zero when By is NotAnswered
	By    DecidedBy
}

// Delivered reports that the server took responsibility for the message
// for this recipient: a 2xx reply to the message itself (RFC 5321 §4.1.1.4,
// RFC 3030 §2). Any other 2xx (a DATA answered with 250) delivered nothing.
func (o RcptOutcome) Delivered() bool { return o.By == DecidedByMessage && o.Reply.Positive() }

// The reply a client transaction expects next.
type txnReply uint8

const (
	replyToRSET txnReply = iota
	replyToMAIL
	replyToRCPT
	replyToData    // DATA (354 to go on) or BDAT LAST (the final reply)
	replyToMessage // the body's final "."
	replyToLoneDot // the "." that ends a DATA nobody is left for
)

// ClientTxn is the client side of one mail transaction (RFC 5321 §3.3) with
// no I/O: it turns the envelope into the command bytes to write and the
// server's reply bytes into an outcome per recipient. The host (outbound)
// only moves bytes and keeps time:
//
//	t.Begin(msg, &ext, opts)
//	for !t.Done() {
//		cmds, body := t.Send() // write cmds, then the body in that form; flush
//		for t.Awaiting() {     // feed what the server sends
//			n, reply, err := t.Feed(buffered) // n == 0: read more
//		}
//	}
//	t.Outcome(i) for each recipient; t.Closing(), t.NeedsRSET()
//
// A ClientTxn is reused from one transaction to the next on a connection,
// keeping its buffers.
type ClientTxn struct {
	msg       *ClientMessage
	opts      mailOptions
	pipelined bool // RFC 2920: the envelope goes in one write
	bdat      bool // RFC 3030: the body goes with it, as one BDAT LAST chunk

	out        []byte   // the commands of the next write
	body       BodyForm // how the body follows them
	writeReady bool     // out and body wait for Send
	expect     txnReply // what the next reply answers
	pending    int      // replies outstanding for what was (or will be) written
	rcpt       int      // the recipient the next RCPT reply is for: those before it are answered

	rset, mail, data, final Reply
	rcpts                   []Reply // one per recipient; rcpts[:rcpt] are answered
	accepted                int

	answered     bool // any reply came
	closing      bool // a 421 came (RFC 5321 §3.8)
	closedAtRSET bool // … in answer to the opening RSET
	needRSET     bool
	settled      bool
	done         bool

	memo *replyMemo // the session's recent replies, kept across transactions
}

// Begin starts a transaction of msg with a server that announced server
// in its EHLO reply. It returns ErrNeedsSMTPUTF8, ErrOverServerSize or
// ErrNeedsRequireTLS when
// the message must not go to this server; the transaction is then Done and
// nothing was sent.
//
// It chooses the MAIL parameters from what the server offers: SIZE= when
// the server announced a limit (RFC 1870 §6), BODY=8BITMIME for an 8-bit
// body (RFC 6152 §3), SMTPUTF8 for a non-ASCII envelope or header
// (RFC 6531 §3.4), REQUIRETLS for a message that needs it (RFC 8689 §4.2.1).
// With PIPELINING the whole envelope goes in one write
// (RFC 2920 §3.1); a server that also offers CHUNKING gets the message in
// that same write as one "BDAT <size> LAST" chunk (RFC 3030 §2, §4.2): no
// round trip for the 354 and no dot-stuffing, unless the host's policy
// says NoChunking or the body is not CRLF-clean.
func (t *ClientTxn) Begin(msg *ClientMessage, server *Extensions, opts ClientTxnOptions) error {
	out, rcpts := t.out[:0], t.rcpts
	if cap(rcpts) < len(msg.Rcpts) {
		rcpts = make([]Reply, len(msg.Rcpts))
	} else {
		rcpts = rcpts[:len(msg.Rcpts)]
		clear(rcpts)
	}
	memo := t.memo
	if memo == nil {
		memo = new(replyMemo)
	}
	*t = ClientTxn{msg: msg, out: out, rcpts: rcpts, needRSET: opts.RSETFirst, memo: memo}

	utf8Envelope := !msg.From.IsASCII()
	for _, r := range msg.Rcpts {
		utf8Envelope = utf8Envelope || !r.IsASCII()
	}
	if utf8Envelope && !server.SMTPUTF8 {
		t.done = true
		return ErrNeedsSMTPUTF8
	}
	if server.Size > 0 && msg.Size > server.Size {
		t.done = true
		return ErrOverServerSize
	}
	if msg.RequireTLS && !server.RequireTLS {
		t.done = true
		return ErrNeedsRequireTLS
	}
	t.opts = mailOptions{
		body8BIT:   msg.EightBit && server.EightBitMIME,
		smtpUTF8:   (utf8Envelope || msg.UTF8Headers) && server.SMTPUTF8,
		requireTLS: msg.RequireTLS,
		dsn:        server.DSN,
		ret:        msg.Ret,
		envid:      msg.EnvID,
	}
	if server.Size > 0 {
		t.opts.size = msg.Size
	}
	t.pipelined = server.Pipelining
	t.bdat = t.pipelined && server.Chunking && !opts.NoChunking && msg.CRLFClean

	switch {
	case t.pipelined:
		// RFC 2920 §3.1: RSET, MAIL, every RCPT and DATA (or BDAT LAST and
		// the message) in one write; the replies come in the same order
		// (§3.2).
		t.expect = replyToMAIL
		if opts.RSETFirst {
			t.out = append(t.out, "RSET\r\n"...)
			t.expect = replyToRSET
			t.pending++
		}
		t.out = appendMail(t.out, msg.From, t.opts)
		for _, r := range msg.Rcpts {
			t.out = appendRcpt(t.out, r, t.opts.dsn)
		}
		if t.bdat {
			t.out = append(t.out, "BDAT "...)
			t.out = strconv.AppendInt(t.out, msg.Size, 10)
			t.out = append(t.out, " LAST\r\n"...)
			t.body = BodyAsIs
		} else {
			t.out = append(t.out, "DATA\r\n"...)
		}
		t.pending += len(msg.Rcpts) + 2
		t.writeReady = true
	case opts.RSETFirst:
		t.command("RSET\r\n", replyToRSET)
	default:
		t.sendMail()
	}
	return nil
}

// Send returns what the host writes next: cmds, command lines ending in CRLF
// (possibly none), followed by the message body in the form body says. The
// host writes both, flushes, and then feeds the server's replies to Feed
// while Awaiting reports true. cmds is valid until the next Feed or Begin.
// Send returns nothing when the transaction has nothing to write (it is
// Awaiting or Done).
//
// The host's timeouts follow what it writes: the command timeout after
// commands, the data timeout (RFC 5321 §4.5.3.2.6: 10 minutes for the final
// reply) after a body.
func (t *ClientTxn) Send() (cmds []byte, body BodyForm) {
	if !t.writeReady {
		return nil, NoBody
	}
	t.writeReady = false
	return t.out, t.body
}

// Chainable reports whether the host may write the connection's next
// transaction now, before this one's replies are in, and whether that one
// must begin with RSET (ClientTxnOptions.RSETFirst). The host begins it on
// another ClientTxn and writes what its Send gives (for BDAT, its commands
// and its body) after what this one wrote last, in the same write when
// there is one; it feeds the replies to this transaction until it is
// Done, and then to the next one (RFC 2920 §3.2: replies come in order).
// When this one ends Closing, or the connection is lost, the next one has
// had no reply and is Replayable: nothing of it was processed.
//
//   - After the dot-stuffed body of a DATA transaction on a server that
//     offers PIPELINING: RFC 2920 §3.1 allows the message content to be
//     the first "command" of a group, and the final "." needs no RSET after
//     it whatever its reply (RFC 5321 §4.1.1.4: the transaction is over
//     either way).
//   - Once a BDAT transaction (envelope and "BDAT <size> LAST" chunk in one
//     write, RFC 3030 §4.2) is written, while its replies are awaited: the
//     next one may go at once, with RSET first, since whether this one left
//     the server with a transaction open (a refused sender or chunk, no
//     recipient) is not known yet.
//
// Not when this one still has commands to write, nor for the lone "." of
// a transaction left without recipients.
func (t *ClientTxn) Chainable() (ok, rsetFirst bool) {
	switch {
	case !t.pipelined || t.writeReady || t.pending == 0:
		return false, false
	case t.bdat:
		return true, true
	}
	return t.body == BodyDotStuffed && t.expect == replyToMessage && t.pending == 1, false
}

// Awaiting reports that the transaction waits for replies to what Send
// gave.
func (t *ClientTxn) Awaiting() bool { return t.pending > 0 && !t.writeReady }

// Feed reads the reply at the start of p, if p holds a whole one, as the
// answer to the oldest command not yet answered. It returns how many bytes
// it used, 0 when p holds no whole reply (read more and call again with the
// longer p), and the reply, for the host's accounting. An error
// (ErrMalformedReply, ErrReplyTooLong) means the server cannot be
// understood: the host gives up the connection. Feed only reads while
// Awaiting; bytes after the replies it waits for are left alone.
func (t *ClientTxn) Feed(p []byte) (n int, r Reply, err error) {
	if !t.Awaiting() {
		return 0, Reply{}, nil
	}
	r, n, err = t.memo.parse(p)
	if err == ErrIncomplete {
		return 0, Reply{}, nil
	}
	if err != nil {
		return 0, Reply{}, err
	}
	t.answered = true
	t.take(r)
	if r.Code == 421 {
		// RFC 5321 §3.8: the server closes the transmission channel. The
		// replies still outstanding (pipelined commands it did not answer)
		// will not come and count as this 421.
		t.closing = true
		for t.pending > 0 {
			t.take(r)
		}
	}
	return n, r, nil
}

// take records r as the reply to the command the transaction expects an
// answer for, and decides what comes next.
func (t *ClientTxn) take(r Reply) {
	t.pending--
	switch t.expect {
	case replyToRSET:
		t.rset = r
		t.needRSET = false
		if r.Code == 421 {
			// Nothing of the transaction was processed: the host may run it
			// again at once on another connection.
			t.closedAtRSET = true
			t.pending = 0
			t.settled, t.done = true, true
			return
		}
		t.expect = replyToMAIL
		if !t.pipelined {
			t.sendMail()
		}
	case replyToMAIL:
		t.mail = r
		t.expect = replyToRCPT
		if len(t.rcpts) == 0 {
			t.expect = replyToData
		}
		if !t.pipelined {
			if r.Positive() && len(t.rcpts) > 0 {
				t.sendRcpt()
			} else {
				t.endEnvelope()
			}
		}
	case replyToRCPT:
		t.rcpts[t.rcpt] = r
		t.rcpt++
		if r.Positive() {
			t.accepted++
		}
		if t.rcpt == len(t.rcpts) {
			t.expect = replyToData
		}
		if t.pipelined {
			return
		}
		switch {
		case r.Code == 421:
			// The server is closing: no more RCPTs, no DATA. The recipients
			// accepted so far get the 421 in place of the DATA reply; the
			// ones never sent stay NotAnswered.
			t.data = r
			t.endEnvelope()
		case t.rcpt < len(t.rcpts):
			t.sendRcpt()
		case t.accepted > 0:
			t.command("DATA\r\n", replyToData)
		default:
			t.endEnvelope()
		}
	case replyToData:
		if t.bdat {
			t.final = r
		} else {
			t.data = r
		}
		t.endEnvelope()
	case replyToMessage:
		// The final reply applies to every accepted recipient; the
		// transaction is over either way (RFC 5321 §4.1.1.4).
		t.final = r
		t.settled, t.done = true, true
	case replyToLoneDot:
		t.done = true
	}
}

// endEnvelope settles the transaction once the envelope's replies are in:
// the outcomes are known, except the accepted recipients' when the body
// goes now.
func (t *ClientTxn) endEnvelope() {
	t.settled = true
	switch {
	case t.bdat:
		// RFC 3030 §2: the reply to BDAT LAST is the final reply. A server
		// that refused the sender or the chunk, or had no recipient left,
		// discarded the message; RSET clears what is left of the
		// transaction before the next one.
		t.needRSET = !t.mail.Positive() || t.accepted == 0 || !t.final.Positive()
		t.done = true
	case !t.mail.Positive() || t.accepted == 0:
		// Nothing to send. RFC 2920 §3.1: the DATA reply must still be read
		// and a server that answered it with 354 gets a lone "." (an empty
		// transaction without recipients, which it must not deliver).
		t.needRSET = true
		if t.data.Code == 354 {
			t.command(".\r\n", replyToLoneDot)
		} else {
			t.done = true
		}
	case t.data.Code != 354:
		// DATA refused: the accepted recipients get its reply.
		t.needRSET = true
		t.done = true
	default:
		// RFC 5321 §4.1.1.4: the message, then the final reply, which
		// settles the accepted recipients.
		t.settled = false
		t.out = t.out[:0]
		t.body = BodyDotStuffed
		t.expect = replyToMessage
		t.pending = 1
		t.writeReady = true
	}
}

// command makes line the next write, awaiting one reply of kind expect: a
// server without PIPELINING answers each command before the next one goes.
func (t *ClientTxn) command(line string, expect txnReply) {
	t.out = append(t.out[:0], line...)
	t.await(expect)
}

func (t *ClientTxn) sendMail() {
	t.out = appendMail(t.out[:0], t.msg.From, t.opts)
	t.await(replyToMAIL)
}

func (t *ClientTxn) sendRcpt() {
	t.out = appendRcpt(t.out[:0], t.msg.Rcpts[t.rcpt], t.opts.dsn)
	t.await(replyToRCPT)
}

func (t *ClientTxn) await(expect txnReply) {
	t.expect = expect
	t.body = NoBody
	t.pending = 1
	t.writeReady = true
}

// Done reports that the transaction has nothing more to write or read.
func (t *ClientTxn) Done() bool { return t.done }

// Settled reports that every recipient's outcome is known. It can come
// before Done: the lone "." of RFC 2920 §3.1 and its reply change nothing,
// so a connection lost after Settled costs only the connection, while one
// lost before leaves every recipient without an answer.
func (t *ClientTxn) Settled() bool { return t.settled }

// Outcome returns the outcome of recipient i (in the order of msg.Rcpts)
// once the transaction is Settled. A recipient the server accepted is
// decided by the reply to the message; a refused one by its RCPT reply;
// every one by a refused MAIL, a refused DATA (the accepted ones), or a 421
// to the opening RSET. Without PIPELINING, the recipients after a 421 were
// never sent and are NotAnswered.
func (t *ClientTxn) Outcome(i int) RcptOutcome {
	switch r := t.rcpts[i]; {
	case t.closedAtRSET:
		return RcptOutcome{t.rset, DecidedByRSET}
	case !t.mail.Positive():
		return RcptOutcome{t.mail, DecidedByMAIL}
	case i >= t.rcpt:
		return RcptOutcome{}
	case !r.Positive():
		return RcptOutcome{r, DecidedByRCPT}
	case !t.bdat && t.data.Code != 354:
		return RcptOutcome{t.data, DecidedByDATA}
	}
	return RcptOutcome{t.final, DecidedByMessage}
}

// Closing reports that the server answered with 421: it is closing the
// transmission channel (RFC 5321 §3.8) and the connection cannot be used
// again.
func (t *ClientTxn) Closing() bool { return t.closing }

// NeedsRSET reports that the transaction was abandoned part-way (a refused
// sender, DATA or chunk, or no recipient accepted), so the next one on the
// connection must start with RSET (ClientTxnOptions.RSETFirst).
func (t *ClientTxn) NeedsRSET() bool { return t.needRSET }

// Replayable reports that the server processed nothing of the transaction
// Begin started: no reply came yet, or only a 421 to the opening RSET. The
// host may run it again on another connection without risk of a duplicate
// delivery. A transaction Begin refused is not replayable.
func (t *ClientTxn) Replayable() bool { return !t.answered && !t.done || t.closedAtRSET }
