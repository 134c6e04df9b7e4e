package smtpwire

import (
	"encoding/base64"
	"strconv"
	"strings"
)

// Extensions is what a server advertised in its EHLO reply (RFC 5321
// §4.1.1.1).
type Extensions struct {
	Pipelining          bool     // RFC 2920
	StartTLS            bool     // RFC 3207
	EightBitMIME        bool     // RFC 6152
	SMTPUTF8            bool     // RFC 6531
	Chunking            bool     // RFC 3030
	BinaryMIME          bool     // RFC 3030
	EnhancedStatusCodes bool     // RFC 2034
	DSN                 bool     // RFC 3461
	Size                int64    // RFC 1870: the fixed limit, 0 when none was given
	Auth                []string // RFC 4954: mechanisms, upper case
}

// ParseEHLO reads the extensions from a 250 EHLO reply. The first line is the
// server's name and is skipped; keywords are case-insensitive. The old
// "AUTH=PLAIN LOGIN" form is understood too.
func ParseEHLO(r Reply) Extensions {
	var e Extensions
	if len(r.Lines) < 2 || !r.Positive() {
		return e
	}
	for _, l := range r.Lines[1:] {
		kw, rest, _ := strings.Cut(strings.TrimSpace(l), " ")
		if strings.HasPrefix(strings.ToUpper(kw), "AUTH=") {
			kw, rest = "AUTH", kw[5:]+" "+rest
		}
		switch strings.ToUpper(kw) {
		case "PIPELINING":
			e.Pipelining = true
		case "STARTTLS":
			e.StartTLS = true
		case "8BITMIME":
			e.EightBitMIME = true
		case "SMTPUTF8":
			e.SMTPUTF8 = true
		case "CHUNKING":
			e.Chunking = true
		case "BINARYMIME":
			e.BinaryMIME = true
		case "ENHANCEDSTATUSCODES":
			e.EnhancedStatusCodes = true
		case "DSN":
			e.DSN = true
		case "SIZE":
			if n, err := strconv.ParseInt(strings.TrimSpace(rest), 10, 64); err == nil && n > 0 {
				e.Size = n
			}
		case "AUTH":
			for _, m := range strings.Fields(rest) {
				m = strings.ToUpper(m)
				dup := false
				for _, have := range e.Auth {
					dup = dup || have == m
				}
				if !dup {
					e.Auth = append(e.Auth, m)
				}
			}
		}
	}
	return e
}

// MailOptions are the MAIL FROM parameters the client sends.
type MailOptions struct {
	Size     int64 // SIZE= (RFC 1870); 0: not sent
	Body8BIT bool  // BODY=8BITMIME (RFC 6152)
	SMTPUTF8 bool  // SMTPUTF8 (RFC 6531)
}

// AppendMail appends "MAIL FROM:<from>[ SIZE=n][ BODY=8BITMIME][ SMTPUTF8]\r\n".
// Send only the parameters the server advertised.
func AppendMail(dst []byte, from Path, opts MailOptions) []byte {
	dst = append(dst, "MAIL FROM:"...)
	dst = from.AppendTo(dst)
	if opts.Size > 0 {
		dst = append(dst, " SIZE="...)
		dst = strconv.AppendInt(dst, opts.Size, 10)
	}
	if opts.Body8BIT {
		dst = append(dst, " BODY=8BITMIME"...)
	}
	if opts.SMTPUTF8 {
		dst = append(dst, " SMTPUTF8"...)
	}
	return append(dst, '\r', '\n')
}

// AppendRcpt appends "RCPT TO:<to>\r\n".
func AppendRcpt(dst []byte, to Path) []byte {
	dst = append(dst, "RCPT TO:"...)
	dst = to.AppendTo(dst)
	return append(dst, '\r', '\n')
}

// AppendEnvelope appends MAIL FROM, one RCPT TO per recipient and DATA: the
// command group a client sends in one write to a PIPELINING server (RFC 2920
// §3.1). Read the replies with TxnReplies.
func AppendEnvelope(dst []byte, from Path, rcpts []Path, opts MailOptions) []byte {
	dst = AppendMail(dst, from, opts)
	for _, r := range rcpts {
		dst = AppendRcpt(dst, r)
	}
	return append(dst, "DATA\r\n"...)
}

// AppendEnvelopeBDAT appends MAIL FROM, one RCPT TO per recipient and the
// command line "BDAT <size> LAST" of a message sent as one chunk (RFC 3030
// §2, §4.2 with PIPELINING): the client writes the size bytes of the message
// right after it, as they are, and reads the MAIL, RCPT and BDAT replies.
func AppendEnvelopeBDAT(dst []byte, from Path, rcpts []Path, opts MailOptions, size int) []byte {
	dst = AppendMail(dst, from, opts)
	for _, r := range rcpts {
		dst = AppendRcpt(dst, r)
	}
	dst = append(dst, "BDAT "...)
	dst = strconv.AppendInt(dst, int64(size), 10)
	return append(dst, " LAST\r\n"...)
}

// AppendBDAT appends one BDAT chunk (RFC 3030 §2): "BDAT <n>[ LAST]\r\n"
// followed by the chunk's bytes as they are (no dot-stuffing).
func AppendBDAT(dst, chunk []byte, last bool) []byte {
	dst = append(dst, "BDAT "...)
	dst = strconv.AppendInt(dst, int64(len(chunk)), 10)
	if last {
		dst = append(dst, " LAST"...)
	}
	dst = append(dst, '\r', '\n')
	return append(dst, chunk...)
}

// AppendAuthPlain appends "AUTH PLAIN <base64(\0user\0pass)>\r\n" (RFC 4616,
// RFC 4954 §4 initial response).
func AppendAuthPlain(dst []byte, user, pass string) []byte {
	cred := make([]byte, 0, len(user)+len(pass)+2)
	cred = append(cred, 0)
	cred = append(cred, user...)
	cred = append(cred, 0)
	cred = append(cred, pass...)
	dst = append(dst, "AUTH PLAIN "...)
	dst = base64.StdEncoding.AppendEncode(dst, cred)
	return append(dst, '\r', '\n')
}

// TxnResult holds the replies of one transaction, matched to its commands.
type TxnResult struct {
	Mail  Reply
	Rcpts []Reply // one per recipient, in the order they were sent
	Data  Reply   // the reply to DATA: 354 to go on
	Final Reply   // the reply after the body; set by the caller
}

// AcceptedRcpts returns how many recipients got a 2xx.
func (t *TxnResult) AcceptedRcpts() int {
	n := 0
	for _, r := range t.Rcpts {
		if r.Positive() {
			n++
		}
	}
	return n
}

// SendBody reports whether the body should follow: DATA got 354 and at least
// one recipient was accepted. When DATA got 354 but no recipient was
// accepted, the client sends only ".\r\n" (RFC 2920 §3.1) — see DotOnly.
func (t *TxnResult) SendBody() bool { return t.Data.Code == 354 && t.AcceptedRcpts() > 0 }

// DotOnly reports the odd case of a 354 without an accepted recipient.
func (t *TxnResult) DotOnly() bool { return t.Data.Code == 354 && t.AcceptedRcpts() == 0 }

// TxnReplies reads the replies to a pipelined MAIL, RCPT… and DATA group in
// order (RFC 2920 §3.2: the server answers in the order the commands came).
type TxnReplies struct {
	Result TxnResult
	nRcpts int
	got    int // replies taken so far
}

// NewTxnReplies expects the replies to MAIL, nRcpts RCPTs and DATA.
func NewTxnReplies(nRcpts int) *TxnReplies {
	return &TxnReplies{nRcpts: nRcpts, Result: TxnResult{Rcpts: make([]Reply, 0, nRcpts)}}
}

// Feed parses the replies in buf. It returns the bytes used and done once the
// reply to DATA arrived; ErrIncomplete is never returned (n says how far it
// got), other ParseReply errors are.
func (t *TxnReplies) Feed(buf []byte) (n int, done bool, err error) {
	for !t.Done() {
		r, used, err := ParseReply(buf[n:])
		if err == ErrIncomplete {
			return n, false, nil
		}
		if err != nil {
			return n, false, err
		}
		n += used
		switch {
		case t.got == 0:
			t.Result.Mail = r
		case t.got <= t.nRcpts:
			t.Result.Rcpts = append(t.Result.Rcpts, r)
		default:
			t.Result.Data = r
		}
		t.got++
	}
	return n, true, nil
}

// Done reports that every expected reply was read.
func (t *TxnReplies) Done() bool { return t.got == t.nRcpts+2 }
