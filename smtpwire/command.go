package smtpwire

import (
	"bytes"
	"errors"
)

// Verb is an SMTP command verb (RFC 5321 §4.1.1 and extensions).
type Verb uint8

// The verbs the server session knows.
const (
	VerbUnknown  Verb = iota
	VerbHELO          // RFC 5321 §4.1.1.1
	VerbEHLO          // RFC 5321 §4.1.1.1
	VerbMAIL          // RFC 5321 §4.1.1.2
	VerbRCPT          // RFC 5321 §4.1.1.3
	VerbDATA          // RFC 5321 §4.1.1.4
	VerbBDAT          // RFC 3030 §2
	VerbRSET          // RFC 5321 §4.1.1.5
	VerbNOOP          // RFC 5321 §4.1.1.9
	VerbQUIT          // RFC 5321 §4.1.1.10
	VerbVRFY          // RFC 5321 §4.1.1.6
	VerbEXPN          // RFC 5321 §4.1.1.7
	VerbHELP          // RFC 5321 §4.1.1.8
	VerbSTARTTLS      // RFC 3207 §4
	VerbAUTH          // RFC 4954 §4
)

var verbNames = [...]string{"UNKNOWN", "HELO", "EHLO", "MAIL", "RCPT", "DATA", "BDAT", "RSET", "NOOP", "QUIT", "VRFY", "EXPN", "HELP", "STARTTLS", "AUTH"}

func (v Verb) String() string {
	if int(v) < len(verbNames) {
		return verbNames[v]
	}
	return "UNKNOWN"
}

// Command is one parsed command line. Arg points into the line given to
// ParseCommand: copy it to keep it.
type Command struct {
	Verb Verb
	Arg  []byte // text after the verb and its space(s), trailing blanks removed
}

// Errors of ParseCommand.
var (
	ErrUnknownCommand = &Error{Reply: ReplyUnknownCommand, Cause: errors.New("smtpwire: unrecognized command")}
	ErrEightBit       = &Error{Reply: ReplyEightBit, Cause: errors.New("smtpwire: 8-bit byte in command")}
	ErrSyntax         = &Error{Reply: ReplySyntax, Cause: errors.New("smtpwire: bad command arguments")}
	ErrUnknownParam   = &Error{Reply: ReplyBadParam, Cause: errors.New("smtpwire: unknown MAIL/RCPT parameter")}
	ErrSizeExceeded   = &Error{Reply: ReplyTooBig, Cause: errors.New("smtpwire: declared SIZE over the limit")}
)

// ParseCommand splits a command line (with or without its CRLF) into verb and
// argument. The verb is matched case-insensitively (RFC 5321 §2.4) and must be
// followed by a space or the end of the line. It does not allocate.
func ParseCommand(line []byte) (Command, error) {
	line = trimLineEnd(line)
	end := 0
	for end < len(line) && line[end] != ' ' && line[end] != '\t' {
		if line[end] >= 0x80 {
			return Command{}, ErrEightBit
		}
		end++
	}
	var up [8]byte
	if end == 0 || end > len(up) {
		return Command{}, ErrUnknownCommand
	}
	for i := 0; i < end; i++ {
		c := line[i]
		if c >= 'a' && c <= 'z' {
			c -= 'a' - 'A'
		}
		up[i] = c
	}
	var v Verb
	switch string(up[:end]) {
	case "HELO":
		v = VerbHELO
	case "EHLO":
		v = VerbEHLO
	case "MAIL":
		v = VerbMAIL
	case "RCPT":
		v = VerbRCPT
	case "DATA":
		v = VerbDATA
	case "BDAT":
		v = VerbBDAT
	case "RSET":
		v = VerbRSET
	case "NOOP":
		v = VerbNOOP
	case "QUIT":
		v = VerbQUIT
	case "VRFY":
		v = VerbVRFY
	case "EXPN":
		v = VerbEXPN
	case "HELP":
		v = VerbHELP
	case "STARTTLS":
		v = VerbSTARTTLS
	case "AUTH":
		v = VerbAUTH
	default:
		return Command{}, ErrUnknownCommand
	}
	return Command{Verb: v, Arg: trimBlanks(line[end:])}, nil
}

// MailCmd is a parsed MAIL FROM command (RFC 5321 §4.1.1.2) with the
// parameters Gannet supports: SIZE (RFC 1870), BODY (RFC 6152, RFC 3030) and
// SMTPUTF8 (RFC 6531), RET and ENVID (RFC 3461 §4.3, §4.4). AUTH (RFC 4954
// §5) is accepted and ignored.
type MailCmd struct {
	From       Path
	Size       int64 // declared SIZE=, 0 when absent
	Body8BIT   bool  // BODY=8BITMIME (also set for BINARYMIME)
	BodyBinary bool  // BODY=BINARYMIME: the body must come with BDAT
	SMTPUTF8   bool
	// RequireTLS: the REQUIRETLS parameter (RFC 8689 §3): the message must
	// be relayed only over validated TLS to servers that offer REQUIRETLS.
	RequireTLS bool
	Ret        DSNRet // RET= (RFC 3461 §4.3); 0 when absent
	EnvID      string // ENVID= (RFC 3461 §4.4), xtext decoded; "" when absent
}

// RcptCmd is a parsed RCPT TO command (RFC 5321 §4.1.1.3). NOTIFY and ORCPT
// (RFC 3461 §4.1, §4.2) are in To.Notify and To.ORcpt.
type RcptCmd struct {
	To Path
}

// ParseMail parses the argument of MAIL ("FROM:<a@b> SIZE=10"). A non-ASCII
// address without the SMTPUTF8 parameter is refused (ErrNeedUTF8).
func ParseMail(arg []byte) (MailCmd, error) {
	var m mailArgs
	if err := parseMailArgs(arg, &m); err != nil {
		return MailCmd{}, err
	}
	mc := MailCmd{From: Path{Addr: string(m.addr)}, Size: m.size, Body8BIT: m.body8, BodyBinary: m.binary, SMTPUTF8: m.utf8, RequireTLS: m.requireTLS, Ret: m.ret}
	if m.envid != nil {
		mc.EnvID, _ = decodeXtext(m.envid, false) // checked by parseMailArgs
	}
	return mc, nil
}

// ParseRcpt parses the argument of RCPT ("TO:<a@b> NOTIFY=NEVER"). Whether a
// non-ASCII address is allowed depends on the transaction: see Path.IsASCII.
func ParseRcpt(arg []byte) (RcptCmd, error) {
	var r rcptArgs
	if err := parseRcptArgs(arg, &r); err != nil {
		return RcptCmd{}, err
	}
	return RcptCmd{To: r.path()}, nil
}

// mailArgs is the allocation-free form of MailCmd: addr points into the line.
type mailArgs struct {
	addr                []byte
	size                int64
	body8, binary, utf8 bool
	requireTLS          bool
	ret                 DSNRet
	envid               []byte // raw xtext; nil when absent
}

// rcptArgs is the allocation-free form of RcptCmd: addr and orcpt point
// into the line.
type rcptArgs struct {
	addr   []byte
	notify DSNNotify
	orcpt  []byte // raw "type;xtext"; nil when absent
}

// path returns the recipient with its DSN parameters decoded.
func (r *rcptArgs) path() Path {
	p := Path{Addr: string(r.addr), Notify: r.notify}
	if r.orcpt != nil {
		p.ORcpt, _ = parseORcpt(r.orcpt) // checked by parseRcptArgs
	}
	return p
}

func parseMailArgs(arg []byte, m *mailArgs) *Error {
	if !hasPrefixFold(arg, "FROM:") {
		return ErrSyntax
	}
	addr, rest, err := splitPath(trimBlanks(arg[5:]))
	if err != nil {
		return err
	}
	m.addr = addr
	for {
		kw, val, hasVal, more, err := nextParam(&rest, false)
		if err != nil {
			return err
		}
		if !more {
			break
		}
		switch {
		case asciiEqualFold(kw, "SIZE"): // RFC 1870 §3
			n, ok := parseDecimal(val)
			if !hasVal || !ok {
				return ErrSyntax
			}
			m.size = n
		case asciiEqualFold(kw, "BODY"): // RFC 6152 §2, RFC 3030 §3
			switch {
			case asciiEqualFold(val, "7BIT"):
				m.body8, m.binary = false, false
			case asciiEqualFold(val, "8BITMIME"):
				m.body8, m.binary = true, false
			case asciiEqualFold(val, "BINARYMIME"):
				m.body8, m.binary = true, true
			default:
				return ErrSyntax
			}
		case asciiEqualFold(kw, "SMTPUTF8"): // RFC 6531 §3.4
			if hasVal {
				return ErrSyntax
			}
			m.utf8 = true
		case asciiEqualFold(kw, "REQUIRETLS"): // RFC 8689 §3: no value
			if hasVal {
				return ErrSyntax
			}
			m.requireTLS = true
		case asciiEqualFold(kw, "RET"): // RFC 3461 §4.3
			switch {
			case m.ret != 0:
				return ErrSyntax // given twice
			case asciiEqualFold(val, "FULL"):
				m.ret = RetFull
			case asciiEqualFold(val, "HDRS"):
				m.ret = RetHeaders
			default:
				return ErrSyntax
			}
		case asciiEqualFold(kw, "ENVID"): // RFC 3461 §4.4
			if !hasVal || len(val) == 0 || m.envid != nil {
				return ErrSyntax
			}
			if id, ok := decodeXtext(val, false); !ok || len(id) > maxEnvID {
				return ErrSyntax
			}
			m.envid = val
		case asciiEqualFold(kw, "AUTH"):
			// RFC 4954 §5: accepted, not acted upon.
			if !hasVal {
				return ErrSyntax
			}
		default:
			return ErrUnknownParam
		}
	}
	if !m.utf8 && !isASCII(m.addr) {
		return ErrNeedUTF8
	}
	return nil
}

func parseRcptArgs(arg []byte, r *rcptArgs) *Error {
	if !hasPrefixFold(arg, "TO:") {
		return ErrSyntax
	}
	addr, rest, err := splitPath(trimBlanks(arg[3:]))
	if err != nil {
		return err
	}
	if len(addr) == 0 {
		return ErrPathSyntax // the null path is a reverse-path only
	}
	r.addr = addr
	for {
		kw, val, hasVal, more, err := nextParam(&rest, true)
		if err != nil {
			return err
		}
		if !more {
			break
		}
		switch {
		case asciiEqualFold(kw, "NOTIFY"): // RFC 3461 §4.1
			n, ok := parseNotify(val)
			if !hasVal || !ok || r.notify != 0 {
				return ErrSyntax
			}
			r.notify = n
		case asciiEqualFold(kw, "ORCPT"): // RFC 3461 §4.2
			if !hasVal || r.orcpt != nil {
				return ErrSyntax
			}
			if _, ok := parseORcpt(val); !ok {
				return ErrSyntax
			}
			r.orcpt = val
		default:
			return ErrUnknownParam
		}
	}
	return nil
}

// nextParam takes the next "keyword[=value]" from *rest (RFC 5321 §4.1.2
// esmtp-param). Keywords are ASCII letters, digits and '-'; values are
// printable ASCII except '=' — UTF-8 is allowed in values only when
// allow8bit (ORCPT utf-8 addresses, RFC 6533).
func nextParam(rest *[]byte, allow8bit bool) (kw, val []byte, hasVal, more bool, err *Error) {
	r := *rest
	if len(r) > 0 && r[0] != ' ' && r[0] != '\t' {
		return nil, nil, false, false, ErrPathSyntax // junk glued to the path
	}
	r = trimBlanks(r)
	if len(r) == 0 {
		*rest = r
		return nil, nil, false, false, nil
	}
	end := bytes.IndexAny(r, " \t")
	if end < 0 {
		end = len(r)
	}
	tok := r[:end]
	*rest = r[end:]
	if eq := bytes.IndexByte(tok, '='); eq >= 0 {
		kw, val, hasVal = tok[:eq], tok[eq+1:], true
	} else {
		kw = tok
	}
	if len(kw) == 0 {
		return nil, nil, false, false, ErrSyntax
	}
	for _, c := range kw {
		if !isLetDig(c) && c != '-' {
			return nil, nil, false, false, ErrSyntax
		}
	}
	for _, c := range val {
		if c < '!' || c == '=' || c == 0x7f || c >= 0x80 && !allow8bit {
			return nil, nil, false, false, ErrSyntax
		}
	}
	return kw, val, hasVal, true, nil
}

// parseDecimal parses 1 to 18 ASCII digits.
func parseDecimal(b []byte) (int64, bool) {
	if len(b) == 0 || len(b) > 18 {
		return 0, false
	}
	var n int64
	for _, c := range b {
		if !isDigit(c) {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}

func trimBlanks(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t') {
		b = b[1:]
	}
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t') {
		b = b[:len(b)-1]
	}
	return b
}

func trimLineEnd(b []byte) []byte {
	if len(b) > 0 && b[len(b)-1] == '\n' {
		b = b[:len(b)-1]
	}
	return trimCR(b)
}
