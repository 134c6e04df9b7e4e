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
// lines ≤ 76, trailing white space encoded) otherwise. An encoding longer
// than limit bytes is ErrTooLarge, and quoted-printable encoding stops as
// soon as it passes limit (it may triple the text).
func encodeText(text []byte, limit int) (cte string, body []byte, err error) {
	if sevenBit(text) {
		if len(text) > limit {
			return "", nil, ErrTooLarge
		}
		return cte7bit, text, nil
	}
	buf := &limitedBuffer{limit: limit}
	buf.b.Grow(min(len(text)+len(text)/8, limit))
	w := quotedprintable.NewWriter(buf)
	if _, err := w.Write(text); err != nil {
		return "", nil, err
	}
	if err := w.Close(); err != nil {
		return "", nil, err
	}
	return cteQuotedPrintable, buf.b.Bytes(), nil
}

// limitedBuffer is a bytes.Buffer that refuses to grow past limit bytes
// (ErrTooLarge).
type limitedBuffer struct {
	b     bytes.Buffer
	limit int
}

func (l *limitedBuffer) Write(p []byte) (int, error) {
	if len(p) > l.limit-l.b.Len() {
		return 0, ErrTooLarge
	}
	return l.b.Write(p)
}

// base64LineLen is the length of a base64 line in a message (RFC 2045 §6.8).
const base64LineLen = 76

// base64Len is the length of encodeBase64's output for n bytes of data.
func base64Len(n int) int {
	e := base64.StdEncoding.EncodedLen(n)
	if e == 0 {
		return 0
	}
	return e + 2*((e-1)/base64LineLen)
}

// encodeBase64 returns data in base64 with CRLF after every 76 characters
// (RFC 2045 §6.8), without a final CRLF.
func encodeBase64(data []byte) []byte {
	out := make([]byte, 0, base64Len(len(data)))
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
