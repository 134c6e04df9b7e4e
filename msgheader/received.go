package msgheader

import (
	"net/netip"
	"time"
)

// receivedFoldWidth is the line length the Received field is folded at
// (RFC 5322 §2.1.1: lines SHOULD be no more than 78 characters).
const receivedFoldWidth = 78

// Trace is what one Received field says about a hop (RFC 5321 §4.4).
type Trace struct {
	Helo string     // the client's HELO/EHLO argument; "" when none ("unknown")
	Peer netip.Addr // the client's address; invalid when unknown
	By   string     // this host's name
	TLS  string     // a comment on the TLS session ("TLSv1.3 TLS_AES_128_GCM_SHA256"); "" without TLS
	With string     // the protocol (RFC 3848, RFC 6531 §3.7.3): ESMTP, ESMTPSA, UTF8SMTPS, HTTP…
	ID   string     // the queue id
	For  string     // the recipient, only when there is exactly one (so a copy never discloses the others)
	Time time.Time
}

// AppendReceived appends the Received field of t, ending in CRLF:
//
//	Received: from <helo> ([ip])
//		by <hostname> (<tls>) with ESMTPSA id <id>
//		for <rcpt>; Mon, 02 Jan 2006 15:04:05 -0700
//
// No reverse DNS lookup is made, so the TCP-info is the address literal
// alone (RFC 5321 §4.1.3: "[192.0.2.1]", "[IPv6:2001:db8::1]"). Every
// client-supplied word is made safe (headerSafe) so a hostile HELO can
// neither fold the field nor open a comment. The field is folded at white
// space between clauses so that no line exceeds 78 characters unless one
// clause alone is longer.
func (t Trace) AppendReceived(dst []byte) []byte {
	// The clauses are appended in place, not concatenated first: the field
	// is made once per message.
	var lit, date [64]byte
	var clauses [9]clause
	n := 0
	add := func(c clause) { clauses[n] = c; n++ }
	add(clause{pre: "from ", word: headerSafe(t.Helo, "unknown")})
	add(clause{pre: "(", raw: appendAddressLiteral(lit[:0], t.Peer), post: ")"})
	add(clause{pre: "by ", word: headerSafe(t.By, "localhost")})
	if t.TLS != "" {
		add(clause{pre: "(", word: commentSafe(t.TLS), post: ")"})
	}
	add(clause{pre: "with ", word: headerSafe(t.With, "ESMTP")})
	if t.ID != "" {
		add(clause{pre: "id ", word: headerSafe(t.ID, "unknown")})
	}
	if t.For != "" {
		add(clause{pre: "for <", word: headerSafe(t.For, ""), post: ">;"})
	} else {
		clauses[n-1].semicolon = true
	}
	add(clause{raw: t.Time.AppendFormat(date[:0], time.RFC1123Z)})

	const name = "Received:"
	dst = append(dst, name...)
	lineLen := len(name)
	for _, cl := range clauses[:n] {
		l := cl.len()
		if lineLen+1+l > receivedFoldWidth && lineLen > len(name) {
			dst = append(dst, "\r\n\t"...)
			lineLen = 1 // the tab
		} else {
			dst = append(dst, ' ')
			lineLen++
		}
		dst = cl.appendTo(dst)
		lineLen += l
	}
	return append(dst, "\r\n"...)
}

// clause is one clause of a Received field: pre, word or raw, post, and a
// semicolon when it is the last before the date.
type clause struct {
	pre, word, post string
	raw             []byte
	semicolon       bool
}

func (c *clause) len() int {
	n := len(c.pre) + len(c.word) + len(c.raw) + len(c.post)
	if c.semicolon {
		n++
	}
	return n
}

func (c *clause) appendTo(dst []byte) []byte {
	dst = append(append(append(append(dst, c.pre...), c.word...), c.raw...), c.post...)
	if c.semicolon {
		dst = append(dst, ';')
	}
	return dst
}

// appendAddressLiteral appends ip as an RFC 5321 §4.1.3 address literal to
// dst: "[192.0.2.1]" or "[IPv6:2001:db8::1]"; "[unknown]" for an invalid ip.
func appendAddressLiteral(dst []byte, ip netip.Addr) []byte {
	if !ip.IsValid() {
		return append(dst, "[unknown]"...)
	}
	ip = ip.Unmap()
	if ip.Is4() {
		return append(ip.AppendTo(append(dst, '[')), ']')
	}
	return append(ip.WithZone("").AppendTo(append(dst, "[IPv6:"...)), ']')
}

// headerSafe keeps s usable as one word of a header field: no control
// characters, spaces, comment or angle delimiters. Each of those becomes
// "_". UTF-8 is kept (RFC 6532 allows it in SMTPUTF8 messages). An empty s
// gives def.
func headerSafe(s, def string) string {
	if s == "" {
		return def
	}
	return replaceUnsafe(s, func(c byte) bool {
		switch c {
		case '(', ')', ';', '\\', '<', '>', 0x7f:
			return true
		}
		return c <= ' '
	})
}

// commentSafe keeps s usable inside a comment: spaces stay, control
// characters and comment delimiters become "_".
func commentSafe(s string) string {
	return replaceUnsafe(s, func(c byte) bool {
		return c == '(' || c == ')' || c == '\\' || c == 0x7f || c < ' '
	})
}

func replaceUnsafe(s string, unsafe func(byte) bool) string {
	i := 0
	for i < len(s) && !unsafe(s[i]) {
		i++
	}
	if i == len(s) {
		return s
	}
	b := []byte(s)
	for ; i < len(b); i++ {
		if unsafe(b[i]) {
			b[i] = '_'
		}
	}
	return string(b)
}
