package outbound

import (
	"bufio"
	"bytes"
	"io"
	"strings"
	"testing"

	"gannet/smtpwire"
)

func newBufWriter(w io.Writer) *bufio.Writer { return bufio.NewWriterSize(w, 32<<10) }

func appendDotStuffedRef(b []byte) []byte { return smtpwire.AppendDotStuffed(nil, b) }

func TestCleanCRLF(t *testing.T) {
	for body, want := range map[string]bool{
		"":            true,
		"a\r\n":       true,
		"a\r\nb\r\n":  true,
		"a\n":         false,
		"a\r":         false,
		"a\rb\r\n":    false,
		"a\r\nb":      false,
		"\r\n\r\n":    true,
		"a\r\r\n":     false,
		"a\n\r\n":     false,
		".\r\n..\r\n": true,
		"\n\r":        false,
		"a\nb\r\r\n":  false,
		"\ra\n\r\n":   false,
	} {
		if got := cleanCRLF([]byte(body)); got != want {
			t.Errorf("cleanCRLF(%q) = %v, want %v", body, got, want)
		}
	}
}

func TestIsASCIIBytes(t *testing.T) {
	long := strings.Repeat("0123456789abcdef", 4)
	for s, want := range map[string]bool{"": true, "abc": true, "0123456789abcdef": true, "0123456789abcde\x80": false, "\xc3\xa9": false, "12345678\xff": false,
		long: true, long + "\xff": false, "\x80" + long: false, long[:40] + "\xc3\xa9" + long: false} {
		if got := isASCIIBytes([]byte(s)); got != want {
			t.Errorf("isASCIIBytes(%q) = %v", s, got)
		}
	}
}

// FuzzWriteBody checks that the zero-copy path writes exactly what
// smtpwire.AppendDotStuffed makes of any body.
func FuzzWriteBody(f *testing.F) {
	for _, s := range []string{"", ".", ".\r\n", "a\r\n.b\r\n", "a\n.\n", "\r\n.\r\n", "x\r", "..\r\n...\r\n"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var buf bytes.Buffer
		w := newBufWriter(&buf)
		var scratch []byte
		if err := writeBody(w, body, cleanCRLF(body), &scratch); err != nil {
			t.Fatal(err)
		}
		w.Flush()
		if want := smtpwire.AppendDotStuffed(nil, body); !bytes.Equal(buf.Bytes(), want) {
			t.Fatalf("body %q: wrote %q, want %q", body, buf.Bytes(), want)
		}
	})
}

// BenchmarkClientMessage is what a delivery learns of a 100 KB body before
// the first command (newClientMessage): CRLF-clean, 8-bit.
func BenchmarkClientMessage(b *testing.B) {
	body := bytes.Repeat([]byte("Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod.\r\n"), 1400) // ~100 KB
	env := &Envelope{From: "a@b.example", Rcpts: []string{"c@d.example"}, Body: body}
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if m := newClientMessage(env); !m.CRLFClean || m.EightBit {
			b.Fatal("misjudged the body")
		}
	}
}

func BenchmarkWriteBody(b *testing.B) {
	body := bytes.Repeat([]byte("Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod.\r\n"), 1400) // ~100 KB
	w := bufio.NewWriterSize(io.Discard, 32<<10)
	var scratch []byte
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		writeBody(w, body, cleanCRLF(body), &scratch)
		w.Flush()
	}
}
