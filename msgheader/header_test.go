package msgheader

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
)

func TestSectionEndAndBodyStart(t *testing.T) {
	for _, tc := range []struct {
		in         string
		end, start int
	}{
		{"", 0, 0},
		{"\r\nbody", 0, 2},
		{"\nbody", 0, 1},
		{"A: b\r\n\r\nbody", 6, 8},
		{"A: b\r\n c\r\n\r\nx", 10, 12},
		{"A: b\n\nx", 5, 6},
		{"A: b\r\n", 6, 6},
		{"A: b", 4, 4},
		{"A: b\r\n\rX: y\r\n\r\n", 13, 15}, // a lone CR is not an empty line
	} {
		if got := SectionEnd([]byte(tc.in)); got != tc.end {
			t.Errorf("SectionEnd(%q) = %d, want %d", tc.in, got, tc.end)
		}
		if got := BodyStart([]byte(tc.in)); got != tc.start {
			t.Errorf("BodyStart(%q) = %d, want %d", tc.in, got, tc.start)
		}
		if got := string(Section([]byte(tc.in))); got != tc.in[:tc.start] {
			t.Errorf("Section(%q) = %q", tc.in, got)
		}
	}
}

func TestFields(t *testing.T) {
	msg := "From: a@example.test\r\n" +
		"Subject: one\r\n two\r\n\tthree\r\n" +
		"no colon line\r\n" +
		"X-Tab \t: v\r\n" +
		"Empty:\r\n" +
		"\r\n" +
		"Body: not a field\r\n"
	type got struct{ name, raw, value, unfolded string }
	var fs []got
	end := 0
	for f := range Fields([]byte(msg)) {
		if f.Start != end {
			t.Errorf("field %q starts at %d, previous ended at %d", f.Raw, f.Start, end)
		}
		end = f.End()
		fs = append(fs, got{string(f.Name), string(f.Raw), string(f.Value()), f.Unfolded()})
	}
	want := []got{
		{"From", "From: a@example.test\r\n", " a@example.test", "a@example.test"},
		{"Subject", "Subject: one\r\n two\r\n\tthree\r\n", " one\r\n two\r\n\tthree", "one two\tthree"},
		{"", "no colon line\r\n", "", ""},
		{"X-Tab", "X-Tab \t: v\r\n", " v", "v"},
		{"Empty", "Empty:\r\n", "", ""},
	}
	if fmt.Sprint(fs) != fmt.Sprint(want) {
		t.Errorf("fields\n got %q\nwant %q", fs, want)
	}
	if v, ok := Get([]byte(msg), "subject"); !ok || v != "one two\tthree" {
		t.Errorf("Get subject = %q, %v", v, ok)
	}
	if _, ok := Get([]byte(msg), "Body"); ok {
		t.Error("Get found a field in the body")
	}
	// A leading continuation line is a field with no name.
	for f := range Fields([]byte(" folded: x\r\nA: b\r\n")) {
		if f.Name != nil {
			t.Errorf("leading continuation line got name %q", f.Name)
		}
		break
	}
}

func TestScannerEarlyStop(t *testing.T) {
	n := 0
	for range Fields([]byte("A: 1\r\nB: 2\r\nC: 3\r\n\r\n")) {
		n++
		if n == 2 {
			break
		}
	}
	if n != 2 {
		t.Errorf("stopped after %d", n)
	}
}

func TestNoAllocs(t *testing.T) {
	msg := []byte("From: a@example.test\r\nTo: b@example.test\r\nSubject: hi\r\n there\r\n\r\nbody\r\n")
	if n := testing.AllocsPerRun(100, func() {
		s := NewScanner(msg)
		for s.Next() {
			_ = s.Field().Is("subject")
		}
		_ = s.BodyStart()
	}); n != 0 {
		t.Errorf("scanning allocates %.0f times", n)
	}
}

func BenchmarkScan(b *testing.B) {
	var h bytes.Buffer
	for i := range 20 {
		fmt.Fprintf(&h, "X-Header-%d: some value that is fairly long, like real headers\r\n\tcontinued\r\n", i)
	}
	h.WriteString("\r\n")
	h.WriteString(strings.Repeat("body line\r\n", 1000))
	msg := h.Bytes()
	b.SetBytes(int64(BodyStart(msg)))
	b.ReportAllocs()
	for b.Loop() {
		s := NewScanner(msg)
		for s.Next() {
		}
	}
}

// FuzzFields checks the scanner's invariants on any input: the fields tile
// the header section from offset 0 without gaps, the empty line (if any)
// follows them, nothing after it is a field, and the named fields' names
// contain neither a colon nor a line end.
func FuzzFields(f *testing.F) {
	for _, s := range []string{"", "A: b\r\n\r\nbody", "A: b\n c\n\nx", " lead: x\r\n", "no colon\r\nB: c", "A: b\r\n\r", "\r\n", "A:\rB\r\n\r\n"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, msg []byte) {
		s := NewScanner(msg)
		pos := 0
		for s.Next() {
			fd := s.Field()
			if fd.Start != pos || len(fd.Raw) == 0 || !bytes.Equal(fd.Raw, msg[fd.Start:fd.End()]) {
				t.Fatalf("field %q at %d, expected start %d", fd.Raw, fd.Start, pos)
			}
			if fd.Name != nil && (bytes.ContainsAny(fd.Name, ":\r\n") || bytes.HasSuffix(fd.Name, []byte(" "))) {
				t.Fatalf("bad name %q", fd.Name)
			}
			if v := fd.Value(); bytes.HasSuffix(v, []byte("\n")) {
				t.Fatalf("value keeps its line end: %q", v)
			}
			pos = fd.End()
		}
		end, body := s.SectionEnd(), s.BodyStart()
		if end != pos || body < end || body > len(msg) || body-end > 2 {
			t.Fatalf("section end %d body %d after fields ending at %d (len %d)", end, body, pos, len(msg))
		}
		if body > end && emptyLine(msg[end:]) != body-end {
			t.Fatalf("no empty line at %d: %q", end, msg[end:body])
		}
		if SectionEnd(msg) != end || BodyStart(msg) != body {
			t.Fatal("SectionEnd/BodyStart disagree with the scanner")
		}
	})
}
