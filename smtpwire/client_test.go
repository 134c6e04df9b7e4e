package smtpwire

import (
	"reflect"
	"testing"
)

func TestParseEHLO(t *testing.T) {
	r, _, err := ParseReply([]byte("250-mx.example\r\n250-PIPELINING\r\n250-SIZE 35882577\r\n250-8BITMIME\r\n" +
		"250-AUTH LOGIN PLAIN XOAUTH2\r\n250-AUTH=LOGIN PLAIN\r\n250-ENHANCEDSTATUSCODES\r\n250-smtputf8\r\n" +
		"250-STARTTLS\r\n250-DSN\r\n250-BINARYMIME\r\n250-REQUIRETLS\r\n250 CHUNKING\r\n"))
	if err != nil {
		t.Fatal(err)
	}
	want := Extensions{Pipelining: true, StartTLS: true, EightBitMIME: true, SMTPUTF8: true, Chunking: true,
		BinaryMIME: true, EnhancedStatusCodes: true, DSN: true, Size: 35882577, Auth: []string{"LOGIN", "PLAIN", "XOAUTH2"}, RequireTLS: true}
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

func TestAppendAuthPlain(t *testing.T) {
	if got := string(AppendAuthPlain(nil, "user", "pass")); got != "AUTH PLAIN AHVzZXIAcGFzcw==\r\n" {
		t.Errorf("AUTH PLAIN: %q", got)
	}
}
