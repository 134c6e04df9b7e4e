package sink

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"strconv"
	"strings"
	"time"
)

// maxBadCommands is how many unknown or out-of-order commands a session
// tolerates before "421 4.4.2 Too many errors".
const maxBadCommands = 20

// errClose ends a session after the reply has been flushed.
var errClose = errors.New("close session")

// errAbort ends a session without flushing (an injected drop).
var errAbort = errors.New("abort session")

// session serves one connection.
type session struct {
	s    *Sink
	conn net.Conn
	r    *bufio.Reader
	w    *bufio.Writer
	rng  *rand.Rand
	peer string

	tls      bool
	greeted  bool // EHLO or HELO seen since the start or STARTTLS
	refused  bool // the greeting was a refusal: only QUIT is served
	helo     string
	bad      int
	inTx     bool
	from     string
	nrcpt    int
	rcpts    []string
	chunking bool // a BDAT sequence has started in this transaction
	body     []byte
	size     int64
	tooBig   bool
	num      [24]byte

	// For a connection the client drops without QUIT (Stats.CutAfterReply,
	// Stats.CutInData): inData is set from 354 (or the first accepted BDAT
	// chunk) to the end of the transaction. unread holds, for the last two
	// transactions that ended, whether a message was accepted with a 250
	// the client may not have read: a pipelining client writes its next
	// transaction before it reads the last one's replies (RFC 2920 §3.1;
	// Gannet keeps up to two in flight). A DATA body proves that the client
	// read every reply before its 354; without PIPELINING any command
	// proves that it read the reply before it.
	inData bool
	unread [2]bool

	// persona is the provider the listener plays (nil: none); ip is the
	// client's address and personaFrom the sender, for its greylisting;
	// tokenTaken says the transaction has passed its hidden rate.
	persona     *personaState
	ip          string
	personaFrom string
	tokenTaken  bool
}

func (s *Sink) serve(c net.Conn, ps *personaState) {
	defer s.wg.Done()
	defer s.forget(c)
	if !s.c.connOpened(s.cfg.MaxConns) {
		c.SetWriteDeadline(s.now().Add(5 * time.Second))
		io.WriteString(c, "421 4.7.0 Too many connections, try again later\r\n")
		s.c.reply(421)
		return
	}
	defer s.c.current.Add(-1)
	if ps != nil {
		if !ps.connOpened() {
			// The persona's hidden connection limit: a refusing greeting
			// (RFC 5321 §3.1), then the connection closes.
			c.SetWriteDeadline(s.now().Add(5 * time.Second))
			io.WriteString(c, ps.p.ConnReply+"\r\n")
			s.c.reply(421)
			return
		}
		defer ps.conns.Add(-1)
	}
	n := s.connSeq.Add(1)
	ss := &session{
		s:    s,
		conn: c,
		r:    bufio.NewReaderSize(c, 64<<10),
		w:    bufio.NewWriterSize(c, 8<<10),
		rng:  rand.New(rand.NewPCG(s.cfg.Seed, n)),
		peer: c.RemoteAddr().String(),

		persona: ps,
	}
	if ps != nil {
		ss.ip, _, _ = net.SplitHostPort(ss.peer)
	}
	err := ss.run()
	if err != errAbort {
		ss.w.Flush()
	}
	ss.countCut(err)
}

// countCut counts what a connection the client ended without QUIT left
// open (a read or write error, not a close of the sink's own): the accepted
// message whose 250 the client may never have read, and the message it was
// sending. A relay killed in the middle of its work leaves exactly these,
// so their sum is the most it can deliver again after a restart without
// having lost a record of its own (bench/crashtest's duplicate bound).
func (ss *session) countCut(err error) {
	if err == errClose || err == errAbort { // QUIT, or the sink closed it
		return
	}
	select {
	case <-ss.s.done: // Close cut it
		return
	default:
	}
	for _, u := range ss.unread {
		if u {
			ss.s.c.cutAfterReply.Add(1)
		}
	}
	if ss.inData {
		ss.s.c.cutInData.Add(1)
	}
}

// run is the command loop (RFC 5321 §4.1).
func (ss *session) run() error {
	if handled, err := ss.fault(StageConnect, nil); handled {
		if err != nil {
			return err
		}
		// A refusing greeting: RFC 5321 §3.1 lets the client QUIT; everything
		// else gets 503.
		ss.refused = true
	} else {
		ss.w.Write(ss.s.greeting)
		ss.s.c.reply(220)
	}
	for {
		line, err := ss.readLine()
		if err != nil {
			if err == bufio.ErrBufferFull {
				if err := ss.skipLongLine(); err != nil {
					return err
				}
				if err := ss.badCommand(500, "5.5.2 Line too long"); err != nil {
					return err
				}
				continue
			}
			if isTimeout(err) {
				ss.reply(421, "4.4.2 Idle timeout, closing connection")
				return errClose
			}
			return err
		}
		if ss.s.cfg.NoPipelining {
			ss.unread = [2]bool{} // the client spoke after the last 250: it read it
		}
		if err := ss.command(trimCRLF(line)); err != nil {
			return err
		}
	}
}

// readLine flushes pending replies when the next read would block (RFC 2920
// §3.2: a server flushes before it waits for input), then reads one line. The
// returned slice is valid until the next read.
func (ss *session) readLine() ([]byte, error) {
	if ss.r.Buffered() == 0 {
		if ss.w.Buffered() > 0 {
			ss.s.c.flushes.Add(1)
			if err := ss.w.Flush(); err != nil {
				return nil, err
			}
		}
		ss.conn.SetReadDeadline(ss.s.now().Add(ss.s.cfg.IdleTimeout))
	}
	return ss.r.ReadSlice('\n')
}

// skipLongLine discards the rest of an over-long line.
func (ss *session) skipLongLine() error {
	for {
		_, err := ss.r.ReadSlice('\n')
		if err != bufio.ErrBufferFull {
			return err
		}
	}
}

// reply buffers one single-line reply "CODE TEXT".
func (ss *session) reply(code int, text string) {
	b := strconv.AppendInt(ss.num[:0], int64(code), 10)
	ss.w.Write(b)
	ss.w.WriteByte(' ')
	ss.w.WriteString(text)
	ss.w.WriteString("\r\n")
	ss.s.c.reply(code)
	if ss.s.cfg.NoPipelining {
		ss.w.Flush()
	}
}

func (ss *session) badCommand(code int, text string) error {
	ss.bad++
	if ss.bad > maxBadCommands {
		ss.reply(421, "4.4.2 Too many errors, closing connection")
		return errClose
	}
	ss.reply(code, text)
	return nil
}

// fault applies the injected faults of stage st, arg being the address for
// mail and rcpt (a Match is looked for in it; at data and dot, in the
// transaction's sender). handled reports that it answered (or dropped) in place of
// the normal reply; err is set when the session must end.
func (ss *session) fault(st Stage, arg []byte) (handled bool, err error) {
	f := ss.s.faults.Load()
	if !f.any[st] {
		return false, nil
	}
	if d := f.delay[st]; d > 0 {
		ss.w.Flush()
		ss.s.sleep(d)
	}
	if p := f.drop[st]; p > 0 && ss.rng.Float64() < p {
		ss.s.c.dropped.Add(1)
		return true, errAbort
	}
	matches := func(m string) bool {
		if st == StageData || st == StageDot {
			return strings.Contains(ss.from, m)
		}
		return bytes.Contains(arg, []byte(m))
	}
	for _, x := range f.drops[st] {
		if matches(x.Match) && ss.rng.Float64() < x.Prob {
			ss.s.c.dropped.Add(1)
			return true, errAbort
		}
	}
	for i := range f.failures[st] {
		x := &f.failures[st][i]
		if x.Match != "" && !matches(x.Match) {
			continue
		}
		if x.fires(ss.rng.Float64) {
			ss.reply(x.Code, x.Text)
			if x.Code == 421 {
				// RFC 5321 §3.8: 421 announces that the server closes the channel.
				return true, errClose
			}
			return true, nil
		}
	}
	return false, nil
}

func (ss *session) resetTx() {
	ss.inTx = false
	ss.from = ""
	ss.nrcpt = 0
	ss.rcpts = ss.rcpts[:0]
	ss.chunking = false
	ss.body = ss.body[:0]
	ss.size = 0
	ss.tooBig = false
	ss.inData = false
	ss.personaFrom = ""
	ss.tokenTaken = false
}

// command dispatches one command line (without CRLF).
func (ss *session) command(line []byte) error {
	var verb [4]byte
	if len(line) >= 4 {
		for i := range verb {
			verb[i] = line[i] &^ 0x20 // ASCII upper case; non-letters never match below
		}
	}
	if len(line) > 4 && line[4] != ' ' {
		if bytes.EqualFold(line, []byte("STARTTLS")) {
			verb = [4]byte{'S', 'T', 'T', 'L'}
		} else {
			verb = [4]byte{} // "EHLOX" is not EHLO
		}
	}
	arg := []byte(nil)
	if len(line) > 5 {
		arg = line[5:]
	}
	if ss.refused && string(verb[:]) != "QUIT" {
		return ss.badCommand(503, "5.5.1 No service, QUIT please")
	}
	switch string(verb[:]) {
	case "EHLO", "HELO":
		return ss.hello(verb[0] == 'E', arg)
	case "MAIL":
		return ss.mail(arg)
	case "RCPT":
		return ss.rcpt(arg)
	case "DATA":
		return ss.data()
	case "BDAT":
		return ss.bdat(arg)
	case "RSET":
		ss.resetTx()
		ss.reply(250, "2.0.0 OK")
	case "NOOP":
		ss.reply(250, "2.0.0 OK")
	case "QUIT":
		ss.reply(221, "2.0.0 Bye")
		return errClose
	case "VRFY":
		ss.reply(252, "2.5.0 Cannot VRFY user")
	case "HELP":
		ss.reply(214, "2.0.0 smtpsink")
	case "STTL": // STARTTLS, recognized above
		return ss.startTLS()
	case "AUTH":
		return ss.auth(arg)
	default:
		return ss.badCommand(500, "5.5.2 Command unrecognized")
	}
	return nil
}

func (ss *session) hello(extended bool, arg []byte) error {
	if len(bytes.TrimSpace(arg)) == 0 {
		return ss.badCommand(501, "5.5.4 Domain name required")
	}
	if handled, err := ss.fault(StageEHLO, arg); handled {
		return err
	}
	ss.resetTx()
	ss.greeted = true
	if ss.s.keepBody {
		ss.helo = string(bytes.TrimSpace(arg))
	}
	if !extended {
		ss.reply(250, ss.s.cfg.Hostname)
		return nil
	}
	tlsIdx := 0
	if ss.tls {
		tlsIdx = 1
	}
	ss.w.Write(ss.s.ehlo[tlsIdx])
	ss.s.c.reply(250)
	if ss.s.cfg.NoPipelining {
		ss.w.Flush()
	}
	return nil
}

// pathArg returns the address inside "<...>" after the given prefix
// ("FROM:" or "TO:", case-insensitive, RFC 5321 §4.1.1.2-3).
func pathArg(arg []byte, prefix string) ([]byte, bool) {
	if len(arg) < len(prefix) || !bytes.EqualFold(arg[:len(prefix)], []byte(prefix)) {
		return nil, false
	}
	rest := bytes.TrimLeft(arg[len(prefix):], " ")
	if len(rest) == 0 || rest[0] != '<' {
		return nil, false
	}
	end := bytes.IndexByte(rest, '>')
	if end < 0 {
		return nil, false
	}
	return rest[1:end], true
}

func (ss *session) mail(arg []byte) error {
	if !ss.greeted {
		return ss.badCommand(503, "5.5.1 EHLO first")
	}
	if ss.inTx {
		return ss.badCommand(503, "5.5.1 Nested MAIL command")
	}
	addr, ok := pathArg(arg, "FROM:")
	if !ok {
		return ss.badCommand(501, "5.5.4 Syntax: MAIL FROM:<address>")
	}
	f := ss.s.faults.Load()
	if ss.s.throttled(f.throttle) {
		ss.s.c.throttled.Add(1)
		text := f.throttle.Text
		if text == "" {
			text = "4.7.0 Throttled, try again later"
		}
		ss.reply(421, text)
		return errClose
	}
	if handled, err := ss.personaMail(); handled {
		return err
	}
	if handled, err := ss.fault(StageMail, addr); handled {
		return err
	}
	taken := ss.persona != nil && ss.persona.p.RateStage == "mail"
	ss.resetTx()
	ss.inTx = true
	ss.tokenTaken = taken
	if ss.persona != nil && ss.persona.p.Greylist > 0 {
		ss.personaFrom = string(addr)
	}
	if ss.s.keepBody || f.any[StageData] || f.any[StageDot] {
		ss.from = string(addr) // (a Match of those stages looks at it)
	}
	ss.reply(250, "2.1.0 Sender OK")
	return nil
}

func (ss *session) rcpt(arg []byte) error {
	if !ss.inTx {
		return ss.badCommand(503, "5.5.1 MAIL first")
	}
	addr, ok := pathArg(arg, "TO:")
	if !ok || len(addr) == 0 {
		return ss.badCommand(501, "5.5.4 Syntax: RCPT TO:<address>")
	}
	if ss.nrcpt >= ss.s.cfg.MaxRecipients {
		ss.reply(452, "4.5.3 Too many recipients")
		return nil
	}
	if handled, err := ss.personaRcpt(addr); handled {
		return err
	}
	if handled, err := ss.fault(StageRcpt, addr); handled {
		return err
	}
	ss.nrcpt++
	if ss.s.keepBody {
		ss.rcpts = append(ss.rcpts, string(addr))
	}
	ss.reply(250, "2.1.5 Recipient OK")
	return nil
}

func (ss *session) data() error {
	if !ss.inTx || ss.chunking {
		return ss.badCommand(503, "5.5.1 Bad sequence of commands")
	}
	if ss.nrcpt == 0 {
		// RFC 2920 §3.1: with no valid recipient, DATA is refused with 554.
		ss.resetTx()
		ss.reply(554, "5.5.1 No valid recipients")
		return nil
	}
	if handled, err := ss.fault(StageData, nil); handled {
		ss.resetTx()
		return err
	}
	ss.reply(354, "Start mail input; end with <CRLF>.<CRLF>")
	ss.inData = true
	if err := ss.readData(); err != nil {
		return err
	}
	ss.unread = [2]bool{} // the body came after the 354: the client read it
	return ss.finish(false)
}

// readData reads the message after 354 up to "<CRLF>.<CRLF>", removing the
// transparency dot at the start of lines (RFC 5321 §4.5.2). A line begins
// after LF; the data ends only at "." CRLF following a CRLF, so bare-LF tricks
// cannot end it early.
func (ss *session) readData() error {
	atStart, afterCRLF := true, true
	for {
		line, err := ss.readLine()
		full := err == nil
		if err != nil && err != bufio.ErrBufferFull {
			return err
		}
		if atStart && len(line) > 0 && line[0] == '.' {
			if full && afterCRLF && len(line) == 3 && line[1] == '\r' && line[2] == '\n' {
				return nil
			}
			line = line[1:]
		}
		ss.addBody(line)
		atStart = full
		if full {
			afterCRLF = endsCRLF(line)
		}
	}
}

func endsCRLF(line []byte) bool {
	return len(line) >= 2 && line[len(line)-2] == '\r' && line[len(line)-1] == '\n'
}

// addBody counts (and keeps, when needed) body bytes, enforcing the size limit.
func (ss *session) addBody(p []byte) {
	ss.size += int64(len(p))
	if ss.size > ss.s.cfg.MaxMessageSize {
		ss.tooBig = true
		return
	}
	if ss.s.keepBody {
		ss.body = append(ss.body, p...)
	}
}

// bdat handles "BDAT size [LAST]" (RFC 3030 §2): the chunk is always read,
// even when the command is refused, so the stream stays in sync.
func (ss *session) bdat(arg []byte) error {
	if !ss.s.cfg.Chunking {
		return ss.badCommand(502, "5.5.1 CHUNKING not offered")
	}
	sizeArg, rest, _ := bytes.Cut(arg, []byte(" "))
	n, err := strconv.ParseInt(string(sizeArg), 10, 64)
	last := bytes.EqualFold(bytes.TrimSpace(rest), []byte("LAST"))
	if err != nil || n < 0 || (len(bytes.TrimSpace(rest)) > 0 && !last) {
		// Without a size the chunk cannot be skipped: give up on the session.
		ss.reply(501, "5.5.4 Syntax: BDAT size [LAST]")
		return errClose
	}
	accept := ss.inTx && ss.nrcpt > 0
	answered := false
	var refusal error
	if accept && !ss.chunking {
		if handled, ferr := ss.fault(StageData, nil); handled {
			if ferr == errAbort {
				return ferr
			}
			accept, answered, refusal = false, true, ferr
			ss.resetTx()
		}
	}
	ss.inData = ss.inData || accept
	if err := ss.readChunk(n, accept); err != nil {
		return err
	}
	if answered {
		return refusal
	}
	if !accept {
		if ss.inTx {
			// RFC 3030 §2 with RFC 2920 §3.1: no valid recipient.
			ss.resetTx()
			ss.reply(554, "5.5.1 No valid recipients")
			return nil
		}
		return ss.badCommand(503, "5.5.1 MAIL first")
	}
	ss.chunking = true
	if !last {
		ss.reply(250, "2.0.0 "+strconv.FormatInt(n, 10)+" octets received")
		return nil
	}
	return ss.finish(true)
}

// readChunk reads exactly n bytes of BDAT data, keeping them when keep.
func (ss *session) readChunk(n int64, keep bool) error {
	if int64(ss.r.Buffered()) < n && ss.w.Buffered() > 0 {
		ss.s.c.flushes.Add(1)
		if err := ss.w.Flush(); err != nil {
			return err
		}
	}
	for n > 0 {
		if ss.r.Buffered() == 0 {
			ss.conn.SetReadDeadline(ss.s.now().Add(ss.s.cfg.IdleTimeout))
		}
		want := int(min(n, int64(ss.r.Size())))
		p, err := ss.r.Peek(min(want, max(ss.r.Buffered(), 1)))
		if err != nil && len(p) == 0 {
			return err
		}
		if keep {
			ss.addBody(p)
		}
		ss.r.Discard(len(p))
		n -= int64(len(p))
	}
	return nil
}

// finish answers the end of the message data: size check, dot-stage faults,
// then store and "250 2.0.0 OK id=N".
func (ss *session) finish(chunked bool) error {
	defer ss.resetTx()
	if ss.tooBig {
		ss.s.c.rejected.Add(1)
		ss.reply(552, "5.3.4 Message too big")
		return nil
	}
	if handled, err := ss.personaRate("dot"); handled {
		ss.s.c.rejected.Add(1)
		return err
	}
	if handled, err := ss.fault(StageDot, nil); handled {
		if err != errAbort {
			ss.s.c.rejected.Add(1)
		}
		return err
	}
	seq := ss.s.seq.Add(1)
	if ss.s.keepBody {
		m := &Message{
			Seq:      seq,
			From:     ss.from,
			Rcpts:    append([]string(nil), ss.rcpts...),
			Helo:     ss.helo,
			Peer:     ss.peer,
			TLS:      ss.tls,
			Chunked:  chunked,
			Size:     len(ss.body),
			Received: ss.s.now(),
			Data:     append([]byte(nil), ss.body...),
		}
		if err := ss.s.store(m); err != nil {
			ss.s.c.rejected.Add(1)
			ss.reply(451, "4.3.0 Cannot store message")
			return nil
		}
	}
	ss.s.c.messages.Add(1)
	if ss.persona != nil {
		ss.persona.accepted.Add(1)
	}
	ss.s.c.recipients.Add(uint64(ss.nrcpt))
	ss.s.c.bytes.Add(uint64(ss.size))
	// The reply carries the sink's sequence number as the queue id, in the
	// same "id=" form Gannet uses, without allocating.
	ss.unread = [2]bool{ss.unread[1], true}
	ss.w.WriteString("250 2.0.0 OK id=")
	ss.w.Write(strconv.AppendUint(ss.num[:0], seq, 10))
	ss.w.WriteString("\r\n")
	ss.s.c.reply(250)
	if ss.s.cfg.NoPipelining {
		ss.w.Flush()
	}
	return nil
}

// startTLS upgrades the connection (RFC 3207 §4). Bytes the client pipelined
// behind STARTTLS are discarded (§4.2), and the session starts over without
// EHLO.
func (ss *session) startTLS() error {
	if ss.s.cfg.TLS == nil {
		return ss.badCommand(502, "5.5.1 STARTTLS not offered")
	}
	if ss.tls {
		return ss.badCommand(503, "5.5.1 TLS already active")
	}
	ss.reply(220, "2.0.0 Ready to start TLS")
	if err := ss.w.Flush(); err != nil {
		return err
	}
	ss.r.Discard(ss.r.Buffered())
	tc := tls.Server(ss.conn, ss.s.cfg.TLS)
	tc.SetDeadline(ss.s.now().Add(30 * time.Second))
	if err := tc.Handshake(); err != nil {
		return errAbort
	}
	tc.SetDeadline(time.Time{})
	ss.s.c.tls.Add(1)
	if tc.ConnectionState().DidResume {
		ss.s.c.tlsResumed.Add(1)
	}
	ss.conn = tc
	ss.r.Reset(tc)
	ss.w.Reset(tc)
	ss.tls = true
	ss.greeted = false
	ss.resetTx()
	return nil
}

// auth accepts any AUTH PLAIN or LOGIN credentials (RFC 4954, RFC 4616):
// the sink stands in for a provider and checks nothing.
func (ss *session) auth(arg []byte) error {
	mech, ir, _ := bytes.Cut(arg, []byte(" "))
	var steps int
	switch {
	case bytes.EqualFold(mech, []byte("PLAIN")):
		steps = 1
		if len(ir) > 0 {
			steps = 0
		}
	case bytes.EqualFold(mech, []byte("LOGIN")):
		steps = 2
		if len(ir) > 0 {
			steps = 1
		}
	default:
		return ss.badCommand(504, "5.5.4 Unrecognized authentication type")
	}
	prompts := []string{"VXNlcm5hbWU6", "UGFzc3dvcmQ6"} // "Username:", "Password:"
	for i := 0; i < steps; i++ {
		prompt := ""
		if steps == 2 || len(ir) > 0 {
			prompt = prompts[len(prompts)-steps+i]
		}
		ss.reply(334, prompt)
		line, err := ss.readLine()
		if err != nil {
			return err
		}
		if bytes.Equal(trimCRLF(line), []byte("*")) {
			ss.reply(501, "5.0.0 Authentication cancelled")
			return nil
		}
	}
	ss.reply(235, "2.7.0 Authentication successful")
	return nil
}

func trimCRLF(line []byte) []byte {
	if n := len(line); n > 0 && line[n-1] == '\n' {
		line = line[:n-1]
		if n := len(line); n > 0 && line[n-1] == '\r' {
			line = line[:n-1]
		}
	}
	return line
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
