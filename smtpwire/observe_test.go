package smtpwire

import (
	"encoding/base64"
	"fmt"
	"strings"
	"testing"
)

// recorder is an Observer that writes what it sees as lines.
type recorder struct{ lines []string }

func (r *recorder) Command(line []byte) { r.lines = append(r.lines, "C: "+string(line)) }
func (r *recorder) Data(n int64)        { r.lines = append(r.lines, fmt.Sprintf("D: %d", n)) }
func (r *recorder) Reply(verb string, reply []byte) {
	r.lines = append(r.lines, "S: "+verb+" "+strings.ReplaceAll(strings.TrimRight(string(reply), "\r\n"), "\r\n", "|"))
}

// feedObserved feeds in to s, answering every event with accept (nil) or the
// reply refuse gives for it.
func feedObserved(s *Session, in string, refuse func(EventKind) *Reply) {
	p := []byte(in)
	for {
		n, ev := s.Feed(p)
		p = p[n:]
		if ev.Kind.WantsResponse() {
			s.Respond(refuse(ev.Kind))
			continue
		}
		if ev.Kind == EventNone && n == 0 || ev.Kind == EventQuit || ev.Kind == EventClose {
			return
		}
	}
}

// TestObserverRefusalsOnly: outside trace mode the observer hears the
// 4xx/5xx replies only, each with the verb it answers, whether the session
// or the host (Respond) refused.
func TestObserverRefusalsOnly(t *testing.T) {
	s := NewSession(testConfig())
	rec := &recorder{}
	s.SetObserver(rec, false)
	feedObserved(s, "MAIL FROM:<a@b.example>\r\nEHLO c.example\r\nMAIL FROM:<a@b.example>\r\nRCPT TO:<x@y.example>\r\n"+
		"RCPT TO:<ok@y.example>\r\nDATA\r\nbody\r\n.\r\nBOGUS\r\nQUIT\r\n", func(k EventKind) *Reply {
		if k == EventRcpt && len(s.env.Rcpts) == 0 && s.rcpt.Addr == "x@y.example" {
			return &ReplyRelayDenied
		}
		return nil
	})
	want := []string{
		"S: MAIL 503 5.5.1 Send EHLO first",
		"S: RCPT 554 5.7.1 Relay access denied",
		"S: UNKNOWN 500 5.5.2 Syntax error, command unrecognized",
	}
	if got := strings.Join(rec.lines, "\n"); got != strings.Join(want, "\n") {
		t.Errorf("observed:\n%s\nwant:\n%s", got, strings.Join(want, "\n"))
	}
}

// TestObserverTrace: in trace mode every command and reply is seen, the
// body only as its size, and AUTH secrets never.
func TestObserverTrace(t *testing.T) {
	cfg := testConfig()
	cfg.AuthMechs = []string{"PLAIN", "LOGIN"}
	s := NewSession(cfg)
	rec := &recorder{}
	s.SetObserver(rec, true)
	secret := base64.StdEncoding.EncodeToString([]byte("\x00user\x00hunter2"))
	feedObserved(s, "EHLO c.example\r\nAUTH PLAIN "+secret+"\r\nAUTH LOGIN\r\n"+base64.StdEncoding.EncodeToString([]byte("user"))+"\r\n"+base64.StdEncoding.EncodeToString([]byte("hunter2"))+"\r\n"+
		"MAIL FROM:<a@b.example>\r\nRCPT TO:<x@y.example>\r\nDATA\r\nsecret body line\r\n.\r\nQUIT\r\n", func(k EventKind) *Reply {
		if k == EventAuth {
			return &ReplyAuthFailed
		}
		return nil
	})
	got := strings.Join(rec.lines, "\n")
	for _, bad := range []string{secret, "hunter2", base64.StdEncoding.EncodeToString([]byte("hunter2")), "secret body", base64.StdEncoding.EncodeToString([]byte("user"))} {
		if strings.Contains(got, bad) {
			t.Errorf("trace shows %q:\n%s", bad, got)
		}
	}
	for _, want := range []string{
		"C: EHLO c.example", "S: EHLO 250-mx.gannet.test|", "C: AUTH PLAIN ***", "S: AUTH 535 5.7.8",
		"C: AUTH LOGIN", "S: AUTH 334 VXNlcm5hbWU6", "C: ***",
		"C: MAIL FROM:<a@b.example>", "S: MAIL 250 2.1.0", "C: RCPT TO:<x@y.example>", "S: RCPT 250 2.1.5",
		"C: DATA", "S: DATA 354", "D: 21", "S: DATA 250 2.0.0", "C: QUIT", "S: QUIT 221",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("trace lacks %q:\n%s", want, got)
		}
	}
}

// TestObserverNoneAllocates: a session with an observer that hears only
// refusals makes no more allocations for a transaction that goes well.
func TestObserverNoneAllocates(t *testing.T) {
	in := []byte("MAIL FROM:<a@b.example>\r\nRCPT TO:<x@y.example>\r\nDATA\r\nbody\r\n.\r\n")
	run := func(obs bool) float64 {
		s := NewSession(testConfig())
		if obs {
			s.SetObserver(&recorder{}, false)
		}
		feedObserved(s, "EHLO c.example\r\n", nil)
		drain(s)
		return testing.AllocsPerRun(100, func() {
			p := in
			for {
				n, ev := s.Feed(p)
				p = p[n:]
				if ev.Kind == EventMessage {
					s.RecycleBody(ev.Body)
				}
				if ev.Kind.WantsResponse() {
					s.Respond(nil)
					continue
				}
				if n == 0 {
					break
				}
			}
			drain(s)
		})
	}
	if without, with := run(false), run(true); with > without {
		t.Errorf("allocations per transaction: %v with an observer, %v without", with, without)
	}
}

// nopObserver hears refusals and does nothing: a host's cost of logging
// them when a session goes well.
type nopObserver struct{}

func (nopObserver) Command([]byte)       {}
func (nopObserver) Data(int64)           {}
func (nopObserver) Reply(string, []byte) {}

// BenchmarkSessionTransactionObserved is BenchmarkSessionTransaction with
// an observer of refusals set, as engine/inbound runs every session.
func BenchmarkSessionTransactionObserved(b *testing.B) {
	body := benchBody(2 << 10)
	var in []byte
	in = append(in, "MAIL FROM:<sender@client.example.test> SIZE=2100 BODY=8BITMIME\r\n"...)
	in = append(in, "RCPT TO:<recipient@dest.example.test>\r\nDATA\r\n"...)
	in = AppendDotStuffed(in, body)
	s := NewSession(testConfig())
	s.SetObserver(nopObserver{}, false)
	s.Feed([]byte("EHLO client.example.test\r\n"))
	drain(s)
	b.ReportAllocs()
	b.SetBytes(int64(len(in)))
	for b.Loop() {
		p := in
		for len(p) > 0 {
			n, ev := s.Feed(p)
			p = p[n:]
			if ev.Kind.WantsResponse() {
				s.Respond(nil)
			}
			if ev.Kind == EventMessage {
				s.RecycleBody(ev.Body)
			}
		}
		s.ConsumeOutput(len(s.Output()))
	}
}
