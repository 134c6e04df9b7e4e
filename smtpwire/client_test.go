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
	if got := string(AppendAuthPlain(nil, "user", "pass")); got != "AUTH PLAIN AHVzZXIAcGFzcw==\r\n" {
		t.Errorf("AUTH PLAIN: %q", got)
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
