package smtpwire

import (
	"bytes"
	"math/rand/v2"
	"strings"
	"testing"
)

// decodeAll feeds in to a fresh decoder in pieces of at most step bytes.
func decodeAll(in []byte, max int64, step int) (body []byte, n int, d *DotDecoder) {
	d = NewDotDecoder(max)
	for n < len(in) && !d.Done() {
		end := min(len(in), n+step)
		var used int
		body, used, _ = d.Decode(body, in[n:end])
		n += used
	}
	return body, n, d
}

func TestDotDecoder(t *testing.T) {
	tests := []struct {
		name, in, body, rest string
		bare, done           bool
	}{
		{"empty", ".\r\n", "", "", false, true},
		{"simple", "a\r\nb\r\n.\r\nNEXT", "a\r\nb\r\n", "NEXT", false, true},
		{"unstuff", "..\r\n..x\r\n.y\r\n...\r\n.\r\n", ".\r\n.x\r\ny\r\n..\r\n", "", false, true},
		{"dot inside", "a.b\r\n .\r\n.\r\n", "a.b\r\n .\r\n", "", false, true},
		{"empty lines", "\r\n\r\n.\r\n", "\r\n\r\n", "", false, true},
		{"smuggle LF.LF", "a\n.\nb\r\n.\r\n", "a\r\n.\r\nb\r\n", "", true, true},
		{"smuggle CRLF.LF", "a\r\n.\nb\r\n.\r\n", "a\r\n.\r\nb\r\n", "", true, true},
		{"smuggle LF.CRLF", "a\n.\r\nb\r\n.\r\n", "a\r\n.\r\nb\r\n", "", true, true},
		{"smuggle CR.CRLF", "a\r.\r\nb\r\n.\r\n", "a\r\n.\r\nb\r\n", "", true, true},
		{"smuggle CRLF.CR", "a\r\n.\rb\r\n.\r\n", "a\r\n.\r\nb\r\n", "", true, true},
		{"dot CR CR LF", "a\r\n.\r\r\n.\r\n", "a\r\n.\r\n\r\n", "", true, true},
		{"bare CR", "a\rb\r\n.\r\n", "a\r\nb\r\n", "", true, true},
		{"CR CR LF", "a\r\r\n.\r\n", "a\r\n\r\n", "", true, true},
		{"bare LF then stuffed", "a\n..b\r\n.\r\n", "a\r\n.b\r\n", "", true, true},
		{"unfinished", "a\r\n.", "a\r\n", "", false, false},
		{"unfinished CR", "a\r\n.\r", "a\r\n", "", false, false},
		{"no terminator", "a\r\n.\n", "a\r\n.\r\n", "", true, false},
		{"8-bit and NUL", "\xff\x00\r\n.\r\n", "\xff\x00\r\n", "", false, true},
	}
	for _, tt := range tests {
		for _, step := range []int{1, 2, 3, 7, 1 << 20} {
			body, n, d := decodeAll([]byte(tt.in), 0, step)
			if string(body) != tt.body || d.Done() != tt.done || d.BareLineEndings() != tt.bare || tt.in[n:] != tt.rest {
				t.Errorf("%s (step %d): body %q done %v bare %v rest %q; want %q %v %v %q",
					tt.name, step, body, d.Done(), d.BareLineEndings(), tt.in[n:], tt.body, tt.done, tt.bare, tt.rest)
			}
		}
	}
}

func TestDotDecoderSizeLimit(t *testing.T) {
	line := strings.Repeat("x", 98) + "\r\n"
	in := []byte(strings.Repeat(line, 100) + ".\r\nQUIT\r\n")
	body, n, d := decodeAll(in, 1000, 333)
	if !d.Done() || string(in[n:]) != "QUIT\r\n" {
		t.Fatalf("not read to the end: rest %q", in[n:])
	}
	if !d.TooBig() || d.Size() != 10000 || d.Err(BareLFNormalize) != ErrMessageTooBig {
		t.Errorf("TooBig %v Size %d Err %v", d.TooBig(), d.Size(), d.Err(BareLFNormalize))
	}
	if len(body) > 1000 {
		t.Errorf("kept %d bytes past a 1000-byte limit", len(body))
	}
	// Exactly at the limit is fine.
	_, _, d = decodeAll([]byte(strings.Repeat(line, 10)+".\r\n"), 1000, 64)
	if d.TooBig() || d.Err(BareLFReject) != nil {
		t.Errorf("1000 bytes refused at limit 1000")
	}
	_, _, d = decodeAll([]byte("a\nb\r\n.\r\n"), 1000, 64)
	if d.Err(BareLFNormalize) != nil || d.Err(BareLFReject) != ErrBareLF {
		t.Error("bare LF policy")
	}
}

func TestAppendDotStuffed(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", ".\r\n"},
		{"a\r\n", "a\r\n.\r\n"},
		{"a", "a\r\n.\r\n"},
		{".\r\n", "..\r\n.\r\n"},
		{".", "..\r\n.\r\n"},
		{"..x\r\n.\r\nb", "...x\r\n..\r\nb\r\n.\r\n"},
		{"a\nb\rc\r\n", "a\r\nb\r\nc\r\n.\r\n"},
		{"a\n.\nb", "a\r\n..\r\nb\r\n.\r\n"},
		{"\n", "\r\n.\r\n"},
		{"\r", "\r\n.\r\n"},
		{"x.y\r\n", "x.y\r\n.\r\n"},
	}
	for _, tt := range tests {
		if got := string(AppendDotStuffed([]byte("P:"), []byte(tt.in))); got != "P:"+tt.want {
			t.Errorf("%q: got %q, want %q", tt.in, got, "P:"+tt.want)
		}
	}
}

// checkRoundTrip: decoding an encoded body gives the normalized body back,
// consuming exactly the encoding.
func checkRoundTrip(t *testing.T, body []byte, step int) {
	t.Helper()
	enc := AppendDotStuffed(nil, body)
	got, n, d := decodeAll(enc, 0, step)
	want := AppendNormalized(nil, body)
	if !d.Done() || n != len(enc) || !bytes.Equal(got, want) || d.BareLineEndings() {
		t.Fatalf("body %q: encoded %q decoded %q (done %v, n %d/%d, bare %v), want %q",
			body, enc, got, d.Done(), n, len(enc), d.BareLineEndings(), want)
	}
}

func TestDotRoundTripProperty(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	alphabet := []byte{'.', '.', '\r', '\n', 'a', 'b', ' ', 0, 0xff}
	for i := 0; i < 5000; i++ {
		body := make([]byte, rng.IntN(40))
		for j := range body {
			body[j] = alphabet[rng.IntN(len(alphabet))]
		}
		checkRoundTrip(t, body, 1+rng.IntN(10))
	}
}

func FuzzDotDecoder(f *testing.F) {
	for _, s := range []string{"", ".", "..", "a\r\n.\r\nb", "\n.\n", "\r\n.\n", "\n.\r\n", "\r.\r\n", "x\r", ".\r", "a\rb\nc"} {
		f.Add([]byte(s), uint8(3))
	}
	f.Fuzz(func(t *testing.T, body []byte, step uint8) {
		checkRoundTrip(t, body, 1+int(step))
		// Arbitrary input never ends before a real CRLF.CRLF (or the
		// leading ".\r\n"), and splitting never changes the result.
		a, na, da := decodeAll(body, 0, 1<<30)
		b, nb, db := decodeAll(body, 0, 1+int(step))
		if !bytes.Equal(a, b) || na != nb || da.Done() != db.Done() {
			t.Fatalf("split changes the result: %q/%d vs %q/%d", a, na, b, nb)
		}
		if da.Done() {
			end := body[:na]
			if !bytes.Equal(end, []byte(".\r\n")) && !bytes.HasSuffix(end, []byte("\r\n.\r\n")) {
				t.Fatalf("ended without CRLF.CRLF: %q", end)
			}
		}
	})
}

func benchBody(size int) []byte {
	var b []byte
	for i := 0; len(b) < size; i++ {
		if i%20 == 0 {
			b = append(b, '.')
		}
		b = append(b, "The quick brown fox jumps over the lazy dog; 0123456789 abcdefghij\r\n"...)
	}
	return b
}

// BenchmarkDotDecode decodes 100 KB with a "." line every 20 lines.
func BenchmarkDotDecode(b *testing.B) { benchDecode(b, benchBody(100<<10)) }

// BenchmarkDotDecodePlain decodes 100 KB of text lines none of which
// starts with "." (most mail): the lines go 16 bytes at a time on amd64.
func BenchmarkDotDecodePlain(b *testing.B) {
	line := "Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod\r\n"
	benchDecode(b, bytes.Repeat([]byte(line), 100<<10/len(line)))
}

// benchDecode decodes body, dot-stuffed, in one piece per iteration.
func benchDecode(b *testing.B, body []byte) {
	enc := AppendDotStuffed(nil, body)
	dst := make([]byte, 0, len(enc))
	var d DotDecoder
	b.ReportAllocs()
	b.SetBytes(int64(len(enc)))
	for b.Loop() {
		d.Reset(0)
		out, _, done := d.Decode(dst[:0], enc)
		if !done || len(out) == 0 {
			b.Fatal("not done")
		}
	}
}

func BenchmarkDotStuff(b *testing.B) {
	body := benchBody(100 << 10)
	dst := make([]byte, 0, 2*len(body))
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		dst = AppendDotStuffed(dst[:0], body)
	}
}
