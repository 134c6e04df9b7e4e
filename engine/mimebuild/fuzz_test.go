package mimebuild

import (
	"bytes"
	"errors"
	"net/mail"
	"testing"
)

// FuzzBuild: Build never panics, and whatever it returns parses with
// net/mail and mime/multipart, giving back the subject and the text;
// BuildLimited builds the same bytes with a limit of their length and
// refuses with ErrTooLarge one byte below it.
func FuzzBuild(f *testing.F) {
	f.Add("Hello", "Sender", "a@example.test", "text\n", "", "X-A", "v", "f.txt", []byte("data"))
	f.Add("Grüße 🎉", "Jürgen, \"J\"", "b@example.test", "ünï\r\n", "<p>x</p>", "X-B", "naïve", "März.pdf", []byte{0, 1, 2})
	f.Add("=?utf-8?q?x?=", "", "\"q l\"@[127.0.0.1]", "--=_00\r\n", "<b>", "Content-Type", "x", "", []byte(nil))
	f.Add("a\nb", "n\r", "bad", "", "", "X:", "a\rb", "a\nb", []byte("x"))
	f.Fuzz(func(t *testing.T, subject, name, email, text, html, hname, hvalue, filename string, data []byte) {
		m := &Message{
			From:      Address{Name: name, Email: email},
			To:        []Address{{Name: name, Email: "to@example.test"}},
			Subject:   subject,
			Date:      testDate,
			MessageID: "id@example.test",
			Text:      text,
			HTML:      html,
			Headers:   []Header{{hname, hvalue}},
		}
		if len(data) > 0 {
			m.Attachments = []Attachment{{Filename: filename, Data: data}}
		}
		raw, err := Build(m, seeded(1))
		if err != nil {
			return
		}
		if got, err := BuildLimited(m, seeded(1), len(raw)); err != nil || !bytes.Equal(got, raw) {
			t.Fatalf("BuildLimited at the message's length: %v\n%q\nwant\n%q", err, got, raw)
		}
		if _, err := BuildLimited(m, seeded(1), len(raw)-1); !errors.Is(err, ErrTooLarge) {
			t.Fatalf("BuildLimited one byte short: %v, want ErrTooLarge", err)
		}
		msg, err := mail.ReadMessage(bytes.NewReader(raw))
		if err != nil {
			t.Fatalf("net/mail: %v\n%q", err, raw)
		}
		if _, err := msg.Header.AddressList("From"); err != nil {
			t.Fatalf("From: %v\n%q", err, raw)
		}
		p, err := goParse(raw)
		if err != nil {
			t.Fatalf("parse: %v\n%q", err, raw)
		}
		if subject != "" {
			if got := new(mimeDecoder).decode(msg.Header.Get("Subject")); got != subject {
				t.Fatalf("subject %q read back as %q", subject, got)
			}
		}
		want := normalizeNewlines(text)
		leaf := p.Body.leaves()[0]
		got := leaf.data(t)
		if len(p.Body.Parts) == 0 && !bytes.HasSuffix(want, []byte("\r\n")) {
			want = append(want, '\r', '\n')
		}
		if (text != "" || html == "") && !bytes.Equal(got, want) {
			t.Fatalf("text %q read back as %q", want, got)
		}
	})
}
