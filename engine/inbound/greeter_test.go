package inbound

import (
	"context"
	"sync"
	"testing"

	"gannet/smtpwire"
)

// scriptGreeter answers by EHLO name, as a policy script's
// smtp_server_greeting would: "bad.test" is refused, anything else gets a
// state naming the EHLO name; every call is recorded.
type scriptGreeter struct {
	mu    sync.Mutex
	calls []Greeting
}

func (g *scriptGreeter) Greet(_ context.Context, in *Greeting) (any, *smtpwire.Reply) {
	g.mu.Lock()
	g.calls = append(g.calls, *in)
	g.mu.Unlock()
	if in.Helo == "busy.test" {
		return nil, &smtpwire.Reply{Code: 421, Enhanced: "4.7.0", Lines: []string{"come back later"}}
	}
	if in.Helo == "bad.test" {
		return nil, &smtpwire.Reply{Code: 550, Enhanced: "5.7.1", Lines: []string{"not from you"}}
	}
	return "state of " + in.Helo, nil
}

// TestGreeter: the Greeter runs after EHLO (pipelined commands wait for
// it), its state reaches the Acceptor with the message, and its refusal
// is the answer to MAIL; a 421 refusal ends the session.
func TestGreeter(t *testing.T) {
	acc := &memAcceptor{}
	gr := &scriptGreeter{}
	_, addr := startServer(t, testListener(), acc, Options{Greeter: gr})

	c := dialRaw(t, addr)
	c.expect(220, "")
	// EHLO and the whole transaction in one write: MAIL waits for the
	// greeting hook.
	c.send("EHLO good.test\r\nMAIL FROM:<a@example.test>\r\nRCPT TO:<b@example.test>\r\nDATA\r\n")
	c.expect(250, "")
	c.expect(250, "2.1.0")
	c.expect(250, "2.1.5")
	c.expect(354, "")
	c.send("Subject: x\r\n\r\nbody\r\n.\r\n")
	c.expect(250, "2.0.0")
	msgs := acc.messages()
	if len(msgs) != 1 || msgs[0].Greeting != "state of good.test" {
		t.Fatalf("the Acceptor got %d messages, greeting state %v", len(msgs), msgs[0].Greeting)
	}
	// A second EHLO replaces the state; a refusal refuses MAIL.
	c.send("EHLO bad.test\r\nMAIL FROM:<a@example.test>\r\n")
	c.expect(250, "")
	c.expect(550, "5.7.1")
	c.send("QUIT\r\n")
	c.expect(221, "")

	c = dialRaw(t, addr)
	c.expect(220, "")
	c.send("EHLO busy.test\r\nMAIL FROM:<a@example.test>\r\n")
	c.expect(250, "")
	c.expect(421, "4.7.0")
	c.expectClosed()

	gr.mu.Lock()
	n := len(gr.calls)
	first := gr.calls[0]
	gr.mu.Unlock()
	if n != 3 || first.Helo != "good.test" || first.Listener != "test-in" || first.Peer.Addr().String() != "127.0.0.1" {
		t.Errorf("greeter calls %d, first %+v", n, first)
	}
}
