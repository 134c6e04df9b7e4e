package smtpwire

import (
	"strings"
	"testing"
)

func TestParseCommand(t *testing.T) {
	tests := []struct {
		in   string
		verb Verb
		arg  string
		err  error
	}{
		{"EHLO client.example\r\n", VerbEHLO, "client.example", nil},
		{"ehlo client.example", VerbEHLO, "client.example", nil},
		{"MaIl FROM:<a@b>", VerbMAIL, "FROM:<a@b>", nil},
		{"RCPT  TO:<a@b>  ", VerbRCPT, "TO:<a@b>", nil},
		{"DATA", VerbDATA, "", nil},
		{"quit\n", VerbQUIT, "", nil},
		{"STARTTLS", VerbSTARTTLS, "", nil},
		{"starttls\r\n", VerbSTARTTLS, "", nil},
		{"BDAT 100 LAST", VerbBDAT, "100 LAST", nil},
		{"AUTH\tPLAIN", VerbAUTH, "PLAIN", nil},
		{"NOOP", VerbNOOP, "", nil},
		{"", 0, "", ErrUnknownCommand},
		{" MAIL", 0, "", ErrUnknownCommand},
		{"MAILX FROM:<>", 0, "", ErrUnknownCommand},
		{"STARTTLSX", 0, "", ErrUnknownCommand},
		{"GET / HTTP/1.1", 0, "", ErrUnknownCommand},
		{"M\xc3\xa9IL", 0, "", ErrEightBit},
	}
	for _, tt := range tests {
		c, err := ParseCommand([]byte(tt.in))
		if err != tt.err || c.Verb != tt.verb || string(c.Arg) != tt.arg {
			t.Errorf("%q: got %v %q %v, want %v %q %v", tt.in, c.Verb, c.Arg, err, tt.verb, tt.arg, tt.err)
		}
	}
}

func TestParseMail(t *testing.T) {
	good := []struct {
		in   string
		want MailCmd
	}{
		{"FROM:<a@b.example>", MailCmd{From: Path{Addr: "a@b.example"}}},
		{"from:<>", MailCmd{}},
		{"FROM: <a@b.example>", MailCmd{From: Path{Addr: "a@b.example"}}},
		{"FROM:a@b.example SIZE=1000", MailCmd{From: Path{Addr: "a@b.example"}, Size: 1000}},
		{"FROM:<a@b.example> SIZE=42 BODY=8BITMIME", MailCmd{From: Path{Addr: "a@b.example"}, Size: 42, Body8BIT: true}},
		{"FROM:<a@b.example> body=7bit", MailCmd{From: Path{Addr: "a@b.example"}}},
		{"FROM:<a@b.example> BODY=BINARYMIME", MailCmd{From: Path{Addr: "a@b.example"}, Body8BIT: true, BodyBinary: true}},
		{"FROM:<é@b.example> SMTPUTF8", MailCmd{From: Path{Addr: "é@b.example"}, SMTPUTF8: true}},
		{"FROM:<a@b.example> RET=HDRS ENVID=QQ314159 AUTH=<>", MailCmd{From: Path{Addr: "a@b.example"}, Ret: RetHeaders, EnvID: "QQ314159"}},
		{"FROM:<a@b.example> ret=full envid=a+2Bb+3Dc", MailCmd{From: Path{Addr: "a@b.example"}, Ret: RetFull, EnvID: "a+b=c"}},
	}
	for _, tt := range good {
		m, err := ParseMail([]byte(tt.in))
		if err != nil || m != tt.want {
			t.Errorf("%q: got %+v %v, want %+v", tt.in, m, err, tt.want)
		}
	}
	bad := []struct {
		in  string
		err error
	}{
		{"<a@b.example>", ErrSyntax},
		{"FROM:", ErrPathSyntax},
		{"FROM:<a@b.example>SIZE=1", ErrPathSyntax},
		{"FROM:<a@b.example> SIZE", ErrSyntax},
		{"FROM:<a@b.example> SIZE=12x", ErrSyntax},
		{"FROM:<a@b.example> SIZE=9999999999999999999", ErrSyntax},
		{"FROM:<a@b.example> BODY=9BIT", ErrSyntax},
		{"FROM:<a@b.example> SMTPUTF8=yes", ErrSyntax},
		{"FROM:<a@b.example> XFOO=1", ErrUnknownParam},
		{"FROM:<a@b.example> NOTIFY=NEVER", ErrUnknownParam},
		{"FROM:<a@b.example> =1", ErrSyntax},
		{"FROM:<a@b.example> ENVID=a\x01", ErrSyntax},
		{"FROM:<a@b.example> RET=BODY", ErrSyntax},
		{"FROM:<a@b.example> RET=FULL RET=HDRS", ErrSyntax},
		{"FROM:<a@b.example> RET", ErrSyntax},
		{"FROM:<a@b.example> ENVID=", ErrSyntax},
		{"FROM:<a@b.example> ENVID=a ENVID=b", ErrSyntax},
		{"FROM:<a@b.example> ENVID=a+2", ErrSyntax},
		{"FROM:<a@b.example> ENVID=a+2b", ErrSyntax},
		{"FROM:<a@b.example> ENVID=a+ZZ", ErrSyntax},
		{"FROM:<a@b.example> ENVID=" + strings.Repeat("x", 101), ErrSyntax},
		{"FROM:<é@b.example>", ErrNeedUTF8},
	}
	for _, tt := range bad {
		if _, err := ParseMail([]byte(tt.in)); err != tt.err {
			t.Errorf("%q: err %v, want %v", tt.in, err, tt.err)
		}
	}
}

func TestParseRcpt(t *testing.T) {
	good := map[string]string{
		"TO:<b@c.example>": "b@c.example",
		"to:<Postmaster>":  "Postmaster",
		"TO:<b@c.example> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;b@c.example": "b@c.example",
		"TO:<b@c.example> ORCPT=utf-8;\xc3\xa9@c.example":                  "b@c.example",
	}
	for in, want := range good {
		r, err := ParseRcpt([]byte(in))
		if err != nil || r.To.Addr != want {
			t.Errorf("%q: got %q %v", in, r.To.Addr, err)
		}
	}
	dsn := map[string]Path{
		"TO:<b@c.example> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;b@c.example": {Addr: "b@c.example", Notify: NotifySuccess | NotifyFailure, ORcpt: "rfc822;b@c.example"},
		"TO:<b@c.example> notify=never":                                    {Addr: "b@c.example", Notify: NotifyNever},
		"TO:<b@c.example> NOTIFY=DELAY,SUCCESS":                            {Addr: "b@c.example", Notify: NotifyDelay | NotifySuccess},
		"TO:<b@c.example> ORCPT=rfc822;Bob+20Smith+2B1@c.example":          {Addr: "b@c.example", ORcpt: "rfc822;Bob Smith+1@c.example"},
		"TO:<b@c.example> ORCPT=utf-8;\xc3\xa9@c.example":                  {Addr: "b@c.example", ORcpt: "utf-8;\xc3\xa9@c.example"},
	}
	for in, want := range dsn {
		r, err := ParseRcpt([]byte(in))
		if err != nil || r.To != want {
			t.Errorf("%q: got %+v %v, want %+v", in, r.To, err, want)
		}
	}
	bad := map[string]error{
		"TO:<b@c.example> NOTIFY=NEVER,SUCCESS":            ErrSyntax,
		"TO:<b@c.example> NOTIFY=SUCCESS,":                 ErrSyntax,
		"TO:<b@c.example> NOTIFY=SUCCESS,SUCCESS":          ErrSyntax,
		"TO:<b@c.example> NOTIFY=ALWAYS":                   ErrSyntax,
		"TO:<b@c.example> NOTIFY=NEVER NOTIFY=NEVER":       ErrSyntax,
		"TO:<b@c.example> ORCPT=b@c.example":               ErrSyntax,
		"TO:<b@c.example> ORCPT=rfc822;":                   ErrSyntax,
		"TO:<b@c.example> ORCPT=;b@c.example":              ErrSyntax,
		"TO:<b@c.example> ORCPT=rfc822;b+4":                ErrSyntax,
		"TO:<b@c.example> ORCPT=rfc822;\xc3\xa9@c.example": ErrSyntax,
		"TO:<>":                    ErrPathSyntax,
		"<b@c.example>":            ErrSyntax,
		"TO:<b@c.example> SIZE=1":  ErrUnknownParam,
		"TO:<b@c.example> NOTIFY":  ErrSyntax,
		"TO:<b@c.example> NOTIFY=": ErrSyntax,
	}
	for in, want := range bad {
		if _, err := ParseRcpt([]byte(in)); err != want {
			t.Errorf("%q: err %v, want %v", in, err, want)
		}
	}
}

func FuzzParseCommand(f *testing.F) {
	for _, s := range []string{
		"EHLO x.example\r\n", "MAIL FROM:<a@b> SIZE=10 BODY=8BITMIME SMTPUTF8\r\n", "RCPT TO:<b@c> NOTIFY=NEVER\r\n",
		"DATA\r\n", "BDAT 10 LAST\r\n", "AUTH PLAIN AHVAcA==\r\n", "mail from:<\"q\"@[IPv6:::1]>\r\n", "\xff\xfe\r\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		c, err := ParseCommand(line)
		if err != nil {
			if _, ok := err.(*Error); !ok {
				t.Fatalf("error %v is not an *Error", err)
			}
			return
		}
		switch c.Verb {
		case VerbMAIL:
			if m, err := ParseMail(c.Arg); err == nil && len(m.From.Addr) > MaxAddress {
				t.Fatal("overlong address")
			}
		case VerbRCPT:
			if r, err := ParseRcpt(c.Arg); err == nil && r.To.Addr == "" {
				t.Fatal("null forward-path accepted")
			}
		case VerbUnknown:
			t.Fatal("unknown verb without error")
		}
	})
}

func BenchmarkParseCommand(b *testing.B) {
	lines := [][]byte{
		[]byte("MAIL FROM:<sender@client.example.test> SIZE=2048 BODY=8BITMIME\r\n"),
		[]byte("RCPT TO:<recipient@dest.example.test>\r\n"),
		[]byte("NOOP\r\n"),
		[]byte("DATA\r\n"),
	}
	b.ReportAllocs()
	var m mailArgs
	for b.Loop() {
		for _, l := range lines {
			c, err := ParseCommand(l)
			if err != nil {
				b.Fatal(err)
			}
			switch c.Verb {
			case VerbMAIL:
				if err := parseMailArgs(c.Arg, &m); err != nil {
					b.Fatal(err)
				}
			case VerbRCPT:
				var r rcptArgs
				if err := parseRcptArgs(c.Arg, &r); err != nil {
					b.Fatal(err)
				}
			}
		}
	}
}
