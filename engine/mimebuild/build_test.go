package mimebuild

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"net/mail"
	"strings"
	"testing"
	"time"
)

// seeded returns a deterministic random source for boundaries.
func seeded(seed byte) *rand.ChaCha8 {
	var s [32]byte
	s[0] = seed
	return rand.NewChaCha8(s)
}

var testDate = time.Date(2026, 3, 4, 5, 6, 7, 0, time.FixedZone("", 3600))

func baseMessage() *Message {
	return &Message{
		From:      Address{Name: "Sender", Email: "sender@example.test"},
		To:        []Address{{Email: "a@example.test"}},
		Subject:   "Hello",
		Date:      testDate,
		MessageID: "abc123@relay.example.test",
	}
}

// crlfToLF compares text regardless of the line-ending form: the builder
// sends CRLF; parsers may hand back either.
func crlfToLF(s string) string { return strings.ReplaceAll(s, "\r\n", "\n") }

// checkBoth parses raw with Python and Go, fails on any Python defect or Go
// error, requires the same structure from both and returns Python's view.
func checkBoth(t *testing.T, raw []byte) parsed {
	t.Helper()
	checkLines(t, raw)
	py := pythonParse(t, raw)
	if len(py.Defects) > 0 {
		t.Fatalf("python reports defects %v in\n%s", py.Defects, raw)
	}
	g, err := goParse(raw)
	if err != nil {
		t.Fatalf("go parse: %v\n%s", err, raw)
	}
	if py.Body.shape() != g.Body.shape() {
		t.Fatalf("structure: python %s, go %s", py.Body.shape(), g.Body.shape())
	}
	pl, gl := py.Body.leaves(), g.Body.leaves()
	for i := range pl {
		if crlfToLF(string(pl[i].data(t))) != crlfToLF(string(gl[i].data(t))) && pl[i].DataB64 != gl[i].DataB64 {
			t.Fatalf("part %d: python and go decode different bytes", i)
		}
	}
	return py
}

// checkLines requires CRLF everywhere, no line over 998 and header lines of
// at most 78 characters unless a single token is longer.
func checkLines(t *testing.T, raw []byte) {
	t.Helper()
	if !bytes.HasSuffix(raw, []byte("\r\n")) {
		t.Fatalf("message does not end with CRLF")
	}
	inHeader := true
	for i, line := range bytes.Split(raw[:len(raw)-2], []byte("\r\n")) {
		if bytes.ContainsAny(line, "\r\n") {
			t.Fatalf("line %d has a bare CR or LF: %q", i+1, line)
		}
		if len(line) > 998 {
			t.Fatalf("line %d is %d long", i+1, len(line))
		}
		if len(line) == 0 {
			inHeader = false
		}
		if inHeader && len(line) > 78 && bytes.Count(bytes.TrimSpace(line), []byte(" ")) > 1 {
			t.Errorf("header line %d is %d long and could fold: %q", i+1, len(line), line)
		}
	}
}

func TestBuildTextOnly(t *testing.T) {
	m := baseMessage()
	m.Text = "Hello there,\nthis is plain ASCII.\n"
	raw, err := Build(m, seeded(1))
	if err != nil {
		t.Fatal(err)
	}
	p := checkBoth(t, raw)
	if p.Body.shape() != "text/plain" {
		t.Fatalf("shape %s", p.Body.shape())
	}
	if p.Body.CTE != "7bit" || *p.Body.Charset != "utf-8" {
		t.Errorf("cte %q charset %v", p.Body.CTE, *p.Body.Charset)
	}
	if got := crlfToLF(string(p.Body.data(t))); got != m.Text {
		t.Errorf("text %q", got)
	}
	want := map[string]string{
		"From": "Sender <sender@example.test>", "To": "a@example.test", "Subject": "Hello",
		"Message-ID": "<abc123@relay.example.test>", "MIME-Version": "1.0",
		"Date": "Wed, 04 Mar 2026 05:06:07 +0100",
	}
	for k, v := range want {
		if got := p.header(k); len(got) != 1 || got[0] != v {
			t.Errorf("%s: %q, want %q", k, got, v)
		}
	}
	if !bytes.Contains(raw, []byte("\r\nMIME-Version: 1.0\r\n")) {
		t.Errorf("no MIME-Version line")
	}
}

func TestBuildNonASCIIAndLongLines(t *testing.T) {
	m := baseMessage()
	m.Subject = "Grüße aus Köln — ünïcödé Betreff, der ziemlich lang ist und daher gefaltet werden muss 🎉"
	m.From.Name = "Jürgen Weiß"
	m.To = []Address{{Name: "Doe, John", Email: "john@example.test"}, {Name: "Zoë", Email: "zoe@example.test"}}
	m.Cc = []Address{{Email: "cc@example.test"}}
	m.Text = "Grüße!\r\n" + strings.Repeat("long line ", 30) + "\n trailing space \nend"
	m.Headers = []Header{{"X-Campaign", "spring-2026"}, {"X-Note", "naïve café"}}
	raw, err := Build(m, seeded(2))
	if err != nil {
		t.Fatal(err)
	}
	p := checkBoth(t, raw)
	if p.Body.CTE != "quoted-printable" {
		t.Errorf("cte %q", p.Body.CTE)
	}
	// A single-part body gets a final line break.
	if got := crlfToLF(string(p.Body.data(t))); got != crlfToLF(normalizeText(m.Text))+"\n" {
		t.Errorf("text %q", got)
	}
	if got := p.header("Subject"); len(got) != 1 || got[0] != m.Subject {
		t.Errorf("subject %q", got)
	}
	if got := p.header("From"); len(got) != 1 || got[0] != "Jürgen Weiß <sender@example.test>" {
		t.Errorf("from %q", got)
	}
	if got := p.header("To"); len(got) != 1 || got[0] != `"Doe, John" <john@example.test>, Zoë <zoe@example.test>` {
		t.Errorf("to %q", got)
	}
	if got := p.header("X-Note"); len(got) != 1 || got[0] != "naïve café" {
		t.Errorf("x-note %q", got)
	}
	if bytes.Contains(raw, []byte("Grüße")) {
		t.Errorf("8-bit bytes in the message")
	}
	// Go's net/mail reads the same names and subject.
	msg, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	to, err := msg.Header.AddressList("To")
	if err != nil || len(to) != 2 || to[0].Name != "Doe, John" || to[1].Name != "Zoë" || to[1].Address != "zoe@example.test" {
		t.Errorf("go To: %v %v", to, err)
	}
	from, err := msg.Header.AddressList("From")
	if err != nil || from[0].Name != "Jürgen Weiß" {
		t.Errorf("go From: %v %v", from, err)
	}
}

// normalizeText is what the builder does to line endings.
func normalizeText(s string) string { return string(normalizeNewlines(s)) }

func TestBuildAlternativeAndAttachments(t *testing.T) {
	gif := []byte("GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff!\xf9\x04\x01\x00\x00\x00\x00,\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x01D\x00;")
	bin := make([]byte, 5000)
	r := seeded(9)
	for i := range bin {
		bin[i] = byte(r.Uint64())
	}
	m := baseMessage()
	m.Text = "plain part\n"
	m.HTML = "<p>HTML <b>part</b> <img src=\"cid:pixel\"></p>\n"
	m.Attachments = []Attachment{
		{Filename: "pixel.gif", ContentType: "image/gif", ContentID: "pixel", Data: gif},
		{Filename: "Rechnung März.bin", ContentType: "application/octet-stream", Data: bin},
		{Filename: "notes.txt", ContentType: "text/plain; charset=utf-8", Data: []byte("line 1\nline 2\n")},
	}
	raw, err := Build(m, seeded(3))
	if err != nil {
		t.Fatal(err)
	}
	p := checkBoth(t, raw)
	want := "multipart/mixed(multipart/related(multipart/alternative(text/plain,text/html),image/gif),application/octet-stream,text/plain)"
	if p.Body.shape() != want {
		t.Fatalf("shape\n got %s\nwant %s", p.Body.shape(), want)
	}
	l := p.Body.leaves()
	if crlfToLF(string(l[0].data(t))) != m.Text || crlfToLF(string(l[1].data(t))) != m.HTML {
		t.Errorf("bodies %q %q", l[0].data(t), l[1].data(t))
	}
	for i, a := range m.Attachments {
		n := l[2+i]
		if !bytes.Equal(n.data(t), a.Data) {
			t.Errorf("attachment %d: bytes differ", i)
		}
		if n.Filename == nil || *n.Filename != a.Filename {
			t.Errorf("attachment %d: filename %v", i, n.Filename)
		}
		if n.CTE != "base64" {
			t.Errorf("attachment %d: cte %q", i, n.CTE)
		}
	}
	if *l[2].Disposition != "inline" || *l[2].ContentID != "<pixel>" {
		t.Errorf("inline part: %v %v", *l[2].Disposition, *l[2].ContentID)
	}
	if *l[3].Disposition != "attachment" {
		t.Errorf("attachment disposition %v", *l[3].Disposition)
	}
}

func TestBuildHTMLOnly(t *testing.T) {
	m := baseMessage()
	m.HTML = "<html><body>only html</body></html>"
	raw, err := Build(m, seeded(4))
	if err != nil {
		t.Fatal(err)
	}
	p := checkBoth(t, raw)
	if p.Body.shape() != "text/html" {
		t.Fatalf("shape %s", p.Body.shape())
	}
}

// A boundary that occurs in the content is not used: the builder draws again.
func TestBuildBoundaryCollision(t *testing.T) {
	// The first boundary the seeded source will produce.
	probe := baseMessage()
	probe.Text, probe.HTML = "a", "b"
	raw, err := Build(probe, seeded(5))
	if err != nil {
		t.Fatal(err)
	}
	i := bytes.Index(raw, []byte(`boundary="`))
	first := string(raw[i+10 : i+10+34])
	m := baseMessage()
	m.Text = "--" + first + "\n" + first + "--\n"
	m.HTML = "<p>x</p>"
	raw, err = Build(m, seeded(5))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(raw, []byte(`boundary="`+first+`"`)) {
		t.Fatalf("colliding boundary %s was used", first)
	}
	p := checkBoth(t, raw)
	if got := crlfToLF(string(p.Body.leaves()[0].data(t))); got != m.Text {
		t.Errorf("text %q", got)
	}
	// A source that always yields the same bytes cannot find a free boundary.
	if _, err := Build(m, zeroReader{}); err != nil {
		t.Fatalf("zero reader, no collision: %v", err)
	}
	m.Text = "=_" + strings.Repeat("00", 16)
	if _, err := Build(m, zeroReader{}); !errors.Is(err, ErrBoundary) {
		t.Fatalf("err %v, want ErrBoundary", err)
	}
}

type zeroReader struct{}

func (zeroReader) Read(p []byte) (int, error) { clear(p); return len(p), nil }

func TestBuildSubjects(t *testing.T) {
	long := strings.Repeat("word ", 40)
	cases := []string{
		"plain",
		strings.TrimSpace(long),
		"=?utf-8?q?not_an_encoded_word?=",
		"  leading and trailing  ",
		"tab\there",
		"日本語のとても長い件名です。日本語のとても長い件名です。日本語のとても長い件名です。",
		"mixed ascii and ß",
		strings.Repeat("x", 300),
	}
	for _, s := range cases {
		m := baseMessage()
		m.Subject = s
		raw, err := Build(m, seeded(6))
		if err != nil {
			t.Fatalf("%q: %v", s, err)
		}
		p := checkBoth(t, raw)
		if got := p.header("Subject"); len(got) != 1 || got[0] != s {
			t.Errorf("subject %q decoded as %q", s, got)
		}
		msg, err := mail.ReadMessage(bytes.NewReader(raw))
		if err != nil {
			t.Fatal(err)
		}
		var dec = new(mimeDecoder)
		if got := dec.decode(msg.Header.Get("Subject")); got != strings.Join(strings.Fields(s), " ") && got != s {
			t.Errorf("go subject %q decoded as %q", s, got)
		}
	}
}

func TestBuildRefusals(t *testing.T) {
	cases := []struct {
		name string
		edit func(m *Message)
		want error
	}{
		{"subject LF", func(m *Message) { m.Subject = "a\nBcc: x@example.test" }, ErrHeaderInjection},
		{"subject CR", func(m *Message) { m.Subject = "a\rb" }, ErrHeaderInjection},
		{"header value", func(m *Message) { m.Headers = []Header{{"X-A", "v\r\nBcc: x@example.test"}} }, ErrHeaderInjection},
		{"header name", func(m *Message) { m.Headers = []Header{{"X-A\r\nBcc", "v"}} }, ErrHeaderInjection},
		{"header name colon", func(m *Message) { m.Headers = []Header{{"X-A:", "v"}} }, ErrBadHeaderName},
		{"header name space", func(m *Message) { m.Headers = []Header{{"X A", "v"}} }, ErrBadHeaderName},
		{"reserved", func(m *Message) { m.Headers = []Header{{"content-type", "text/html"}} }, ErrReservedHeader},
		{"bcc header", func(m *Message) { m.Headers = []Header{{"Bcc", "x@example.test"}} }, ErrReservedHeader},
		{"control char", func(m *Message) { m.Headers = []Header{{"X-A", "a\x00b"}} }, ErrBadHeaderValue},
		{"display name", func(m *Message) { m.To[0].Name = "Eve\r\nBcc: x@example.test" }, ErrHeaderInjection},
		{"address LF", func(m *Message) { m.To[0].Email = "a@example.test\nBcc: b@example.test" }, ErrHeaderInjection},
		{"address no domain", func(m *Message) { m.To[0].Email = "postmaster" }, ErrBadAddress},
		{"address bad domain", func(m *Message) { m.To[0].Email = "a@-x.test" }, ErrBadAddress},
		{"no from", func(m *Message) { m.From = Address{} }, ErrNoFrom},
		{"filename", func(m *Message) { m.Attachments = []Attachment{{Filename: "a\r\n.txt"}} }, ErrHeaderInjection},
		{"content type", func(m *Message) { m.Attachments = []Attachment{{ContentType: "text/plain\r\nX: y"}} }, ErrHeaderInjection},
		{"content type syntax", func(m *Message) { m.Attachments = []Attachment{{ContentType: "nonsense"}} }, ErrBadContentType},
		{"content type multipart", func(m *Message) { m.Attachments = []Attachment{{ContentType: "multipart/mixed"}} }, ErrBadContentType},
		{"message id", func(m *Message) { m.MessageID = "a b@c" }, ErrBadMessageID},
		{"unfoldable header", func(m *Message) { m.Headers = []Header{{"X-Long", strings.Repeat("a", 1000)}} }, ErrLineTooLong},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m := baseMessage()
			c.edit(m)
			raw, err := Build(m, seeded(7))
			if !errors.Is(err, c.want) {
				t.Fatalf("err = %v, want %v\n%s", err, c.want, raw)
			}
		})
	}
}

func TestCheckAddress(t *testing.T) {
	good := []string{"a@example.test", "first.last+tag@sub.example.test", `"quoted local"@example.test`,
		`"a\"b"@example.test`, "x@[127.0.0.1]", "x@[IPv6:::1]", "a!#$%&'*+-/=?^_`{|}~@x.test"}
	bad := []string{"", "a", "@example.test", "a@", "a..b@x.test", ".a@x.test", "a.@x.test", "a b@x.test",
		"a@x..test", "a@-x.test", "a@x-.test", "a@x_y.test", "a@[1.2.3]", "a@[IPv6:1.2.3.4]", "ü@x.test",
		"a@" + strings.Repeat("x", 64) + ".test", `"a"b"@x.test`, "a@x.test\n"}
	for _, a := range good {
		if err := CheckAddress(a); err != nil {
			t.Errorf("%q: %v", a, err)
		}
	}
	for _, a := range bad {
		if err := CheckAddress(a); err == nil {
			t.Errorf("%q accepted", a)
		}
	}
}

func TestParseAddress(t *testing.T) {
	cases := []struct{ in, name, email string }{
		{"a@example.test", "", "a@example.test"},
		{"<a@example.test>", "", "a@example.test"},
		{"Alice Example <a@example.test>", "Alice Example", "a@example.test"},
		{`"Doe, John" <j@example.test>`, "Doe, John", "j@example.test"},
		{"=?utf-8?q?Zo=C3=AB?= <z@example.test>", "Zoë", "z@example.test"},
		{`"a b"@example.test`, "", `"a b"@example.test`},
	}
	for _, c := range cases {
		a, err := ParseAddress(c.in)
		if err != nil || a.Name != c.name || a.Email != c.email {
			t.Errorf("%q: %+v %v", c.in, a, err)
		}
	}
	for _, in := range []string{"nobody", "a@b@c", "Eve <e@x.test>\r\nBcc: y@x.test", "a@"} {
		if _, err := ParseAddress(in); err == nil {
			t.Errorf("%q accepted", in)
		}
	}
}

func BenchmarkBuildText(b *testing.B) {
	m := baseMessage()
	m.Text = strings.Repeat("Hello there, this is a line of text.\n", 50)
	rnd := seeded(1)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Build(m, rnd); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkBuildAlternativeAttachment(b *testing.B) {
	m := baseMessage()
	m.Subject = "Grüße — a non-ASCII subject"
	m.Text = strings.Repeat("Hello there, this is a line of text.\n", 50)
	m.HTML = strings.Repeat("<p>Hello there, this is a line of HTML.</p>\n", 50)
	m.Attachments = []Attachment{{Filename: "a.bin", Data: make([]byte, 10000)}}
	rnd := seeded(1)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Build(m, rnd); err != nil {
			b.Fatal(err)
		}
	}
}
