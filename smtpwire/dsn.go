package smtpwire

import (
	"bytes"
	"strings"
)

// DSNNotify is the NOTIFY parameter of a RCPT command (RFC 3461 §4.1): when
// the sender wants a delivery status notification for that recipient. Zero
// means the parameter was absent (the relay's default: failures only).
type DSNNotify uint8

const (
	// NotifyNever: no DSN at all, not even for a failure.
	NotifyNever DSNNotify = 1 << iota
	// NotifySuccess: a DSN on delivery (or relay to a hop without DSN).
	NotifySuccess
	// NotifyFailure: a DSN on failure.
	NotifyFailure
	// NotifyDelay: a DSN when delivery is delayed.
	NotifyDelay
)

// String renders n as the NOTIFY value ("NEVER", "SUCCESS,FAILURE", …); ""
// for zero.
func (n DSNNotify) String() string {
	if n&NotifyNever != 0 {
		return "NEVER"
	}
	var parts []string
	if n&NotifySuccess != 0 {
		parts = append(parts, "SUCCESS")
	}
	if n&NotifyFailure != 0 {
		parts = append(parts, "FAILURE")
	}
	if n&NotifyDelay != 0 {
		parts = append(parts, "DELAY")
	}
	return strings.Join(parts, ",")
}

// DSNRet is the RET parameter of MAIL (RFC 3461 §4.3): what a failure DSN
// returns of the message. Zero means the parameter was absent.
type DSNRet uint8

const (
	// RetFull: the whole message.
	RetFull DSNRet = 1 + iota
	// RetHeaders: the header section only.
	RetHeaders
)

// String renders r as the RET value: "FULL", "HDRS" or "".
func (r DSNRet) String() string {
	switch r {
	case RetFull:
		return "FULL"
	case RetHeaders:
		return "HDRS"
	}
	return ""
}

// Limits of RFC 3461 §4.2 (ORCPT: 500 characters) and §4.4 (ENVID: 100).
const (
	maxORcpt = 500
	maxEnvID = 100
)

// parseNotify parses a NOTIFY value (RFC 3461 §4.1): NEVER alone, or a
// comma-separated list of SUCCESS, FAILURE and DELAY, each at most once.
func parseNotify(v []byte) (DSNNotify, bool) {
	if asciiEqualFold(v, "NEVER") {
		return NotifyNever, true
	}
	var n DSNNotify
	for len(v) > 0 {
		item := v
		if i := bytes.IndexByte(v, ','); i >= 0 {
			item, v = v[:i], v[i+1:]
			if len(v) == 0 {
				return 0, false // a trailing comma
			}
		} else {
			v = nil
		}
		var f DSNNotify
		switch {
		case asciiEqualFold(item, "SUCCESS"):
			f = NotifySuccess
		case asciiEqualFold(item, "FAILURE"):
			f = NotifyFailure
		case asciiEqualFold(item, "DELAY"):
			f = NotifyDelay
		default:
			return 0, false
		}
		if n&f != 0 {
			return 0, false
		}
		n |= f
	}
	return n, n != 0
}

// decodeXtext decodes xtext (RFC 3461 §4): "+" and two upper-case hex
// digits stand for one octet; every other character is itself. It refuses
// a "+" without two hex digits after it and an octet outside "!".."~"
// other than the encoded ones (allow8bit lets UTF-8 through, RFC 6533).
func decodeXtext(v []byte, allow8bit bool) (string, bool) {
	if bytes.IndexByte(v, '+') < 0 {
		for _, c := range v {
			if c < '!' || c == '=' || c == 0x7f || c >= 0x80 && !allow8bit {
				return "", false
			}
		}
		return string(v), true
	}
	out := make([]byte, 0, len(v))
	for i := 0; i < len(v); i++ {
		c := v[i]
		switch {
		case c == '+':
			if i+2 >= len(v) {
				return "", false
			}
			hi, ok1 := upperHex(v[i+1])
			lo, ok2 := upperHex(v[i+2])
			if !ok1 || !ok2 {
				return "", false
			}
			out = append(out, hi<<4|lo)
			i += 2
		case c < '!' || c == '=' || c == 0x7f || c >= 0x80 && !allow8bit:
			return "", false
		default:
			out = append(out, c)
		}
	}
	return string(out), true
}

func upperHex(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// AppendXtext appends s encoded as xtext (RFC 3461 §4): "+", "=", and
// octets outside "!".."~" become "+HH".
func AppendXtext(dst []byte, s string) []byte {
	const hex = "0123456789ABCDEF"
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '!' || c > '~' || c == '+' || c == '=' {
			dst = append(dst, '+', hex[c>>4], hex[c&15])
		} else {
			dst = append(dst, c)
		}
	}
	return dst
}

// parseORcpt parses an ORCPT value (RFC 3461 §4.2): "addr-type;xtext".
// It returns "addr-type;address" with the address decoded; a "utf-8"
// address (RFC 6533 §3, which may hold UTF-8) is kept as sent.
func parseORcpt(v []byte) (string, bool) {
	semi := bytes.IndexByte(v, ';')
	if semi <= 0 || semi == len(v)-1 || len(v) > maxORcpt {
		return "", false
	}
	typ := v[:semi]
	for _, c := range typ {
		if !isLetDig(c) && c != '-' {
			return "", false
		}
	}
	raw := v[semi+1:]
	if asciiEqualFold(typ, "utf-8") {
		// RFC 6533 §3: utf-8-addr-xtext escapes with "\x{…}", not "+HH";
		// the address is kept as sent, and passed on so.
		for _, c := range raw {
			if c < '!' || c == '=' || c == 0x7f {
				return "", false
			}
		}
		return string(typ) + ";" + string(raw), true
	}
	addr, ok := decodeXtext(raw, false)
	if !ok || addr == "" {
		return "", false
	}
	return string(typ) + ";" + addr, true
}

// appendORcpt appends " ORCPT=type;xtext" for a decoded "type;address".
func appendORcpt(dst []byte, orcpt string) []byte {
	typ, addr, ok := strings.Cut(orcpt, ";")
	if !ok {
		return dst
	}
	dst = append(dst, " ORCPT="...)
	dst = append(dst, typ...)
	dst = append(dst, ';')
	if strings.EqualFold(typ, "utf-8") {
		// RFC 6533: sent as received (it went through an SMTPUTF8 hop).
		return append(dst, addr...)
	}
	return AppendXtext(dst, addr)
}
