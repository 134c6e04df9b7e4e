package smtpwire

import (
	"bytes"
	"errors"
	"strconv"
	"strings"
)

// Reply is one SMTP reply (RFC 5321 §4.2): a three-digit code, an enhanced
// status code (RFC 3463; "" when none) and one or more lines of text.
//
// The Reply values declared in this package are shared: treat them as
// read-only (copy the struct and give it new Lines to change the text).
type Reply struct {
	Code     int
	Enhanced string   // "2.0.0"; "" when the reply has none
	Lines    []string // text without code; an empty slice is one empty line
}

// AppendTo appends the wire form of r to dst: every line but the last uses
// the "250-" continuation form, the last "250 " (RFC 5321 §4.2.1), and the
// enhanced code is repeated on every line (RFC 2034 §4). CR and LF inside the
// text are replaced by spaces so that a reply can never inject a second one.
func (r Reply) AppendTo(dst []byte) []byte {
	if len(r.Lines) == 0 {
		return r.appendLine(dst, "", true)
	}
	for i, l := range r.Lines {
		dst = r.appendLine(dst, l, i == len(r.Lines)-1)
	}
	return dst
}

func (r Reply) appendLine(dst []byte, text string, last bool) []byte {
	dst = appendCode(dst, r.Code)
	if last && r.Enhanced == "" && text == "" {
		return append(dst, '\r', '\n')
	}
	if last {
		dst = append(dst, ' ')
	} else {
		dst = append(dst, '-')
	}
	if r.Enhanced != "" {
		dst = append(dst, r.Enhanced...)
		if text != "" {
			dst = append(dst, ' ')
		}
	}
	dst = appendReplyText(dst, text)
	return append(dst, '\r', '\n')
}

// appendCode writes code as exactly three digits.
func appendCode(dst []byte, code int) []byte {
	if code < 0 || code > 999 {
		code = 0
	}
	return append(dst, byte('0'+code/100), byte('0'+code/10%10), byte('0'+code%10))
}

// appendReplyText copies text, turning control characters other than TAB
// into spaces.
func appendReplyText(dst []byte, text string) []byte {
	clean := true
	for i := 0; i < len(text); i++ {
		if c := text[i]; c < ' ' && c != '\t' || c == 0x7f {
			clean = false
			break
		}
	}
	if clean {
		return append(dst, text...)
	}
	for i := 0; i < len(text); i++ {
		c := text[i]
		if c < ' ' && c != '\t' || c == 0x7f {
			c = ' '
		}
		dst = append(dst, c)
	}
	return dst
}

// String returns r on one line, for logs: "250 2.0.0 OK". Several lines are
// joined with "; ".
func (r Reply) String() string {
	// One allocation: the delivery loop calls it for every outcome.
	n := 4 + len(r.Enhanced) // a code up to 3 digits, a space
	for _, l := range r.Lines {
		n += 2 + len(l)
	}
	var b strings.Builder
	b.Grow(n)
	var num [20]byte
	b.Write(strconv.AppendInt(num[:0], int64(r.Code), 10))
	if r.Enhanced != "" {
		b.WriteByte(' ')
		b.WriteString(r.Enhanced)
	}
	for i, l := range r.Lines {
		if i == 0 {
			b.WriteByte(' ')
		} else {
			b.WriteString("; ")
		}
		b.WriteString(l)
	}
	return b.String()
}

// Text returns the reply text, lines joined with a space.
func (r Reply) Text() string { return strings.Join(r.Lines, " ") }

// Positive reports a 2xx reply (RFC 5321 §4.2.1).
func (r Reply) Positive() bool { return r.Code/100 == 2 }

// Intermediate reports a 3xx reply (354, 334).
func (r Reply) Intermediate() bool { return r.Code/100 == 3 }

// Transient reports a 4xx reply: try again later.
func (r Reply) Transient() bool { return r.Code/100 == 4 }

// Permanent reports a 5xx reply: do not retry as is.
func (r Reply) Permanent() bool { return r.Code/100 == 5 }

// Err wraps r and the real cause (for the log) into an *Error.
func (r Reply) Err(cause error) *Error { return &Error{Reply: r, Cause: cause} }

// Error is Gannet's one error model for anything that ends in an SMTP
// reply, received or sent, inbound or outbound: the Reply that is sent to the
// peer or recorded for a recipient (code, enhanced code, generic text) and
// the cause that goes to the log. The resolver's failures, outbound's session
// failures and inbound refusals are all *Error values; ReplyFor turns any
// error into the reply to use.
type Error struct {
	Reply Reply
	Cause error
}

func (e *Error) Error() string {
	if e.Cause == nil {
		return e.Reply.String()
	}
	return e.Reply.String() + ": " + e.Cause.Error()
}

func (e *Error) Unwrap() error { return e.Cause }

// Permanent reports a 5xx reply: the message should bounce, not be retried.
func (e *Error) Permanent() bool { return e.Reply.Permanent() }

// Temporary reports that a later attempt may succeed: anything but a 5xx
// ("temporary unless known permanent").
func (e *Error) Temporary() bool { return !e.Reply.Permanent() }

// ReplyFor is the one way an error becomes a reply: the reply of the first
// *Error in err's chain, else fallback. Callers pass a transient fallback
// (4xx), so an error nobody classified is retried, never bounced: temporary
// unless known permanent.
func ReplyFor(err error, fallback Reply) Reply {
	var e *Error
	if errors.As(err, &e) {
		return e.Reply
	}
	return fallback
}

// Errors of ParseReply.
var (
	// ErrIncomplete means buf does not yet hold a whole reply: read more.
	ErrIncomplete = errors.New("smtpwire: incomplete reply")
	// ErrMalformedReply means the bytes are not an SMTP reply (no three-digit
	// code, a bad separator, or lines with different codes).
	ErrMalformedReply = errors.New("smtpwire: malformed reply")
	// ErrReplyTooLong means a reply line exceeded MaxReplyLine bytes, or the
	// whole reply exceeded MaxReplySize, without ending.
	ErrReplyTooLong = errors.New("smtpwire: reply too long")
)

// Limits of ParseReply. RFC 5321 §4.5.3.1.5 caps a reply line at 512 octets;
// real servers send longer ones, so the limits are generous but finite, so that
// a client never buffers without bound.
const (
	MaxReplyLine = 8192
	MaxReplySize = 65536
)

// ParseReply parses one complete (possibly multi-line) reply from the start of
// buf and returns it with the number of bytes it used. It returns
// ErrIncomplete when buf does not yet hold the whole reply. Lines may end in
// CRLF or a bare LF. When the first line's text starts with an enhanced status
// code whose class matches the reply code (RFC 3463, RFC 2034), it is moved to
// Enhanced and removed from every line that repeats it; replies without one
// are accepted as they are.
func ParseReply(buf []byte) (r Reply, n int, err error) {
	code, nlines, n, err := replyEnd(buf)
	if err != nil {
		return Reply{}, 0, err
	}
	return parseReplyText(string(buf[:n]), code, nlines), n, nil
}

// replyEnd is ParseReply's first pass: it finds the end of the reply at the
// start of buf and validates it, without allocating, and returns its code,
// its number of lines and its length.
func replyEnd(buf []byte) (code, nlines, n int, err error) {
	code = -1
	i := 0
	for {
		if i > MaxReplySize {
			return 0, 0, 0, ErrReplyTooLong
		}
		j := bytes.IndexByte(buf[i:], '\n')
		if j < 0 {
			if len(buf)-i > MaxReplyLine {
				return 0, 0, 0, ErrReplyTooLong
			}
			return 0, 0, 0, ErrIncomplete
		}
		line := trimCR(buf[i : i+j])
		if len(line) < 3 || !isDigit(line[0]) || !isDigit(line[1]) || !isDigit(line[2]) {
			return 0, 0, 0, ErrMalformedReply
		}
		c := int(line[0]-'0')*100 + int(line[1]-'0')*10 + int(line[2]-'0')
		if code < 0 {
			code = c
		} else if c != code {
			return 0, 0, 0, ErrMalformedReply
		}
		nlines++
		i += j + 1
		if len(line) == 3 || line[3] == ' ' {
			return code, nlines, i, nil
		}
		if line[3] != '-' {
			return 0, 0, 0, ErrMalformedReply
		}
	}
}

// parseReplyText is ParseReply's second pass over s, a whole reply that
// replyEnd validated: the lines are substrings of s.
func parseReplyText(s string, code, nlines int) (r Reply) {
	r.Code = code
	r.Lines = make([]string, 0, nlines)
	for len(s) > 0 {
		j := strings.IndexByte(s, '\n')
		line := s[:j]
		s = s[j+1:]
		if len(line) > 0 && line[len(line)-1] == '\r' {
			line = line[:len(line)-1]
		}
		text := ""
		if len(line) > 4 {
			text = line[4:]
		}
		if len(r.Lines) == 0 {
			r.Enhanced = enhancedPrefix(text, code)
		}
		if r.Enhanced != "" && strings.HasPrefix(text, r.Enhanced) {
			if rest := text[len(r.Enhanced):]; rest == "" || rest[0] == ' ' {
				text = strings.TrimPrefix(rest, " ")
			}
		}
		r.Lines = append(r.Lines, text)
	}
	return r
}

// replyMemo keeps the last few replies a client parsed, so that a reply
// that comes again byte for byte — "250 2.1.0 Ok" to every MAIL of a
// session — is not allocated again. The Reply is shared: its Lines are
// never changed in place (a Reply is a value), and an append to them
// copies, as they are full.
type replyMemo struct {
	raw  [4]string // a reply's wire form, as parseReplyText got it
	r    [4]Reply
	used [4]uint64 // when each slot was last used: a new reply takes the oldest
	now  uint64
}

// parse is ParseReply, answering from the memo when it can.
func (m *replyMemo) parse(buf []byte) (r Reply, n int, err error) {
	code, nlines, n, err := replyEnd(buf)
	if err != nil {
		return Reply{}, 0, err
	}
	m.now++
	oldest := 0
	for i := range m.raw {
		if m.raw[i] == string(buf[:n]) { // compared without a copy
			m.used[i] = m.now
			return m.r[i], n, nil
		}
		if m.used[i] < m.used[oldest] {
			oldest = i
		}
	}
	raw := string(buf[:n])
	r = parseReplyText(raw, code, nlines)
	m.raw[oldest], m.r[oldest], m.used[oldest] = raw, r, m.now
	return r, n, nil
}

// enhancedPrefix returns the enhanced status code at the start of text
// ("class.subject.detail", RFC 3463 §2), or "" when there is none or its class
// does not match the reply code.
func enhancedPrefix(text string, code int) string {
	if len(text) < 5 || int(text[0]-'0') != code/100 || text[0] < '2' || text[0] > '5' || text[1] != '.' {
		return ""
	}
	i := 2
	for part := 0; part < 2; part++ {
		start := i
		for i < len(text) && isDigit(text[i]) && i-start < 3 {
			i++
		}
		if i == start {
			return ""
		}
		if part == 0 {
			if i >= len(text) || text[i] != '.' {
				return ""
			}
			i++
		}
	}
	if i < len(text) && text[i] != ' ' {
		return ""
	}
	return text[:i]
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func trimCR(b []byte) []byte {
	if len(b) > 0 && b[len(b)-1] == '\r' {
		return b[:len(b)-1]
	}
	return b
}
