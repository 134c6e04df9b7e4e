package mimebuild

import (
	"bytes"
	"encoding/base64"
	"mime/quotedprintable"
)

// Content-Transfer-Encoding values (RFC 2045 §6.1).
const (
	cte7bit            = "7bit"
	cteQuotedPrintable = "quoted-printable"
	cteBase64          = "base64"
)

// maxPlainLine is the longest line sent without encoding: RFC 5322 §2.1.1
// recommends 78 characters, and relays are known to rewrap longer ones.
const maxPlainLine = 78

// normalizeNewlines returns s with every line ending (CRLF, bare LF, bare CR)
// turned into CRLF, the canonical form of text (RFC 2046 §4.1.1).
func normalizeNewlines(s string) []byte {
	out := make([]byte, 0, len(s)+len(s)/32)
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '\r':
			out = append(out, '\r', '\n')
			if i+1 < len(s) && s[i+1] == '\n' {
				i++
			}
		case '\n':
			out = append(out, '\r', '\n')
		default:
			out = append(out, c)
		}
	}
	return out
}

// sevenBit reports whether CRLF text may go as 7bit (RFC 2045 §2.7): only
// US-ASCII without NUL or other controls except tab, lines of at most
// maxPlainLine characters.
func sevenBit(text []byte) bool {
	line := 0
	for i := 0; i < len(text); i++ {
		c := text[i]
		switch {
		case c == '\r' && i+1 < len(text) && text[i+1] == '\n':
			i++
			line = 0
			continue
		case c >= 128, c == 0, c == '\r', c == '\n', c < 32 && c != '\t', c == 127:
			return false
		}
		line++
		if line > maxPlainLine {
			return false
		}
	}
	return true
}

// encodeText returns the transfer encoding and encoded bytes of a text part
// given as CRLF text: 7bit when possible, quoted-printable (RFC 2045 §6.7,
// lines ≤ 76, trailing white space encoded) otherwise.
func encodeText(text []byte) (cte string, body []byte) {
	if sevenBit(text) {
		return cte7bit, text
	}
	var buf bytes.Buffer
	buf.Grow(len(text) + len(text)/8)
	w := quotedprintable.NewWriter(&buf)
	w.Write(text) // a bytes.Buffer does not fail
	w.Close()
	return cteQuotedPrintable, buf.Bytes()
}

// encodeBase64 returns data in base64 with CRLF after every 76 characters
// (RFC 2045 §6.8), without a final CRLF.
func encodeBase64(data []byte) []byte {
	const lineLen = 76
	n := base64.StdEncoding.EncodedLen(len(data))
	out := make([]byte, 0, n+2*(n/lineLen+1))
	// 57 input bytes make one 76-character line.
	for len(data) > 0 {
		chunk := data[:min(57, len(data))]
		data = data[len(chunk):]
		out = base64.StdEncoding.AppendEncode(out, chunk)
		if len(data) > 0 {
			out = append(out, '\r', '\n')
		}
	}
	return out
}
