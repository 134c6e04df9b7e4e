package e2e

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"testing"
)

// stripFirstReceived removes the first header field of msg, which must be a
// Received field (the trace field gannet prepends, RFC 5321 §4.4), together
// with its folded continuation lines. It returns the rest of the message
// untouched.
func stripFirstReceived(msg []byte) ([]byte, error) {
	if len(msg) < 9 || !strings.EqualFold(string(msg[:9]), "Received:") {
		return nil, fmt.Errorf("message does not start with a Received header: %q", prefix(msg, 80))
	}
	i := 0
	for {
		nl := bytes.IndexByte(msg[i:], '\n')
		if nl < 0 {
			return nil, fmt.Errorf("unterminated Received header: %q", prefix(msg, 200))
		}
		i += nl + 1
		// A line that starts with white space continues the field (RFC 5322 §2.2.3).
		if i >= len(msg) || (msg[i] != ' ' && msg[i] != '\t') {
			return msg[i:], nil
		}
	}
}

// assertRelayedExactly checks that got is want with exactly one Received
// header prepended.
func assertRelayedExactly(t testing.TB, label string, got, want []byte) {
	t.Helper()
	rest, err := stripFirstReceived(got)
	if err != nil {
		t.Errorf("%s: %v", label, err)
		return
	}
	if !bytes.Equal(rest, want) {
		t.Errorf("%s: message altered in transit\n%s", label, firstDifference(rest, want))
	}
}

// firstDifference describes where two byte strings first differ.
func firstDifference(got, want []byte) string {
	i := 0
	for i < len(got) && i < len(want) && got[i] == want[i] {
		i++
	}
	lo := max(0, i-40)
	return fmt.Sprintf("lengths got %d want %d; first difference at byte %d:\n got  …%q\n want …%q",
		len(got), len(want), i, got[lo:min(len(got), i+40)], want[lo:min(len(want), i+40)])
}

func prefix(b []byte, n int) []byte { return b[:min(len(b), n)] }

func sha256hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// crlf turns a Go string with "\n" line ends into CRLF bytes.
func crlf(s string) []byte { return []byte(strings.ReplaceAll(s, "\n", "\r\n")) }

// simpleMessage builds a small RFC 5322 message with a unique Message-ID.
func simpleMessage(from, to, subject, body string) []byte {
	return crlf(fmt.Sprintf("From: <%s>\nTo: <%s>\nSubject: %s\nDate: Mon, 02 Jan 2026 15:04:05 +0000\n"+
		"Message-ID: <%s@e2e.test>\nMIME-Version: 1.0\nContent-Type: text/plain; charset=us-ascii\n\n%s",
		from, to, subject, strings.ReplaceAll(strings.ToLower(subject), " ", "-"), body))
}

// bigMessage builds a message of about size bytes: base64-like 76-column lines
// (well under the 998-byte line limit), deterministic content.
func bigMessage(from, to string, size int) []byte {
	var b bytes.Buffer
	b.Write(simpleMessage(from, to, "big message", ""))
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
	line := make([]byte, 78)
	line[76], line[77] = '\r', '\n'
	x := uint32(2463534242)
	for b.Len() < size {
		for i := range 76 {
			x ^= x << 13
			x ^= x >> 17
			x ^= x << 5
			line[i] = alphabet[x%64]
		}
		b.Write(line)
	}
	return b.Bytes()
}

func TestStripFirstReceived(t *testing.T) {
	cases := []struct{ in, want string }{
		{"Received: from a by b; date\r\nSubject: x\r\n\r\nbody\r\n", "Subject: x\r\n\r\nbody\r\n"},
		{"Received: from a\r\n\tby b\r\n  ; date\r\nReceived: older\r\n\r\n", "Received: older\r\n\r\n"},
		{"received: x\r\n\r\n", "\r\n"},
		{"Received: x\r\n", ""},
	}
	for _, c := range cases {
		got, err := stripFirstReceived([]byte(c.in))
		if err != nil || string(got) != c.want {
			t.Errorf("stripFirstReceived(%q) = %q, %v; want %q", c.in, got, err, c.want)
		}
	}
	for _, bad := range []string{"", "Subject: x\r\nReceived: y\r\n\r\n", "Received: no end"} {
		if _, err := stripFirstReceived([]byte(bad)); err == nil {
			t.Errorf("stripFirstReceived(%q): no error", bad)
		}
	}
}
