package smtpwire

import (
	"bytes"
	"strconv"
)

// BareLFPolicy says what the server does with bare LF (and bare CR) line
// endings in a DATA body.
type BareLFPolicy int

const (
	// BareLFNormalize turns them into CRLF and accepts the message.
	BareLFNormalize BareLFPolicy = iota
	// BareLFReject reads the message to its end, then refuses it with
	// 550 5.6.0 (ReplyBareLF).
	BareLFReject
)

// Limits and defaults of the server session.
const (
	// MaxCommandLine is the longest command line accepted, CRLF included.
	// RFC 5321 §4.5.3.1.4 sets 512 octets; extensions and real clients send
	// longer lines (long addresses with ORCPT, ENVID), so Gannet allows 2048.
	// A longer line is answered 500 5.5.2 once its CRLF arrives, and the
	// session goes on with the next line.
	MaxCommandLine = 2048
	// MaxAuthLine is the limit for AUTH command lines and SASL responses,
	// which RFC 4954 §4 raises to 12288 octets.
	MaxAuthLine = 12288

	DefaultMaxMessageSize = 20 << 20 // when ServerConfig.MaxMessageSize is 0
	DefaultMaxRecipients  = 1000     // when ServerConfig.MaxRecipients is 0
	DefaultMaxBadCommands = 20       // when ServerConfig.MaxBadCommands is 0
	DefaultMaxOutput      = 32 << 10 // when ServerConfig.MaxOutput is 0

	// DataLineMax is how many octets of message data without a line end
	// count as one line for Lines: the longest text line RFC 5321
	// §4.5.3.1.6 allows, CRLF included.
	DataLineMax = 1000
)

// ServerConfig is what a listener tells its sessions. NewSession copies it.
type ServerConfig struct {
	Hostname       string       // in the greeting, EHLO reply and 421 replies
	MaxMessageSize int64        // advertised in SIZE and enforced on the bytes (552 5.3.4); 0: DefaultMaxMessageSize
	MaxRecipients  int          // 452 4.5.3 past it; 0: DefaultMaxRecipients
	MaxBadCommands int          // then 421 4.4.2 and EventClose; 0: DefaultMaxBadCommands; < 0: no limit
	BareLF         BareLFPolicy // what to do with bare LF in DATA
	StartTLS       bool         // advertise and accept STARTTLS (until TLS is on)
	AuthMechs      []string     // advertised AUTH mechanisms: PLAIN, LOGIN, CRAM-MD5; empty: no AUTH
	AuthRequired   bool         // MAIL before AUTH → 530 5.7.0
	AuthRequireTLS bool         // AUTH only under TLS: not advertised before, 538 5.7.11 if tried
	// CRAMChallenge returns a fresh CRAM-MD5 challenge in the RFC 2195 form
	// "<unique.timestamp@hostname>". Without it CRAM-MD5 is not offered.
	CRAMChallenge func() string
	// BodyBuffer, when set, returns an empty buffer with room for at least
	// n bytes for the next message body (the host's pool of buffers, which
	// it refills with the bodies it is done with); nil allocates one.
	BodyBuffer func(n int) []byte
	// MaxOutput bounds the reply bytes one Feed call leaves in Output: once
	// this many wait, Feed stops before the next command and returns
	// EventFlush. 0: DefaultMaxOutput.
	MaxOutput int
	// RequireTLS advertises REQUIRETLS (RFC 8689 §3) in the EHLO reply of
	// TLS sessions and accepts MAIL … REQUIRETLS there; on a session
	// without TLS it is not advertised and the parameter gets 530 5.7.10.
	RequireTLS bool
}

// Envelope is one mail transaction as the host needs it to store the message
// and write its Received header (RFC 5321 §4.4).
type Envelope struct {
	Helo       string // the EHLO/HELO argument
	ESMTP      bool   // EHLO (not HELO) was used
	From       Path
	Rcpts      []Path // accepted recipients, in order
	Size       int64  // declared SIZE=, 0 when absent
	SMTPUTF8   bool   // RFC 6531
	Body8BIT   bool   // BODY=8BITMIME or BINARYMIME
	BodyBinary bool   // BODY=BINARYMIME (RFC 3030)
	Chunked    bool   // the body came with BDAT (RFC 3030)
	TLS        bool   // the transaction ran under TLS (STARTTLS or implicit)
	AuthUser   string // the authenticated user, "" when none
	RequireTLS bool   // MAIL … REQUIRETLS (RFC 8689 §4.1): relay only over validated TLS
	Ret        DSNRet // RET= of MAIL (RFC 3461 §4.3); 0 when absent
	EnvID      string // ENVID= of MAIL (RFC 3461 §4.4), decoded; "" when absent
}

// Protocol returns the "with" keyword of the Received header (RFC 3848,
// RFC 6531 §3.7.3): SMTP, ESMTP, ESMTPS, ESMTPA, ESMTPSA, or UTF8SMTP… .
func (e *Envelope) Protocol() string {
	if !e.ESMTP {
		return "SMTP"
	}
	i := 0
	if e.TLS {
		i |= 1
	}
	if e.AuthUser != "" {
		i |= 2
	}
	if e.SMTPUTF8 {
		return [...]string{"UTF8SMTP", "UTF8SMTPS", "UTF8SMTPA", "UTF8SMTPSA"}[i]
	}
	return [...]string{"ESMTP", "ESMTPS", "ESMTPA", "ESMTPSA"}[i]
}

// EventKind says what Feed stopped for.
type EventKind int

const (
	EventNone     EventKind = iota // need more input
	EventHello                     // informational: EHLO/HELO accepted, reply already in Output; Hello set
	EventMail                      // wants Respond; Mail and Envelope set
	EventRcpt                      // wants Respond; Rcpt and Envelope set
	EventMessage                   // wants Respond; Envelope and Body set, both now owned by the host
	EventStartTLS                  // 220 in Output: flush it, DISCARD the rest of the input buffer, handshake, call TLSStarted
	EventAuth                      // wants Respond; Auth set: verify the credentials
	EventQuit                      // 221 in Output: flush and close
	EventClose                     // 421 in Output (too many errors): flush and close
	EventFlush                     // Output holds MaxOutput bytes or more: write them, then Feed again with p[n:]
)

var eventNames = [...]string{"None", "Hello", "Mail", "Rcpt", "Message", "StartTLS", "Auth", "Quit", "Close", "Flush"}

func (k EventKind) String() string {
	if k >= 0 && int(k) < len(eventNames) {
		return eventNames[k]
	}
	return "EventKind(" + strconv.Itoa(int(k)) + ")"
}

// WantsResponse reports the kinds the host must answer with Respond.
func (k EventKind) WantsResponse() bool {
	return k == EventMail || k == EventRcpt || k == EventMessage || k == EventAuth
}

// Event is what Feed returns. Mail, Rcpt and Auth point into the session and
// are valid until Respond; Envelope and Body of EventMessage belong to the
// host from then on.
type Event struct {
	Kind     EventKind
	Hello    string
	Mail     *MailCmd
	Rcpt     *Path
	Envelope *Envelope
	Body     []byte // dot-unstuffed, CRLF line ends (DATA); raw chunks (BDAT)
	Auth     *AuthCredentials
}

// Session states.
const (
	ssCommand = iota // reading command lines
	ssAuth           // reading a SASL response line
	ssData           // reading a DATA body
	ssBDAT           // reading a BDAT chunk
	ssTLSWait        // after STARTTLS, until TLSStarted
	ssClosed         // after QUIT, 421: input is ignored
)

// Session is the server side of one SMTP connection, with no I/O: the host
// feeds it the bytes it reads, writes the bytes of Output, and answers the
// events that need a decision. See the package comment for the design.
type Session struct {
	cfg      ServerConfig
	maxSize  int64
	maxRcpts int
	maxBad   int
	maxOut   int
	mechs    uint8 // offered AUTH mechanisms (mechPLAIN…)
	obsAll   bool  // trace mode (SetObserver)

	state   int
	pending EventKind // event awaiting Respond

	helo     string
	esmtp    bool
	tls      bool
	authUser string // "" until AUTH succeeded
	authed   bool
	bad      int

	env         *Envelope // current transaction; nil outside one
	mailRefused bool      // the last MAIL was refused: pipelined RCPT/DATA are not counted as bad
	mail        MailCmd
	rcpt        Path

	auth     AuthCredentials
	authStep int
	scratch  []byte // base64 decoding

	line     []byte // a partial command line carried between Feed calls
	skipping bool   // discarding the rest of an overlong line

	lines   uint64 // input lines completed (Lines)
	dataRun int    // octets of message data since its last line end

	dec   DotDecoder
	body  []byte
	spare []byte // a body buffer given back with RecycleBody
	// lastBody is the size of the session's previous message body: the
	// next one is likely of that size too (newBody).
	lastBody int64

	usedBDAT   bool
	bdatLeft   int64
	bdatLast   bool
	bdatSize   int64
	bdatErr    *Reply // refuse the chunk once it is read
	bdatErrBad bool   // and count it as a bad command
	bdatTooBig bool
	// obsData counts the octets of the body or chunk being read, in
	// trace mode (modulo 2³²: it is only shown).
	obsData uint32
	out     []byte
	outOff  int

	// obs is SetObserver's; nil: none. The session stays within 632
	// bytes: with the 8-byte header of a pointerful object past 512
	// bytes, one 640-byte allocation per connection.
	obs Observer
}

// NewSession returns a session for one connection.
func NewSession(cfg *ServerConfig) *Session {
	s := &Session{cfg: *cfg}
	s.maxSize = cfg.MaxMessageSize
	if s.maxSize <= 0 {
		s.maxSize = DefaultMaxMessageSize
	}
	s.maxRcpts = cfg.MaxRecipients
	if s.maxRcpts <= 0 {
		s.maxRcpts = DefaultMaxRecipients
	}
	s.maxBad = cfg.MaxBadCommands
	if s.maxBad == 0 {
		s.maxBad = DefaultMaxBadCommands
	}
	s.maxOut = cfg.MaxOutput
	if s.maxOut <= 0 {
		s.maxOut = DefaultMaxOutput
	}
	for _, m := range cfg.AuthMechs {
		switch {
		case asciiEqualFold([]byte(m), "PLAIN"):
			s.mechs |= mechPLAIN
		case asciiEqualFold([]byte(m), "LOGIN"):
			s.mechs |= mechLOGIN
		case asciiEqualFold([]byte(m), "CRAM-MD5") && cfg.CRAMChallenge != nil:
			s.mechs |= mechCRAM
		}
	}
	s.out = make([]byte, 0, 512)
	return s
}

// Greeting returns the opening reply (RFC 5321 §4.3.1), which the host writes
// first. Like the EHLO reply it carries no enhanced code (RFC 2034 §3).
func (s *Session) Greeting() []byte {
	b := make([]byte, 0, len(s.cfg.Hostname)+20)
	b = append(b, "220 "...)
	b = appendReplyText(b, s.cfg.Hostname)
	return append(b, " ESMTP Gannet\r\n"...)
}

// Output returns the reply bytes produced so far and not yet consumed.
func (s *Session) Output() []byte { return s.out[s.outOff:] }

// ConsumeOutput marks n bytes of Output as written.
func (s *Session) ConsumeOutput(n int) {
	s.outOff += n
	if s.outOff >= len(s.out) {
		s.out = s.out[:0]
		s.outOff = 0
	}
}

// Closed reports that the session ended (QUIT, too many errors, timeout): the
// host flushes Output and closes the connection.
func (s *Session) Closed() bool { return s.state == ssClosed }

// Waiting reports that an event awaits Respond.
func (s *Session) Waiting() bool { return s.pending != EventNone }

// TLS reports whether TLSStarted was called.
func (s *Session) TLS() bool { return s.tls }

// InTransaction reports whether a mail transaction is open: from a MAIL the
// host has not refused until the message is answered, or RSET, EHLO/HELO or
// STARTTLS ends it (RFC 5321 §4.1.4). Hosts use it to choose between the
// idle timeout and the command timeout (RFC 5321 §4.5.3.2).
func (s *Session) InTransaction() bool { return s.env != nil }

// InData reports whether the session is reading message data: a DATA body
// before its final "." or the bytes of a BDAT chunk (RFC 5321 §4.5.3.2.5,
// the data block timeout).
func (s *Session) InData() bool { return s.state == ssData || s.state == ssBDAT }

// InAuth reports whether a SASL exchange waits for the client's response to
// a 334 challenge (RFC 4954 §4).
func (s *Session) InAuth() bool { return s.state == ssAuth }

// Lines counts the input lines the session has completed: command lines
// (an overlong one too, at its end), SASL responses, and lines of message
// data, where an LF ends a line, so do every DataLineMax octets without
// one, and so does the end of a BDAT chunk. A host that times each line
// out (RFC 5321 §4.5.3.2; Postfix's per-record deadline) re-arms its timer
// when the count moves, not on every byte, so that a client trickling a
// byte at a time cannot hold the connection.
func (s *Session) Lines() uint64 { return s.lines }

// TLSStarted resets the session after a STARTTLS handshake (RFC 3207 §4.2):
// it forgets EHLO, AUTH and the transaction, and stops advertising STARTTLS.
// For implicit TLS (port 465 style) call it right after NewSession.
func (s *Session) TLSStarted() {
	s.tls = true
	s.helo, s.esmtp = "", false
	s.authed, s.authUser = false, ""
	s.resetTxn()
	s.mailRefused = false
	s.pending = EventNone
	s.line = s.line[:0]
	s.skipping = false
	if s.state != ssClosed {
		s.state = ssCommand
	}
}

// Timeout writes "421 4.4.2 <host> Error: timeout exceeded" and ends the
// session; the host flushes Output and closes.
func (s *Session) Timeout() {
	if s.state == ssClosed {
		return
	}
	before := len(s.out)
	s.replyHost(ReplyTimeout)
	s.state = ssClosed
	s.observe("", before)
}

// RecycleBody gives a body buffer from EventMessage back to the session for
// the next message. The host must not use b afterwards. Buffers over 1 MiB
// are left to the garbage collector, so that an idle session pins little.
func (s *Session) RecycleBody(b []byte) {
	if cap(b) > 0 && cap(b) <= 1<<20 {
		s.spare = b[:0]
	}
}

// Feed parses as much of p as it can and returns how many bytes it consumed
// and the next event for the host.
//
//   - EventNone: p was consumed entirely (n == len(p)); the session keeps a
//     partial command line itself. Feed again when more input arrives.
//   - Events that want a Respond (Mail, Rcpt, Message, Auth): the bytes after
//     n are not consumed. Until Respond is called, Feed returns (0, EventNone).
//     After Respond, call Feed again with the rest (even if empty).
//   - EventHello: informational, call Feed again with p[n:].
//   - EventFlush: Output holds MaxOutput bytes or more; write them, then
//     Feed again with p[n:]. Replies to a long pipelined batch are thus
//     produced a bounded piece at a time, and a host can stop serving a
//     client that does not read them (RFC 2920 §3.1 leaves it to the client
//     to avoid that deadlock).
//   - EventStartTLS: p[n:] must be discarded (RFC 3207 §5, the STARTTLS
//     command injection); input fed before TLSStarted is dropped.
//   - EventQuit, EventClose: the session is over; later calls return
//     (len(p), EventClose).
func (s *Session) Feed(p []byte) (n int, ev Event) {
	if s.state == ssClosed {
		return len(p), Event{Kind: EventClose}
	}
	if s.pending != EventNone {
		return 0, Event{}
	}
	if s.state == ssTLSWait {
		return len(p), Event{}
	}
	for n < len(p) {
		if len(s.out)-s.outOff >= s.maxOut {
			return n, Event{Kind: EventFlush}
		}
		before, state := len(s.out), s.state
		var line []byte
		switch s.state {
		case ssCommand, ssAuth:
			var used, st int
			line, used, st = s.nextLine(p[n:])
			n += used
			if st != lineNone {
				s.lines++
			}
			switch st {
			case lineComplete:
				if s.obsAll {
					s.observeCommand(line)
				}
				ev = s.handleLine(line)
				s.line = s.line[:0]
			case lineTooLong:
				ev = s.fail(ReplyLineTooLong)
				if s.state == ssAuth {
					s.state = ssCommand
				}
			}
		case ssData:
			var used int
			var done bool
			s.body = s.growBody(len(p) - n)
			s.body, used, done = s.dec.Decode(s.body, p[n:])
			s.countDataLines(p[n : n+used])
			n += used
			if s.obsAll {
				s.obsData += uint32(used)
				if done {
					s.obs.Data(int64(s.obsData))
					s.obsData = 0
				}
			}
			if done {
				ev = s.endData()
			}
		case ssBDAT:
			take := len(p) - n
			if int64(take) > s.bdatLeft {
				take = int(s.bdatLeft)
			}
			if s.bdatErr == nil && !s.bdatTooBig {
				s.body = append(s.growBody(take), p[n:n+take]...)
			}
			s.countDataLines(p[n : n+take])
			n += take
			s.bdatLeft -= int64(take)
			if s.obsAll {
				s.obsData += uint32(take)
				if s.bdatLeft == 0 {
					s.obs.Data(int64(s.obsData))
					s.obsData = 0
				}
			}
			if s.bdatLeft == 0 {
				ev = s.endChunk()
			}
		default: // ssTLSWait, ssClosed reached inside this call
			return len(p), ev
		}
		if s.obs != nil && len(s.out) > before && (s.obsAll || s.out[before] >= '4') {
			s.obs.Reply(s.verbOf(state, line), s.out[before:])
		}
		if ev.Kind != EventNone {
			return n, ev
		}
	}
	return n, Event{}
}

// countDataLines advances Lines over message data b: each LF ends a line,
// and so does every DataLineMax octets without one.
func (s *Session) countDataLines(b []byte) {
	if k := bytes.Count(b, []byte{'\n'}); k > 0 {
		s.lines += uint64(k)
		s.dataRun = len(b) - 1 - bytes.LastIndexByte(b, '\n')
	} else {
		s.dataRun += len(b)
	}
	if s.dataRun >= DataLineMax {
		s.lines += uint64(s.dataRun / DataLineMax)
		s.dataRun %= DataLineMax
	}
}

const (
	lineNone = iota
	lineComplete
	lineTooLong
)

// nextLine returns the next complete command line without its line ending
// (CRLF, or leniently a bare LF), or buffers a partial one.
func (s *Session) nextLine(p []byte) (line []byte, used int, status int) {
	lf := bytes.IndexByte(p, '\n')
	if lf < 0 {
		if !s.skipping {
			if len(s.line)+len(p) > s.lineLimit(p) {
				s.skipping = true
				s.line = s.line[:0]
			} else {
				s.line = append(s.line, p...)
			}
		}
		return nil, len(p), lineNone
	}
	used = lf + 1
	if s.skipping {
		s.skipping = false
		return nil, used, lineTooLong
	}
	if len(s.line) > 0 {
		s.line = append(s.line, p[:lf]...)
		line = s.line
	} else {
		line = p[:lf]
	}
	line = trimCR(line)
	if len(line) > s.lineLimit(line)-2 {
		s.line = s.line[:0]
		return nil, used, lineTooLong
	}
	return line, used, lineComplete
}

func (s *Session) lineLimit(start []byte) int {
	if len(s.line) > 0 {
		start = s.line
	}
	if s.state == ssAuth || hasPrefixFold(start, "AUTH ") {
		return MaxAuthLine
	}
	return MaxCommandLine
}

// reply appends r to Output.
func (s *Session) reply(r Reply) { s.out = r.AppendTo(s.out) }

// replyHost appends r with the host name before its text (421 replies).
func (s *Session) replyHost(r Reply) {
	s.out = appendCode(s.out, r.Code)
	s.out = append(s.out, ' ')
	s.out = append(s.out, r.Enhanced...)
	s.out = append(s.out, ' ')
	s.out = appendReplyText(s.out, s.cfg.Hostname)
	s.out = append(s.out, ' ')
	s.out = appendReplyText(s.out, r.Lines[0])
	s.out = append(s.out, '\r', '\n')
}

// fail answers a bad command and counts it; past MaxBadCommands the session
// ends with 421 (RFC 5321 §4.3.2 allows 421 for any command).
func (s *Session) fail(r Reply) Event {
	s.reply(r)
	return s.countBad()
}

func (s *Session) countBad() Event {
	s.bad++
	if s.maxBad > 0 && s.bad >= s.maxBad {
		s.replyHost(ReplyTooManyErrors)
		s.state = ssClosed
		s.pending = EventNone
		return Event{Kind: EventClose}
	}
	return Event{}
}

// refuseOutOfTxn answers RCPT/DATA/BDAT outside a transaction; it is not
// counted when the client pipelined them behind a MAIL that was refused.
func (s *Session) refuseOutOfTxn() Event {
	if s.mailRefused {
		s.reply(ReplyNeedMail)
		return Event{}
	}
	return s.fail(ReplyNeedMail)
}

func (s *Session) resetTxn() {
	s.env = nil
	s.usedBDAT = false
	s.bdatSize = 0
	s.bdatTooBig = false
	if s.body != nil {
		s.RecycleBody(s.body)
		s.body = nil
	}
}

func (s *Session) handleLine(line []byte) Event {
	if s.state == ssAuth {
		return s.authResponse(line)
	}
	cmd, err := ParseCommand(line)
	if err != nil {
		return s.fail(err.(*Error).Reply)
	}
	arg := cmd.Arg
	if cmd.Verb != VerbMAIL && cmd.Verb != VerbRCPT {
		// 8-bit bytes and controls are allowed only in SMTPUTF8 addresses.
		for _, c := range arg {
			if c < ' ' && c != '\t' || c >= 0x7f {
				return s.fail(ReplySyntax)
			}
		}
	}
	switch cmd.Verb {
	case VerbEHLO, VerbHELO:
		return s.hello(cmd.Verb == VerbEHLO, arg)
	case VerbMAIL:
		return s.mailCmd(arg)
	case VerbRCPT:
		return s.rcptCmd(arg)
	case VerbDATA:
		return s.dataCmd(arg)
	case VerbBDAT:
		return s.bdatCmd(arg)
	case VerbRSET:
		// RFC 5321 §4.1.1.5.
		s.resetTxn()
		s.mailRefused = false
		s.reply(ReplyOK)
	case VerbNOOP:
		s.reply(ReplyOK)
	case VerbQUIT:
		// RFC 5321 §4.1.1.10.
		s.out = append(s.out, "221 2.0.0 "...)
		s.out = appendReplyText(s.out, s.cfg.Hostname)
		s.out = append(s.out, " closing connection\r\n"...)
		s.state = ssClosed
		return Event{Kind: EventQuit}
	case VerbVRFY:
		s.reply(ReplyVRFY)
	case VerbEXPN:
		s.reply(ReplyNotImplemented)
	case VerbHELP:
		s.reply(ReplyHelp)
	case VerbSTARTTLS:
		return s.startTLS(arg)
	case VerbAUTH:
		return s.startAuth(arg)
	}
	return Event{}
}

// hello handles EHLO and HELO (RFC 5321 §4.1.1.1). Either one resets the
// transaction like RSET (§4.1.4).
func (s *Session) hello(ehlo bool, arg []byte) Event {
	if len(arg) == 0 {
		return s.fail(ReplySyntax)
	}
	if sp := bytes.IndexAny(arg, " \t"); sp >= 0 {
		arg = arg[:sp]
	}
	if s.helo != string(arg) {
		s.helo = string(arg)
	}
	s.esmtp = ehlo
	s.resetTxn()
	s.mailRefused = false
	if !ehlo {
		s.out = append(s.out, "250 "...)
		s.out = appendReplyText(s.out, s.cfg.Hostname)
		s.out = append(s.out, '\r', '\n')
		return Event{Kind: EventHello, Hello: s.helo}
	}
	// The EHLO reply lists the extensions (RFC 5321 §4.1.1.1); no enhanced
	// codes here (RFC 2034 §3). CHUNKING is always last.
	s.out = append(s.out, "250-"...)
	s.out = appendReplyText(s.out, s.cfg.Hostname)
	s.out = append(s.out, "\r\n250-PIPELINING\r\n250-SIZE "...)
	s.out = strconv.AppendInt(s.out, s.maxSize, 10)
	s.out = append(s.out, "\r\n250-8BITMIME\r\n250-SMTPUTF8\r\n250-ENHANCEDSTATUSCODES\r\n250-DSN\r\n"...)
	if s.cfg.StartTLS && !s.tls {
		s.out = append(s.out, "250-STARTTLS\r\n"...)
	}
	if s.cfg.RequireTLS && s.tls {
		// RFC 8689 §3: offered only once TLS is on.
		s.out = append(s.out, "250-REQUIRETLS\r\n"...)
	}
	if s.mechs != 0 && (s.tls || !s.cfg.AuthRequireTLS) {
		s.out = append(s.out, "250-AUTH"...)
		if s.mechs&mechPLAIN != 0 {
			s.out = append(s.out, " PLAIN"...)
		}
		if s.mechs&mechLOGIN != 0 {
			s.out = append(s.out, " LOGIN"...)
		}
		if s.mechs&mechCRAM != 0 {
			s.out = append(s.out, " CRAM-MD5"...)
		}
		s.out = append(s.out, '\r', '\n')
	}
	s.out = append(s.out, "250 CHUNKING\r\n"...)
	return Event{Kind: EventHello, Hello: s.helo}
}

// mailCmd handles MAIL FROM (RFC 5321 §4.1.1.2, §3.3).
func (s *Session) mailCmd(arg []byte) Event {
	if s.helo == "" {
		return s.fail(ReplyNeedHello)
	}
	if s.env != nil {
		return s.fail(ReplyNestedMail)
	}
	if s.cfg.AuthRequired && !s.authed {
		return s.fail(ReplyAuthRequired)
	}
	var m mailArgs
	if err := parseMailArgs(arg, &m); err != nil {
		return s.fail(err.Reply)
	}
	if m.requireTLS && (!s.tls || !s.cfg.RequireTLS) {
		// RFC 8689 §4.1: REQUIRETLS only over TLS, and only where offered.
		return s.fail(ReplyRequireTLSNeeded)
	}
	if m.size > s.maxSize {
		// RFC 1870 §6: refuse at once what is declared too big.
		s.mailRefused = true
		s.reply(ReplyTooBig)
		return Event{}
	}
	s.mailRefused = false
	from := Path{Addr: string(m.addr)}
	s.env = &Envelope{
		Helo: s.helo, ESMTP: s.esmtp, From: from, Size: m.size,
		SMTPUTF8: m.utf8, Body8BIT: m.body8, BodyBinary: m.binary,
		TLS: s.tls, AuthUser: s.authUser,
		Rcpts:      make([]Path, 0, 4),
		RequireTLS: m.requireTLS,
		Ret:        m.ret,
	}
	if m.envid != nil {
		s.env.EnvID, _ = decodeXtext(m.envid, false) // checked by parseMailArgs
	}
	s.mail = MailCmd{From: from, Size: m.size, Body8BIT: m.body8, BodyBinary: m.binary, SMTPUTF8: m.utf8, RequireTLS: m.requireTLS, Ret: m.ret, EnvID: s.env.EnvID}
	s.pending = EventMail
	return Event{Kind: EventMail, Mail: &s.mail, Envelope: s.env}
}

// rcptCmd handles RCPT TO (RFC 5321 §4.1.1.3).
func (s *Session) rcptCmd(arg []byte) Event {
	if s.env == nil {
		return s.refuseOutOfTxn()
	}
	var ra rcptArgs
	if err := parseRcptArgs(arg, &ra); err != nil {
		return s.fail(err.Reply)
	}
	addr := ra.addr
	if !s.env.SMTPUTF8 && !isASCII(addr) {
		return s.fail(ReplyNeedSMTPUTF8)
	}
	if len(s.env.Rcpts) >= s.maxRcpts {
		// RFC 5321 §4.5.3.1.10: 452, the client sends the rest later.
		s.reply(ReplyTooManyRcpts)
		return Event{}
	}
	s.rcpt = ra.path()
	s.pending = EventRcpt
	return Event{Kind: EventRcpt, Rcpt: &s.rcpt, Envelope: s.env}
}

// dataCmd handles DATA (RFC 5321 §4.1.1.4).
func (s *Session) dataCmd(arg []byte) Event {
	if len(arg) > 0 {
		return s.fail(ReplySyntax)
	}
	if s.env == nil {
		return s.refuseOutOfTxn()
	}
	if s.usedBDAT || s.env.BodyBinary {
		return s.fail(ReplyDataBDATMix)
	}
	if len(s.env.Rcpts) == 0 {
		// Every RCPT was refused (RFC 2920 §3.1): not the client's fault.
		s.reply(ReplyNeedRcpt)
		return Event{}
	}
	s.reply(ReplyDataStart)
	s.state = ssData
	s.dataRun = 0
	s.dec.Reset(s.maxSize)
	s.body = s.newBody()
	return Event{}
}

func (s *Session) newBody() []byte {
	if s.spare != nil {
		b := s.spare
		s.spare = nil
		return b[:0]
	}
	// The buffer starts as large as the SIZE parameter (RFC 1870) or, for
	// a client that declares none, the previous body of the session says,
	// with 1/32 to spare, so that a large body is not copied from a
	// 4 KiB buffer doubling as it comes; never more than 256 KiB ahead of
	// the bytes, whatever a client declares.
	hint := int64(4096)
	if s.env != nil && s.env.Size > 0 {
		hint = max(hint, s.env.Size+s.env.Size/32)
	} else {
		hint = max(hint, s.lastBody+s.lastBody/32)
	}
	hint = min(hint, 256<<10)
	if s.cfg.BodyBuffer != nil {
		return s.cfg.BodyBuffer(int(hint))
	}
	return make([]byte, 0, hint)
}

// growBody makes room in s.body for at least n more bytes (the input at
// hand), doubling the capacity as it goes and never past the size limit
// plus that input. Without it, append would grow a large body line by line
// by Go's 1.25× steps past 256 bytes, copying a 100 KB message about ten
// times; doubling once per Feed copies it at most once more in total.
func (s *Session) growBody(n int) []byte {
	b := s.body
	if cap(b)-len(b) >= n || int64(len(b)) > s.maxSize {
		return b
	}
	want := max(2*cap(b), len(b)+n)
	if limit := s.maxSize + int64(n); int64(want) > limit {
		want = int(limit)
	}
	if want <= cap(b) {
		return b
	}
	nb := make([]byte, len(b), want)
	copy(nb, b)
	return nb
}

// endData finishes a DATA body: refuse it (too big, bare LF) or hand it over.
func (s *Session) endData() Event {
	s.state = ssCommand
	if err := s.dec.Err(s.cfg.BareLF); err != nil {
		s.reply(err.(*Error).Reply)
		s.resetTxn()
		return Event{}
	}
	return s.message()
}

func (s *Session) message() Event {
	ev := Event{Kind: EventMessage, Envelope: s.env, Body: s.body}
	s.lastBody = int64(len(s.body))
	s.body = nil
	s.pending = EventMessage
	return ev
}

// bdatCmd handles "BDAT size [LAST]" (RFC 3030 §2). The chunk is always read,
// even when the command is refused, so that the session stays in sync.
func (s *Session) bdatCmd(arg []byte) Event {
	num, rest := arg, []byte(nil)
	if sp := bytes.IndexAny(arg, " \t"); sp >= 0 {
		num, rest = arg[:sp], trimBlanks(arg[sp:])
	}
	size, ok := parseDecimal(num)
	if !ok || len(rest) > 0 && !asciiEqualFold(rest, "LAST") {
		return s.fail(ReplySyntax)
	}
	s.state = ssBDAT
	s.bdatLeft = size
	s.bdatLast = len(rest) > 0
	s.bdatErr, s.bdatErrBad = nil, false
	switch {
	case s.env == nil:
		s.bdatErr, s.bdatErrBad = &ReplyNeedMail, !s.mailRefused
	case len(s.env.Rcpts) == 0:
		s.bdatErr = &ReplyNeedRcpt
	default:
		if !s.usedBDAT {
			s.usedBDAT = true
			s.bdatSize = 0
			s.body = s.newBody()
		}
		s.bdatSize += size
		if s.bdatSize > s.maxSize {
			// Known from the declared chunk sizes: the bytes are skipped,
			// never stored.
			s.bdatTooBig = true
		} else {
			// Room for the chunk at once (up to 256 KiB ahead of the
			// bytes, whatever the client declares).
			s.body = s.growBody(int(min(size, 256<<10)))
		}
	}
	if size == 0 {
		return s.endChunk()
	}
	return Event{}
}

// endChunk answers a BDAT chunk once all its bytes were read. The end of a
// chunk counts as the end of a line (Lines).
func (s *Session) endChunk() Event {
	s.state = ssCommand
	s.lines++
	s.dataRun = 0
	if r := s.bdatErr; r != nil {
		s.bdatErr = nil
		if s.bdatErrBad {
			return s.fail(*r)
		}
		s.reply(*r)
		return Event{}
	}
	if s.bdatTooBig {
		s.reply(ReplyTooBig)
		s.resetTxn()
		return Event{}
	}
	if !s.bdatLast {
		s.out = append(s.out, "250 2.0.0 "...)
		s.out = strconv.AppendInt(s.out, s.bdatSize, 10)
		s.out = append(s.out, " octets received\r\n"...)
		return Event{}
	}
	s.env.Chunked = true
	return s.message()
}

// startTLS handles STARTTLS (RFC 3207 §4): only when offered and not yet under
// TLS. The host must discard whatever it buffered after the command.
func (s *Session) startTLS(arg []byte) Event {
	if !s.cfg.StartTLS {
		return s.fail(ReplyNotImplemented)
	}
	if s.tls {
		return s.fail(ReplyAlreadyTLS)
	}
	if len(arg) > 0 {
		return s.fail(ReplySyntax)
	}
	s.reply(ReplyStartTLS)
	s.resetTxn()
	s.state = ssTLSWait
	return Event{Kind: EventStartTLS}
}

// Respond answers the pending event. nil accepts with the standard reply
// (250 2.1.0, 250 2.1.5, 250 2.0.0 OK, 235 2.7.0); a non-nil reply is sent as
// is: a 2xx accepts (for EventMessage, "250 2.0.0 OK id=…"), anything else
// refuses. After a refused MAIL the transaction does not start; a refused RCPT
// is not added; a refused AUTH counts as a bad command. Respond without a
// pending event does nothing.
func (s *Session) Respond(r *Reply) {
	kind := s.pending
	if kind == EventNone || s.state == ssClosed {
		return
	}
	s.pending = EventNone
	accepted := r == nil || r.Positive()
	before, verb := len(s.out), ""
	if s.obs != nil {
		verb = s.pendingVerb(kind) // before the transaction is reset
	}
	switch kind {
	case EventMail:
		s.replyOr(r, ReplyMailOK)
		if !accepted {
			s.env = nil
			s.mailRefused = true
		}
	case EventRcpt:
		s.replyOr(r, ReplyRcptOK)
		if accepted {
			s.env.Rcpts = append(s.env.Rcpts, s.rcpt)
		}
	case EventMessage:
		s.replyOr(r, ReplyOK)
		s.env = nil // the host owns it now
		s.resetTxn()
	case EventAuth:
		s.replyOr(r, ReplyAuthOK)
		if accepted {
			s.authed = true
			s.authUser = s.auth.Username
		} else {
			s.countBad()
		}
	}
	if s.obs != nil {
		s.observe(verb, before)
	}
}

func (s *Session) replyOr(r *Reply, def Reply) {
	if r == nil {
		s.reply(def)
	} else {
		s.reply(*r)
	}
}
