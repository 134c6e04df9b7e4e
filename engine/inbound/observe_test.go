package inbound

import (
	"strings"
	"sync"
	"testing"
	"time"

	"gannet/engine/trace"
)

// rejectionLog collects the Rejections a server reports.
type rejectionLog struct {
	mu   sync.Mutex
	list []Rejection
}

func (l *rejectionLog) add(r *Rejection) {
	l.mu.Lock()
	defer l.mu.Unlock()
	c := *r
	c.Reply = append([]byte(nil), r.Reply...)
	l.list = append(l.list, c)
}

func (l *rejectionLog) get() []Rejection {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]Rejection(nil), l.list...)
}

// TestRejectionsReported: each 4xx/5xx a client gets is reported once with
// the verb it answers and a per-connection sequence number, up to the 421
// that ends a session with too many errors.
func TestRejectionsReported(t *testing.T) {
	var log rejectionLog
	cfg := testListener()
	cfg.RelayHosts = nil // not a relay client: RCPT gets 554 5.7.1
	_, addr := startServer(t, cfg, &memAcceptor{}, Options{OnRejection: log.add})
	c := dialRaw(t, addr)
	c.expect(220, "")
	c.send("MAIL FROM:<a@b.test>\r\n")
	c.expect(503, "5.5.1")
	c.send("EHLO client.example.test\r\n")
	c.expect(250, "")
	c.send("MAIL FROM:<a@b.test>\r\n")
	c.expect(250, "")
	c.send("RCPT TO:<x@y.test>\r\n")
	c.expect(554, "5.7.1")
	for i := 0; i < 4; i++ {
		c.send("BOGUS\r\n")
		c.expect(500, "5.5.2")
	}
	c.expect(421, "4.4.2")
	var got []Rejection
	waitFor(t, 5*time.Second, "6 rejections", func() bool { got = log.get(); return len(got) >= 7 })
	want := []string{"MAIL 503", "RCPT 554", "UNKNOWN 500", "UNKNOWN 500", "UNKNOWN 500", "UNKNOWN 500", "UNKNOWN 421"}
	for i, r := range got {
		s := r.Command + " " + string(r.Reply[:3])
		if i >= len(want) || s != want[i] || r.Seq != i+1 || r.Listener != cfg.Name || r.Peer.Addr().String() != "127.0.0.1" {
			t.Errorf("rejection %d: %s seq %d listener %q peer %v reply %q", i, s, r.Seq, r.Listener, r.Peer, r.Reply)
		}
	}
	if got[1].Helo == "" {
		t.Error("the rejection after EHLO does not carry the EHLO name")
	}
}

// TestTraceServerSession: a trace subscriber sees a session's commands and
// replies, the body as a size; a session nobody watches publishes nothing.
func TestTraceServerSession(t *testing.T) {
	hub := trace.NewHub(nil)
	_, addr := startServer(t, testListener(), &memAcceptor{}, Options{Trace: hub})
	sub := hub.Subscribe(trace.Filter{Side: trace.Server}, 0)
	defer sub.Close()
	c := dialRaw(t, addr)
	c.hello()
	c.send("MAIL FROM:<a@b.test>\r\nRCPT TO:<x@y.test>\r\nDATA\r\n")
	c.expect(250, "")
	c.expect(250, "")
	c.expect(354, "")
	c.send("Subject: secret\r\n\r\nsecret body\r\n.\r\nQUIT\r\n")
	c.expect(250, "")
	c.expect(221, "")
	var lines []string
	deadline := time.After(5 * time.Second)
	for !strings.Contains(strings.Join(lines, "\n"), "close") {
		select {
		case ev := <-sub.Events():
			lines = append(lines, string(ev.Kind)+" "+ev.Text)
		case <-deadline:
			t.Fatalf("trace so far:\n%s", strings.Join(lines, "\n"))
		}
	}
	got := strings.Join(lines, "\n")
	for _, w := range []string{"connect connection from 127.0.0.1:", "reply 220 mx.gannet.test ESMTP Gannet", "command EHLO",
		"command MAIL FROM:<a@b.test>", "reply 250 2.1.0", "command DATA", "reply 354", "body 35 octets of message data (elided)",
		"reply 250 2.0.0", "command QUIT", "reply 221", "close closed"} {
		if !strings.Contains(got, w) {
			t.Errorf("trace lacks %q:\n%s", w, got)
		}
	}
	if strings.Contains(got, "secret") {
		t.Errorf("trace shows the body:\n%s", got)
	}
}
