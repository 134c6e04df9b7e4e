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
	RequireTLS          bool     // RFC 8689
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
		case "REQUIRETLS":
			e.RequireTLS = true
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

// mailOptions are the MAIL FROM parameters a client transaction sends:
// only those the server advertised (ClientTxn.Begin chooses them).
type mailOptions struct {
	size     int64 // SIZE= (RFC 1870); 0: not sent
	body8BIT bool  // BODY=8BITMIME (RFC 6152)
	smtpUTF8 bool  // SMTPUTF8 (RFC 6531)
	// requireTLS: REQUIRETLS (RFC 8689 §3)
	requireTLS bool
	// dsn: the server offers DSN, so RET, ENVID, NOTIFY and ORCPT are
	// passed on (RFC 3461 §6.2.1).
	dsn   bool
	ret   DSNRet
	envid string
}

// appendMail appends "MAIL FROM:<from>[ SIZE=n][ BODY=8BITMIME][ SMTPUTF8][ REQUIRETLS]\r\n".
func appendMail(dst []byte, from Path, opts mailOptions) []byte {
	dst = append(dst, "MAIL FROM:"...)
	dst = from.AppendTo(dst)
	if opts.size > 0 {
		dst = append(dst, " SIZE="...)
		dst = strconv.AppendInt(dst, opts.size, 10)
	}
	if opts.body8BIT {
		dst = append(dst, " BODY=8BITMIME"...)
	}
	if opts.smtpUTF8 {
		dst = append(dst, " SMTPUTF8"...)
	}
	if opts.requireTLS {
		dst = append(dst, " REQUIRETLS"...)
	}
	if opts.dsn && opts.ret != 0 {
		dst = append(dst, " RET="...)
		dst = append(dst, opts.ret.String()...)
	}
	if opts.dsn && opts.envid != "" {
		dst = append(dst, " ENVID="...)
		dst = AppendXtext(dst, opts.envid)
	}
	return append(dst, '\r', '\n')
}

// appendRcpt appends "RCPT TO:<to>[ NOTIFY=…][ ORCPT=…]\r\n"; the DSN
// parameters only when dsn (the server offers DSN, RFC 3461 §6.2.1).
func appendRcpt(dst []byte, to Path, dsn bool) []byte {
	dst = append(dst, "RCPT TO:"...)
	dst = to.AppendTo(dst)
	if dsn && to.Notify != 0 {
		dst = append(dst, " NOTIFY="...)
		dst = append(dst, to.Notify.String()...)
	}
	if dsn && to.ORcpt != "" {
		dst = appendORcpt(dst, to.ORcpt)
	}
	return append(dst, '\r', '\n')
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
