package outbound

import (
	"context"
	"strings"
	"testing"
	"time"

	"gannet/engine/trace"
)

// TestTraceClientSession: a trace filtered by domain sees the delivery
// sessions to that domain — a pooled one from its next transaction, said
// to be open already; the commands, the replies, the body as a size — and
// not the sessions for other domains.
func TestTraceClientSession(t *testing.T) {
	addr := fastReceiver(t, false)
	hub := trace.NewHub(nil)
	m := New(Options{Trace: hub, SMTPPort: int(addr.Port()), TLS: TLSPolicy{Mode: TLSDisabled},
		Limits: func(Path) Limits { return Limits{Connections: 1} }})
	defer m.Close()
	env := &Envelope{From: "s@src.test", Rcpts: []string{"a@dst.test"}, Body: []byte("Subject: t\r\n\r\nsecret body\r\n")}
	deliver := func(domain string, env *Envelope) {
		t.Helper()
		if o := m.Deliver(context.Background(), routeTo(domain, "127.0.0.1"), env); o.Results[0].Status != Delivered {
			t.Fatalf("not delivered: %s", o.Results[0].Reply)
		}
	}
	deliver("dst.test", env) // opens the session before anyone traces
	sub := hub.Subscribe(trace.Filter{Side: trace.Client, Domain: "dst.test"}, 0)
	defer sub.Close()
	deliver("else.test", &Envelope{From: "s@src.test", Rcpts: []string{"x@else.test"}, Body: []byte("Subject: other\r\n\r\nsecret\r\n")})
	deliver("dst.test", env)
	var lines []string
	timeout := time.After(5 * time.Second)
	for !strings.Contains(strings.Join(lines, "\n"), "octets of message data") {
		select {
		case ev := <-sub.Events():
			if ev.Domain != "dst.test" || ev.Side != trace.Client || ev.Session == 0 {
				t.Errorf("event %+v", ev)
			}
			lines = append(lines, string(ev.Kind)+" "+ev.Text)
		case <-timeout:
			t.Fatalf("trace so far:\n%s", strings.Join(lines, "\n"))
		}
	}
	got := strings.Join(lines, "\n")
	for _, w := range []string{"connect session with mx1.dst.test [127.0.0.1:", "(open already; 2 transactions so far)", "command MAIL FROM:<s@src.test>", "command RCPT TO:<a@dst.test>",
		"body 27 octets of message data (elided)"} {
		if !strings.Contains(got, w) {
			t.Errorf("trace lacks %q:\n%s", w, got)
		}
	}
	if strings.Contains(got, "secret") || strings.Contains(got, "x@else.test") {
		t.Errorf("trace shows what it should not:\n%s", got)
	}
}
