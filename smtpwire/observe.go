package smtpwire

import "bytes"

// Observer sees what a Session reads and writes, for the host's rejection
// log and live traces. Its methods run inside Feed, Respond and Timeout, on
// the caller's goroutine; the slices they get are valid only during the
// call.
type Observer interface {
	// Command is called, in trace mode only, with each command line the
	// session read, without its line end. Secrets never reach it: AUTH
	// keeps its mechanism, its initial response becomes "***", and a SASL
	// response line is "***" (RFC 4954 §4: credentials travel in them).
	Command(line []byte)
	// Data is called, in trace mode only, at the end of a DATA body or a
	// BDAT chunk with the number of octets read: bodies are never shown.
	Data(octets int64)
	// Reply is called with the reply bytes the session wrote for one
	// command (all its lines; a 421 that ends the session may follow the
	// reply in the same bytes) and that command's verb: "MAIL", "RCPT",
	// "DATA", "BDAT", "AUTH", …, "UNKNOWN" for a line that did not parse,
	// "" for a timeout. Outside trace mode it is called only for 4xx and
	// 5xx replies, so that a session that goes well calls nothing.
	Reply(verb string, reply []byte)
}

// SetObserver sets the session's Observer (nil: none). all turns trace mode
// on: every command, body size and reply is reported, not just the
// refusals.
func (s *Session) SetObserver(o Observer, all bool) {
	s.obs, s.obsAll = o, all && o != nil
}

// observe reports the reply bytes written since before, as the answer to
// verb.
func (s *Session) observe(verb string, before int) {
	if s.obs == nil || len(s.out) <= before {
		return
	}
	r := s.out[before:]
	if !s.obsAll && r[0] != '4' && r[0] != '5' {
		return
	}
	s.obs.Reply(verb, r)
}

// observeCommand reports a command line in trace mode, secrets elided.
func (s *Session) observeCommand(line []byte) {
	if s.state == ssAuth {
		s.obs.Command(elided)
		return
	}
	if hasPrefixFold(line, "AUTH ") {
		rest := trimBlanks(line[5:])
		if sp := bytes.IndexAny(rest, " \t"); sp >= 0 {
			// scratch is free until the command is handled (decode64).
			s.scratch = append(append(append(s.scratch[:0], "AUTH "...), rest[:sp]...), " ***"...)
			s.obs.Command(s.scratch)
			return
		}
	}
	s.obs.Command(line)
}

var elided = []byte("***")

// verbOf names the command a reply made in state answers.
func (s *Session) verbOf(state int, line []byte) string {
	switch state {
	case ssAuth:
		return "AUTH"
	case ssData:
		return "DATA"
	case ssBDAT:
		return "BDAT"
	}
	if line == nil {
		return "UNKNOWN" // too long to parse
	}
	cmd, err := ParseCommand(line)
	if err != nil {
		return "UNKNOWN"
	}
	return cmd.Verb.String()
}

// pendingVerb names the command an event that wants Respond answers.
func (s *Session) pendingVerb(kind EventKind) string {
	switch kind {
	case EventMail:
		return "MAIL"
	case EventRcpt:
		return "RCPT"
	case EventAuth:
		return "AUTH"
	case EventMessage:
		if s.env != nil && s.env.Chunked {
			return "BDAT"
		}
		return "DATA"
	}
	return ""
}
