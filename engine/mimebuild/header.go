package mimebuild

import (
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// Line limits of RFC 5322 §2.1.1: lines SHOULD be at most 78 characters and
// MUST be at most 998, both without the CRLF.
const (
	foldAt       = 78
	maxLineBytes = 998
)

// Errors about header fields.
var (
	// ErrBadHeaderName: a field name outside RFC 5322 §2.2 ftext (printable
	// US-ASCII except colon), or empty.
	ErrBadHeaderName = errors.New("invalid header field name")
	// ErrBadHeaderValue: a control character (other than tab) in a value.
	ErrBadHeaderValue = errors.New("invalid header field value")
	// ErrReservedHeader: a custom header names a field the builder writes
	// itself (From, To, Cc, Subject, Date, Message-ID, MIME-Version,
	// Content-*, …) or Bcc, which never appears in a built message.
	ErrReservedHeader = errors.New("header field is set by the builder")
	// ErrLineTooLong: a header could not be folded below 998 characters.
	ErrLineTooLong = errors.New("header line longer than 998 characters")
)

// reserved lists the fields a custom header may not set (lower case).
var reserved = map[string]bool{
	"from": true, "to": true, "cc": true, "bcc": true, "reply-to": true,
	"subject": true, "date": true, "message-id": true, "mime-version": true,
	"content-type": true, "content-transfer-encoding": true,
	"content-disposition": true, "content-id": true, "sender": true,
}

// IsReservedHeader reports whether name is a field the builder writes itself
// (case-insensitive); such names are refused in Message.Headers.
func IsReservedHeader(name string) bool { return reserved[strings.ToLower(name)] }

// CheckHeaderName reports whether name is a valid field name (RFC 5322 §2.2:
// 1*ftext, ftext = %d33-57 / %d59-126).
func CheckHeaderName(name string) error {
	if HasCRLF(name) {
		return fmt.Errorf("%w: %q", ErrHeaderInjection, name)
	}
	if name == "" || len(name) > 200 {
		return fmt.Errorf("%w: %q", ErrBadHeaderName, name)
	}
	for i := 0; i < len(name); i++ {
		if c := name[i]; c < 33 || c > 126 || c == ':' {
			return fmt.Errorf("%w: %q", ErrBadHeaderName, name)
		}
	}
	return nil
}

// checkValue refuses CR, LF and other control characters in a value; tab is
// allowed (it is WSP).
func checkValue(v string) error {
	if HasCRLF(v) {
		return fmt.Errorf("%w: %q", ErrHeaderInjection, v)
	}
	for i := 0; i < len(v); i++ {
		if c := v[i]; c < 32 && c != '\t' || c == 127 {
			return fmt.Errorf("%w: control character 0x%02x", ErrBadHeaderValue, c)
		}
	}
	if !utf8.ValidString(v) {
		return fmt.Errorf("%w: not UTF-8", ErrBadHeaderValue)
	}
	return nil
}

// appendField appends "Name: tok tok…\r\n", joining the tokens with single
// spaces and folding (RFC 5322 §2.2.3: CRLF inserted before a space) where a
// line would pass 78 characters. Unfolding restores the exact value. A line
// that stays over 998 characters is ErrLineTooLong.
func appendField(dst []byte, name string, tokens []string) ([]byte, error) {
	dst = append(dst, name...)
	dst = append(dst, ':')
	col := len(name) + 1
	lineStart := len(dst) - col
	for i, tok := range tokens {
		// Fold only before a non-empty token, so no line is all whitespace.
		if i > 0 && tok != "" && col+1+len(tok) > foldAt {
			if len(dst)-lineStart > maxLineBytes {
				return dst, fmt.Errorf("%w: %s", ErrLineTooLong, name)
			}
			dst = append(dst, '\r', '\n')
			lineStart = len(dst)
			col = 0
		}
		dst = append(dst, ' ')
		dst = append(dst, tok...)
		col += 1 + len(tok)
	}
	if len(dst)-lineStart > maxLineBytes {
		return dst, fmt.Errorf("%w: %s", ErrLineTooLong, name)
	}
	return append(dst, '\r', '\n'), nil
}

// plainText reports whether an unstructured value can be written as is and
// read back identically: printable ASCII words separated by single spaces,
// no leading or trailing space, and nothing a reader would take for an
// encoded word (RFC 2047 §6.1).
func plainText(s string) bool {
	if s == "" {
		return true
	}
	if s[0] == ' ' || s[len(s)-1] == ' ' || strings.Contains(s, "  ") || strings.Contains(s, "=?") {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 32 || c > 126 {
			return false
		}
	}
	return true
}

// unstructuredTokens returns the tokens of an unstructured value (Subject,
// custom fields): the words themselves when plainText, else encoded words.
func unstructuredTokens(name, s string) []string {
	if plainText(s) {
		return strings.Split(s, " ")
	}
	return encodeWords(s, firstWordMax(name))
}

// firstWordMax is the longest encoded word that fits the first line after
// "Name: " within 76 characters (RFC 2047 §2), but never below 40.
func firstWordMax(name string) int { return max(76-len(name)-2, 40) }

const (
	maxEncodedWord = 75 // RFC 2047 §2
	qPrefix        = "=?utf-8?q?"
	bPrefix        = "=?utf-8?b?"
)

// qSafe reports whether c may stand for itself inside a Q-encoded word in
// every context, including a phrase (RFC 2047 §5 (3)).
func qSafe(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
		c == '!' || c == '*' || c == '+' || c == '-' || c == '/'
}

// encodeWords encodes s as RFC 2047 encoded words in UTF-8, each holding
// whole characters (§5: an encoded word must not split a character), the
// first at most first characters long and the others at most 75. It uses Q
// when most bytes are safe ASCII (readable), B otherwise (shorter).
func encodeWords(s string, first int) []string {
	unsafe := 0
	for i := 0; i < len(s); i++ {
		if !qSafe(s[i]) && s[i] != ' ' {
			unsafe++
		}
	}
	useB := unsafe*3 > len(s)
	var words []string
	limit := min(first, maxEncodedWord)
	var cur []byte // raw bytes of the current word
	curLen := 0    // encoded length of cur (Q)
	flush := func() {
		if len(cur) == 0 {
			return
		}
		if useB {
			words = append(words, bPrefix+base64.StdEncoding.EncodeToString(cur)+"?=")
		} else {
			w := make([]byte, 0, len(qPrefix)+curLen+2)
			w = append(w, qPrefix...)
			for _, c := range cur {
				switch {
				case c == ' ':
					w = append(w, '_')
				case qSafe(c):
					w = append(w, c)
				default:
					w = append(w, '=', hexUpper[c>>4], hexUpper[c&15])
				}
			}
			words = append(words, string(append(w, '?', '=')))
		}
		cur, curLen = cur[:0:0], 0
		limit = maxEncodedWord
	}
	for i := 0; i < len(s); {
		_, size := utf8.DecodeRuneInString(s[i:])
		r := s[i : i+size]
		var fits bool
		if useB {
			fits = len(bPrefix)+2+base64.StdEncoding.EncodedLen(len(cur)+size) <= limit
		} else {
			n := 0
			for j := 0; j < len(r); j++ {
				if qSafe(r[j]) || r[j] == ' ' {
					n++
				} else {
					n += 3
				}
			}
			fits = len(qPrefix)+2+curLen+n <= limit
			if fits || len(cur) == 0 {
				curLen += n
			}
		}
		if !fits && len(cur) > 0 {
			flush()
			continue // re-measure this character in the new word
		}
		cur = append(cur, r...)
		i += size
	}
	flush()
	if len(words) == 0 {
		words = append(words, qPrefix+"?=")
	}
	return words
}

const hexUpper = "0123456789ABCDEF"

// phraseTokens returns the tokens of a display name (RFC 5322 §3.2.5
// phrase): atoms when it is only atext and single spaces, a quoted-string
// when it is other printable ASCII, encoded words (RFC 2047 §5 (3))
// otherwise or when it could be mistaken for an encoded word.
func phraseTokens(name string) []string {
	if name == "" {
		return nil
	}
	if plainText(name) {
		atoms := true
		for i := 0; i < len(name); i++ {
			if c := name[i]; c != ' ' && !isAtext(c) {
				atoms = false
				break
			}
		}
		if atoms {
			return strings.Split(name, " ")
		}
	}
	printable := !strings.Contains(name, "=?") && len(name) <= 60
	for i := 0; i < len(name) && printable; i++ {
		printable = name[i] >= 32 && name[i] <= 126
	}
	if printable {
		return strings.Split(quoteLocal(name), " ")
	}
	return encodeWords(name, maxEncodedWord)
}

// appendAddressList appends an address-list field (RFC 5322 §3.4), folding
// between mailboxes and inside display names.
func appendAddressList(dst []byte, field string, list []Address) ([]byte, error) {
	var tokens []string
	for i, a := range list {
		if err := checkValue(a.Name); err != nil {
			return dst, fmt.Errorf("%s name: %w", field, err)
		}
		if err := CheckAddress(a.Email); err != nil {
			return dst, fmt.Errorf("%s: %w", field, err)
		}
		words := phraseTokens(a.Name)
		last := a.Email
		if len(words) > 0 {
			tokens = append(tokens, words...)
			last = "<" + a.Email + ">"
		}
		if i < len(list)-1 {
			last += ","
		}
		tokens = append(tokens, last)
	}
	return appendField(dst, field, tokens)
}
