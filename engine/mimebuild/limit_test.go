package mimebuild

import (
	"bytes"
	"errors"
	"runtime"
	"strings"
	"testing"
)

// TestBuildLimited: a message at the limit is built exactly as Build builds
// it; one byte less is ErrTooLarge, whichever part makes it too large.
func TestBuildLimited(t *testing.T) {
	for _, c := range []struct {
		name string
		edit func(*Message)
	}{
		{"7bit text", func(m *Message) { m.Text = strings.Repeat("short line\n", 500) }},
		{"quoted-printable text", func(m *Message) { m.Text = strings.Repeat("caf\u00e9 = 3\u20ac ", 400) }},
		{"html and text", func(m *Message) { m.Text, m.HTML = "hello", strings.Repeat("<p>\u00fcber</p>", 300) }},
		{"encoded subject", func(m *Message) { m.Text, m.Subject = "x", strings.Repeat("gr\u00fc\u00dfe ", 300) }},
		{"attachment", func(m *Message) {
			m.Text = "see attached"
			m.Attachments = []Attachment{{Filename: "a.bin", Data: bytes.Repeat([]byte{0, 1, 2, 255}, 1000)}}
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			m := baseMessage()
			c.edit(m)
			full, err := Build(m, seeded(1))
			if err != nil {
				t.Fatal(err)
			}
			got, err := BuildLimited(m, seeded(1), len(full))
			if err != nil || !bytes.Equal(got, full) {
				t.Fatalf("at the limit: %v\n%s", err, got)
			}
			if _, err := BuildLimited(m, seeded(1), len(full)-1); !errors.Is(err, ErrTooLarge) {
				t.Errorf("one byte over the limit: %v, want ErrTooLarge", err)
			}
		})
	}
}

// TestBuildLimitedStopsEarly: text that fits the limit but triples in
// quoted-printable ("=" becomes "=3D"), text longer than the limit, an
// attachment whose base64 is over it, and header values longer than it are
// refused without being encoded in full: building allocates a small multiple of the limit, not of what the
// parts would expand to.
func TestBuildLimitedStopsEarly(t *testing.T) {
	const limit = 4 << 20
	from := Address{Email: "a@example.test"}
	for _, c := range []struct {
		name string
		m    *Message
	}{
		{"quoted-printable past the limit", &Message{From: from, Text: strings.Repeat("=", limit-4096)}},
		{"text past the limit", &Message{From: from, Text: strings.Repeat("=", 8*limit)}},
		{"attachment past the limit", &Message{From: from, Text: "x", Attachments: []Attachment{{Data: make([]byte, 3*limit)}}}},
		{"header values past the limit", &Message{From: from, Text: "x", Subject: strings.Repeat("\u00e9 ", limit/4),
			Headers: []Header{{Name: "X-Long", Value: strings.Repeat("\u00fc", limit/3)}}}},
	} {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		_, err := BuildLimited(c.m, seeded(1), limit)
		runtime.ReadMemStats(&after)
		if !errors.Is(err, ErrTooLarge) {
			t.Fatalf("%s: err %v, want ErrTooLarge", c.name, err)
		}
		if grew := after.TotalAlloc - before.TotalAlloc; grew > 5*limit {
			t.Errorf("%s: allocated %d MiB to refuse it, want at most %d", c.name, grew>>20, 5*limit>>20)
		}
	}
}

// TestBase64Len: base64Len is the length encodeBase64 writes.
func TestBase64Len(t *testing.T) {
	for n := range 200 {
		if got, want := base64Len(n), len(encodeBase64(make([]byte, n))); got != want {
			t.Errorf("base64Len(%d) = %d, encodeBase64 writes %d", n, got, want)
		}
	}
}
