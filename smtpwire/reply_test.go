package smtpwire

import (
	"errors"
	"fmt"
	"reflect"
	"testing"
)

func TestReplyAppendTo(t *testing.T) {
	tests := []struct {
		r    Reply
		want string
	}{
		{Reply{Code: 250, Enhanced: "2.0.0", Lines: []string{"OK"}}, "250 2.0.0 OK\r\n"},
		{Reply{Code: 250, Enhanced: "2.1.5", Lines: []string{"one", "two", "three"}}, "250-2.1.5 one\r\n250-2.1.5 two\r\n250 2.1.5 three\r\n"},
		{Reply{Code: 354, Lines: []string{"go ahead"}}, "354 go ahead\r\n"},
		{Reply{Code: 221}, "221\r\n"},
		{Reply{Code: 421, Enhanced: "4.4.2"}, "421 4.4.2\r\n"},
		{Reply{Code: 550, Enhanced: "5.7.1", Lines: []string{"a\r\n250 injected"}}, "550 5.7.1 a  250 injected\r\n"},
		{Reply{Code: 250, Lines: []string{"", "x"}}, "250-\r\n250 x\r\n"},
	}
	for _, tt := range tests {
		if got := string(tt.r.AppendTo(nil)); got != tt.want {
			t.Errorf("%+v: got %q, want %q", tt.r, got, tt.want)
		}
	}
}

func TestReplyClasses(t *testing.T) {
	if !ReplyTooManyRcpts.Transient() || ReplyTooManyRcpts.Permanent() {
		t.Error("452 must be transient")
	}
	if !ReplyRelayDenied.Permanent() || ReplyRelayDenied.Transient() {
		t.Error("554 must be permanent")
	}
	if !ReplyOK.Positive() || !ReplyDataStart.Intermediate() {
		t.Error("classes")
	}
	for r, want := range map[*Reply]string{
		{Code: 250, Enhanced: "2.0.0", Lines: []string{"a", "b"}}: "250 2.0.0 a; b",
		{Code: 421}:                        "421",
		{Code: 554, Lines: []string{"no"}}: "554 no",
		{Code: 550, Enhanced: "5.1.1"}:     "550 5.1.1",
	} {
		if got := r.String(); got != want {
			t.Errorf("String = %q, want %q", got, want)
		}
		if n := testing.AllocsPerRun(10, func() { _ = r.String() }); n > 1 {
			t.Errorf("String of %q: %v allocations, want 1", want, n)
		}
	}
	err := ReplyQueueFull.Err(errors.New("disk full"))
	if err.Error() != "452 4.3.1 Insufficient system storage: disk full" || errors.Unwrap(err).Error() != "disk full" {
		t.Errorf("Error = %q", err.Error())
	}
}

// The contract's replies, exactly (contract.md, "SMTP").
func TestContractReplies(t *testing.T) {
	for _, tt := range []struct {
		r        Reply
		code     int
		enhanced string
	}{
		{ReplyRelayDenied, 554, "5.7.1"}, {ReplyAuthRequired, 530, "5.7.0"}, {ReplyAuthFailed, 535, "5.7.8"},
		{ReplyTooBig, 552, "5.3.4"}, {ReplyTooManyRcpts, 452, "4.5.3"}, {ReplyQueueFull, 452, "4.3.1"},
		{ReplySyntax, 501, "5.5.4"}, {ReplyUnknownCommand, 500, "5.5.2"}, {ReplyLineTooLong, 500, "5.5.2"},
		{ReplyBadSequence, 503, "5.5.1"}, {ReplyTimeout, 421, "4.4.2"}, {ReplyTooManyErrors, 421, "4.4.2"},
		{ReplyBareLF, 550, "5.6.0"},
	} {
		if tt.r.Code != tt.code || tt.r.Enhanced != tt.enhanced {
			t.Errorf("%v: want %d %s", tt.r, tt.code, tt.enhanced)
		}
	}
}

func TestParseReply(t *testing.T) {
	tests := []struct {
		in   string
		want Reply
		n    int
	}{
		{"250 2.0.0 OK\r\n", Reply{250, "2.0.0", []string{"OK"}}, 14},
		{"250 OK\r\nrest", Reply{250, "", []string{"OK"}}, 8},
		{"220 mx.example ESMTP\n", Reply{220, "", []string{"mx.example ESMTP"}}, 21},
		{"250-mx.example\r\n250-PIPELINING\r\n250 SIZE 100\r\n", Reply{250, "", []string{"mx.example", "PIPELINING", "SIZE 100"}}, 46},
		{"550-5.1.1 no\r\n550 5.1.1 such user\r\n", Reply{550, "5.1.1", []string{"no", "such user"}}, 35},
		{"550-5.1.1 no\r\n550 such user\r\n", Reply{550, "5.1.1", []string{"no", "such user"}}, 29},
		{"250 2.0.0\r\n", Reply{250, "2.0.0", []string{""}}, 11},
		{"354\r\n", Reply{354, "", []string{""}}, 5},
		{"250 5.0.0 not enhanced\r\n", Reply{250, "", []string{"5.0.0 not enhanced"}}, 24},
		{"451 4.4.2x text\r\n", Reply{451, "", []string{"4.4.2x text"}}, 17},
		{"452 4.5.3 Too many\r\n", Reply{452, "4.5.3", []string{"Too many"}}, 20},
		{"554 5.7.123 ok\r\n", Reply{554, "5.7.123", []string{"ok"}}, 16},
	}
	for _, tt := range tests {
		r, n, err := ParseReply([]byte(tt.in))
		if err != nil || n != tt.n || !reflect.DeepEqual(r, tt.want) {
			t.Errorf("%q: got %+v %d %v, want %+v %d", tt.in, r, n, err, tt.want, tt.n)
		}
	}
	bad := []struct {
		in  string
		err error
	}{
		{"", ErrIncomplete},
		{"250 OK", ErrIncomplete},
		{"250-first\r\n", ErrIncomplete},
		{"250-first\r\n250 se", ErrIncomplete},
		{"25 OK\r\n", ErrMalformedReply},
		{"abc OK\r\n", ErrMalformedReply},
		{"250xOK\r\n", ErrMalformedReply},
		{"250-a\r\n251 b\r\n", ErrMalformedReply},
		{"250 " + string(make([]byte, MaxReplyLine+1)), ErrReplyTooLong},
	}
	for _, tt := range bad {
		if _, _, err := ParseReply([]byte(tt.in)); err != tt.err {
			t.Errorf("%.30q: err %v, want %v", tt.in, err, tt.err)
		}
	}
}

// AppendTo and ParseReply are inverses for well-formed replies.
func TestReplyRoundTrip(t *testing.T) {
	for _, r := range []Reply{ReplyOK, ReplyDataStart, ReplyHelp, {Code: 250, Enhanced: "2.0.0", Lines: []string{"a", "b", "c"}}} {
		got, n, err := ParseReply(r.AppendTo(nil))
		if err != nil || n != len(r.AppendTo(nil)) || !reflect.DeepEqual(got, r) {
			t.Errorf("%v: got %+v %v", r, got, err)
		}
	}
}

func FuzzParseReply(f *testing.F) {
	for _, s := range []string{"250 2.0.0 OK\r\n", "250-a\r\n250 b\r\n", "354\r\n", "550-5.1.1 x\n550 y\n", "25", "999 9.9.9 x\r\n"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		r, n, err := ParseReply(b)
		if err != nil {
			return
		}
		if n <= 0 || n > len(b) || len(r.Lines) == 0 || r.Code < 0 || r.Code > 999 {
			t.Fatalf("bad result %+v n=%d", r, n)
		}
		// What parsed re-encodes to something that parses to the same reply.
		again, m, err := ParseReply(r.AppendTo(nil))
		if err != nil || m == 0 || again.Code != r.Code || len(again.Lines) != len(r.Lines) {
			t.Fatalf("re-parse of %+v: %+v %v", r, again, err)
		}
	})
}

// TestReplyMemo: a session's replies read through its memo are what
// ParseReply makes of them, whether they come again or not, and errors
// are ParseReply's.
func TestReplyMemo(t *testing.T) {
	var m replyMemo
	replies := []string{
		"250 2.1.0 Sender OK\r\n", "250 2.1.5 Recipient OK\r\n", "250 2.0.0 OK id=1\r\n",
		"250 2.1.0 Sender OK\r\n", "250 2.1.5 Recipient OK\r\n", "250 2.0.0 OK id=2\r\n",
		"550-5.1.1 no\r\n550 5.1.1 such user\r\n", "250 2.1.5 Recipient OK\r\n", "250 2.1.5 Recipient OK\r\n",
		"250 2.1.0 Sender OK\r\n", "250 2.1.0 Sender OK\n", "251 2.1.0 Sender OK\r\n",
	}
	for _, raw := range replies {
		want, wantN, _ := ParseReply([]byte(raw + "250 next\r\n"))
		got, n, err := m.parse([]byte(raw + "250 next\r\n"))
		if err != nil || n != wantN || !reflect.DeepEqual(got, want) {
			t.Errorf("%q: got %+v, %d, %v; want %+v, %d", raw, got, n, err, want, wantN)
		}
	}
	for _, bad := range []string{"250 partial", "25x no\r\n", "250-a\r\n251 b\r\n"} {
		_, _, want := ParseReply([]byte(bad))
		if _, n, err := m.parse([]byte(bad)); err != want || n != 0 {
			t.Errorf("%q: got %d, %v; want %v", bad, n, err, want)
		}
	}
}

func BenchmarkParseReply(b *testing.B) {
	single := []byte("250 2.1.5 Recipient OK\r\n")
	multi := []byte("250-mx.example.test\r\n250-PIPELINING\r\n250-SIZE 10485760\r\n250-8BITMIME\r\n250-SMTPUTF8\r\n250-ENHANCEDSTATUSCODES\r\n250 CHUNKING\r\n")
	b.Run("single", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(single)))
		for b.Loop() {
			if _, _, err := ParseReply(single); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("ehlo", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(multi)))
		for b.Loop() {
			if _, _, err := ParseReply(multi); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkReplyString: the one-line form every delivery outcome's log
// record gets, in one allocation.
func BenchmarkReplyString(b *testing.B) {
	r := Reply{Code: 250, Enhanced: "2.0.0", Lines: []string{"Ok: queued as 4F2A1B3C9D"}}
	b.ReportAllocs()
	for b.Loop() {
		if len(r.String()) == 0 {
			b.Fatal("empty")
		}
	}
}

func BenchmarkReplyAppendTo(b *testing.B) {
	b.ReportAllocs()
	buf := make([]byte, 0, 256)
	for b.Loop() {
		buf = ReplyRcptOK.AppendTo(buf[:0])
	}
}

func TestReplyFor(t *testing.T) {
	fallback := Reply{Code: 451, Enhanced: "4.3.0", Lines: []string{"local error"}}
	perm := Reply{Code: 556, Enhanced: "5.1.10", Lines: []string{"null MX"}}
	cause := errors.New("cause")
	wrapped := fmt.Errorf("delivery: %w", &Error{Reply: perm, Cause: cause})
	if got := ReplyFor(wrapped, fallback); got.Code != 556 || got.Enhanced != "5.1.10" {
		t.Errorf("ReplyFor(wrapped *Error) = %v", got)
	}
	if !errors.Is(wrapped, cause) {
		t.Error("errors.Is does not reach the cause through *Error")
	}
	if got := ReplyFor(errors.New("unknown"), fallback); got.Code != 451 {
		t.Errorf("ReplyFor(unknown) = %v, want the transient fallback", got)
	}
	var e *Error
	if errors.As(wrapped, &e); !e.Permanent() || e.Temporary() {
		t.Errorf("5xx: Permanent %v Temporary %v", e.Permanent(), e.Temporary())
	}
	if e := (&Error{Reply: fallback}); e.Permanent() || !e.Temporary() {
		t.Errorf("4xx: Permanent %v Temporary %v", e.Permanent(), e.Temporary())
	}
}
