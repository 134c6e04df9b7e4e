package smtpwire

import (
	"bytes"
	"fmt"
	"testing"
)

// TestCleanLinesEveryPosition: cleanLines (16 bytes at a time on amd64)
// answers as cleanLinesEach, its line-at-a-time form, for clean lines with
// one fault put at every offset in turn — a bare LF, a bare CR, a "."
// starting the line, CR and LF swapped — so that every offset of a block,
// the bytes left to Go at both ends and the block edges are tested.
func TestCleanLinesEveryPosition(t *testing.T) {
	clean := bytes.Repeat([]byte("The quick brown fox.\r\n"), 20)
	check := func(b []byte, what string) {
		t.Helper()
		n, scanned := cleanLines(b)
		wn, wscanned := cleanLinesEach(b)
		if n != wn || scanned != wscanned {
			t.Fatalf("%s: cleanLines = %d, %d; want %d, %d", what, n, scanned, wn, wscanned)
		}
	}
	if n, _ := cleanLines(clean); n != len(clean) {
		t.Fatalf("clean lines: %d of %d taken", n, len(clean))
	}
	for n := range 60 {
		check(clean[:n], fmt.Sprintf("prefix of %d", n))
		check(clean[n:], fmt.Sprintf("suffix from %d", n))
	}
	b := make([]byte, len(clean))
	for i := range clean {
		for _, f := range []struct {
			name string
			c    byte
		}{{"bare LF", '\n'}, {"bare CR", '\r'}, {"dot", '.'}, {"8-bit", 0xc3}} {
			copy(b, clean)
			b[i] = f.c
			check(b, fmt.Sprintf("%s at %d", f.name, i))
		}
		if i+1 < len(b) {
			copy(b, clean)
			b[i], b[i+1] = '\n', '\r'
			check(b, fmt.Sprintf("LF CR at %d", i))
		}
	}
}

// FuzzCleanLines: whatever the bytes, cleanLines agrees with
// cleanLinesEach.
func FuzzCleanLines(f *testing.F) {
	f.Add([]byte("line one is long enough\r\nline two is long enough too\r\n.dot\r\n"))
	f.Add([]byte("a bare\nLF in a long enough line, and more\r\n"))
	f.Add([]byte("a bare\rCR in a long enough line, and more\r\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		n, scanned := cleanLines(b)
		if wn, wscanned := cleanLinesEach(b); n != wn || scanned != wscanned {
			t.Fatalf("cleanLines(%q) = %d, %d; want %d, %d", b, n, scanned, wn, wscanned)
		}
	})
}
