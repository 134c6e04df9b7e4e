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
// §3.1).
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
