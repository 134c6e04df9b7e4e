package inbound

import (
	"crypto/tls"
	"net/netip"
	"time"

	"gannet/engine/logrec"
)

// receivedFoldWidth is the line length the Received header is folded at
// (RFC 5322 §2.1.1: lines SHOULD be no more than 78 characters).
const receivedFoldWidth = 78

// ReceivedHeader builds the trace header the spool prepends to the message
// (RFC 5321 §4.4, RFC 5322 §3.6.7):
//
//	Received: from <helo> ([ip])
//		by <hostname> with ESMTPSA id <id>
//		for <rcpt>; Mon, 02 Jan 2006 15:04:05 -0700
//
// No reverse DNS lookup is made, so the TCP-info is the address literal alone
// (RFC 5321 §4.4 "TCP-info"). The protocol name follows RFC 3848 and
// RFC 6531 §3.7.3 (Envelope.Protocol): ESMTP, with "S" when the session was
// under TLS and "A" when the client authenticated; SMTP after HELO.
// The "for" clause names the recipient only when there is exactly one, so a
// copy never discloses the other recipients. The result ends in CRLF and is
// folded at whitespace before clauses so that no line exceeds 78 characters
// unless one token alone is longer.
func (in *Incoming) ReceivedHeader(id string, now time.Time) []byte {
	helo := ""
	rcpt := ""
	if in.Envelope != nil {
		helo = in.Envelope.Helo
		if len(in.Envelope.Rcpts) == 1 {
			rcpt = in.Envelope.Rcpts[0].Addr
		}
	}
	proto := "ESMTP"
	if in.Envelope != nil {
		proto = in.Envelope.Protocol()
	}

	// Each clause is one unit of folding; a clause never breaks inside.
	clauses := make([]string, 0, 8)
	clauses = append(clauses, "from "+headerSafe(helo, "unknown"))
	clauses = append(clauses, "("+addressLiteral(in.Peer.Addr())+")")
	clauses = append(clauses, "by "+headerSafe(in.Hostname, "localhost"))
	if in.TLS != nil {
		// A comment with the TLS parameters, as Postfix and Exim write it.
		clauses = append(clauses, "("+logrec.TLSVersion(in.TLS.Version)+" "+headerSafe(tls.CipherSuiteName(in.TLS.CipherSuite), "unknown")+")")
	}
	clauses = append(clauses, "with "+proto)
	if id != "" {
		clauses = append(clauses, "id "+headerSafe(id, "unknown"))
	}
	if rcpt != "" {
		clauses = append(clauses, "for <"+headerSafe(rcpt, "")+">;")
	} else {
		clauses[len(clauses)-1] += ";"
	}
	clauses = append(clauses, now.Format(time.RFC1123Z))

	b := make([]byte, 0, 256)
	b = append(b, "Received:"...)
	lineLen := len("Received:")
	for _, cl := range clauses {
		if lineLen+1+len(cl) > receivedFoldWidth && lineLen > len("Received:") {
			b = append(b, "\r\n\t"...)
			lineLen = 1 // the tab
		} else {
			b = append(b, ' ')
			lineLen++
		}
		b = append(b, cl...)
		lineLen += len(cl)
	}
	return append(b, "\r\n"...)
}

// addressLiteral formats ip as an RFC 5321 §4.1.3 address literal:
// "[192.0.2.1]" or "[IPv6:2001:db8::1]".
func addressLiteral(ip netip.Addr) string {
	if !ip.IsValid() {
		return "[unknown]"
	}
	ip = ip.Unmap()
	if ip.Is4() {
		return "[" + ip.String() + "]"
	}
	return "[IPv6:" + ip.WithZone("").String() + "]"
}

// headerSafe keeps s usable inside a header field: no control characters,
// spaces, comment or angle delimiters. Each of those becomes "_", so a hostile
// HELO argument can neither fold the header nor open a comment. UTF-8 is kept
// (RFC 6532 allows it in SMTPUTF8 messages). An empty s gives def.
func headerSafe(s, def string) string {
	if s == "" {
		return def
	}
	clean := true
	for i := 0; i < len(s); i++ {
		if unsafeInHeader(s[i]) {
			clean = false
			break
		}
	}
	if clean {
		return s
	}
	b := []byte(s)
	for i, c := range b {
		if unsafeInHeader(c) {
			b[i] = '_'
		}
	}
	return string(b)
}

func unsafeInHeader(c byte) bool {
	switch c {
	case '(', ')', ';', '\\', '<', '>', 0x7f:
		return true
	}
	return c <= ' '
}
