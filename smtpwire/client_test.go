package smtpwire

import (
	"reflect"
	"testing"
)

func TestParseEHLO(t *testing.T) {
	r, _, err := ParseReply([]byte("250-mx.example\r\n250-PIPELINING\r\n250-SIZE 35882577\r\n250-8BITMIME\r\n" +
		"250-AUTH LOGIN PLAIN XOAUTH2\r\n250-AUTH=LOGIN PLAIN\r\n250-ENHANCEDSTATUSCODES\r\n250-smtputf8\r\n" +
		"250-STARTTLS\r\n250-DSN\r\n250-BINARYMIME\r\n250 CHUNKING\r\n"))
	if err != nil {
		t.Fatal(err)
	}
	want := Extensions{Pipelining: true, StartTLS: true, EightBitMIME: true, SMTPUTF8: true, Chunking: true,
		BinaryMIME: true, EnhancedStatusCodes: true, DSN: true, Size: 35882577, Auth: []string{"LOGIN", "PLAIN", "XOAUTH2"}}
	if got := ParseEHLO(r); !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v\nwant %+v", got, want)
	}
	if got := ParseEHLO(Reply{Code: 250, Lines: []string{"mx"}}); !reflect.DeepEqual(got, Extensions{}) {
		t.Errorf("HELO-style reply: %+v", got)
	}
	if got := ParseEHLO(Reply{Code: 502, Lines: []string{"x", "PIPELINING"}}); got.Pipelining {
		t.Error("extensions read from a refusal")
	}
}

func TestAppendEnvelope(t *testing.T) {
	got := string(AppendEnvelope(nil, Path{"a@b.example"}, []Path{{"c@d.example"}, {"e@f.example"}},
		MailOptions{Size: 2048, Body8BIT: true, SMTPUTF8: true}))
	want := "MAIL FROM:<a@b.example> SIZE=2048 BODY=8BITMIME SMTPUTF8\r\nRCPT TO:<c@d.example>\r\nRCPT TO:<e@f.example>\r\nDATA\r\n"
	if got != want {
		t.Errorf("got %q\nwant %q", got, want)
	}
	if got := string(AppendEnvelope(nil, Path{}, []Path{{"c@d.example"}}, MailOptions{})); got != "MAIL FROM:<>\r\nRCPT TO:<c@d.example>\r\nDATA\r\n" {
		t.Errorf("null sender: %q", got)
	}
	if got := string(AppendEnvelopeBDAT(nil, Path{"a@b.example"}, []Path{{"c@d.example"}}, MailOptions{Body8BIT: true}, 1234)); got != "MAIL FROM:<a@b.example> BODY=8BITMIME\r\nRCPT TO:<c@d.example>\r\nBDAT 1234 LAST\r\n" {
		t.Errorf("envelope with BDAT: %q", got)
	}
	if got := string(AppendBDAT(nil, []byte("abc"), true)); got != "BDAT 3 LAST\r\nabc" {
		t.Errorf("BDAT: %q", got)
	}
	if got := string(AppendAuthPlain(nil, "user", "pass")); got != "AUTH PLAIN AHVzZXIAcGFzcw==\r\n" {
		t.Errorf("AUTH PLAIN: %q", got)
	}
}

// The client helpers against the server session: a pipelined transaction
// with one refused recipient, replies read in pieces.
func TestClientAgainstSession(t *testing.T) {
	s := NewSession(testConfig())
	s.Feed([]byte("EHLO client.example\r\n"))
	ehlo, _, err := ParseReply(s.Output())
	if err != nil {
		t.Fatal(err)
	}
	ext := ParseEHLO(ehlo)
	if !ext.Pipelining || !ext.Chunking || ext.Size != 1<<20 || !ext.EnhancedStatusCodes || !ext.SMTPUTF8 {
		t.Fatalf("extensions %+v", ext)
	}
	s.ConsumeOutput(len(s.Output()))

	rcpts := []Path{{"ok1@d.example"}, {"denied@elsewhere.example"}, {"ok2@d.example"}}
	body := []byte("Subject: t\n\n.leading dot\n.\nend")
	in := AppendEnvelope(nil, Path{"a@client.example"}, rcpts, MailOptions{Size: int64(len(body))})
	var msg Event
	for len(in) > 0 {
		n, ev := s.Feed(in)
		in = in[n:]
		switch ev.Kind {
		case EventRcpt:
			if ev.Rcpt.Domain() != "d.example" {
				s.Respond(&ReplyRelayDenied)
				continue
			}
			s.Respond(nil)
		case EventMail:
			s.Respond(nil)
		}
	}
	tr := NewTxnReplies(len(rcpts))
	out := s.Output()
	var done bool
	var pending []byte
	for i := 0; i < len(out) && !done; i += 7 { // replies arrive in pieces
		pending = append(pending, out[i:min(i+7, len(out))]...)
		var n int
		n, done, err = tr.Feed(pending)
		if err != nil {
			t.Fatal(err)
		}
		pending = pending[n:]
	}
	if !done || !tr.Done() {
		t.Fatal("replies not complete")
	}
	res := tr.Result
	if res.Mail.Code != 250 || len(res.Rcpts) != 3 || res.Rcpts[1].Code != 554 || res.AcceptedRcpts() != 2 || !res.SendBody() || res.DotOnly() {
		t.Fatalf("result %+v", res)
	}
	s.ConsumeOutput(len(s.Output()))
	data := AppendDotStuffed(nil, body)
	n, ev := s.Feed(data)
	msg = ev
	if n != len(data) || msg.Kind != EventMessage {
		t.Fatalf("message: %v n=%d/%d", msg.Kind, n, len(data))
	}
	if got, want := string(msg.Body), string(AppendNormalized(nil, body)); got != want {
		t.Errorf("body %q, want %q", got, want)
	}
	if len(msg.Envelope.Rcpts) != 2 || msg.Envelope.Rcpts[1].Addr != "ok2@d.example" {
		t.Errorf("rcpts %v", msg.Envelope.Rcpts)
	}
	s.Respond(&Reply{Code: 250, Enhanced: "2.0.0", Lines: []string{"OK id=42"}})
	final, _, err := ParseReply(s.Output())
	if err != nil || final.String() != "250 2.0.0 OK id=42" {
		t.Errorf("final %v %v", final, err)
	}
}

func TestTxnRepliesRefusedMail(t *testing.T) {
	tr := NewTxnReplies(2)
	in := []byte("452 4.3.1 full\r\n503 5.5.1 Need MAIL\r\n503 5.5.1 Need MAIL\r\n503 5.5.1 Need MAIL\r\nEXTRA")
	n, done, err := tr.Feed(in)
	if err != nil || !done || string(in[n:]) != "EXTRA" {
		t.Fatalf("n=%d done=%v err=%v", n, done, err)
	}
	if tr.Result.SendBody() || tr.Result.DotOnly() || !tr.Result.Mail.Transient() {
		t.Errorf("%+v", tr.Result)
	}
	if _, _, err := NewTxnReplies(0).Feed([]byte("xyz\r\n")); err != ErrMalformedReply {
		t.Errorf("malformed: %v", err)
	}
}

func BenchmarkAppendEnvelope(b *testing.B) {
	from := Path{"sender@client.example.test"}
	rcpts := []Path{{"a@dest.example.test"}, {"b@dest.example.test"}}
	buf := make([]byte, 0, 512)
	b.ReportAllocs()
	for b.Loop() {
		buf = AppendEnvelope(buf[:0], from, rcpts, MailOptions{Size: 2048, Body8BIT: true})
	}
}
