package outbound

import (
	"bytes"
	"context"
	"net/netip"
	"strings"
	"testing"

	bsink "gannet/bench/smtpsink/sink"
)

// bdatBodies are messages whose bytes must arrive exactly as sent: lines
// that start with dots (which DATA would stuff and BDAT must not), 8-bit
// text and large bodies — which go in one writev, also dot-stuffed — one
// with a dot line in every seven, one starting with a dot, and one with
// more dot lines than a writev takes (maxPieces).
func bdatBodies() []string {
	line := "A line of a large message, long enough to matter.\r\n"
	big := strings.Repeat(line, 6000) // ~300 KB
	dotted := strings.Repeat(line+line+line+"."+line+line+line+"..\r\n", 300)
	return []string{
		testBody,
		"Subject: dots\r\n\r\n.leading dot\r\n..two dots\r\n.\r\nend\r\n",
		"Subject: caf\xc3\xa9\r\n\r\nna\xc3\xafve 8-bit body\r\n",
		"Subject: big\r\n\r\n" + big,
		"Subject: dotted\r\n\r\n" + dotted,
		".x\r\n" + dotted,
		"Subject: dots\r\n\r\n" + strings.Repeat(".\r\n", maxPieces) + big[:800*len(line)],
	}
}

// To a server that offers CHUNKING and PIPELINING, messages go as one BDAT
// LAST chunk each (RFC 3030) and arrive byte for byte; with NoChunking the
// same server gets DATA.
func TestBDATWhenOffered(t *testing.T) {
	for _, noChunking := range []bool{false, true} {
		snk := startBenchSink(t, bsink.Config{Keep: true, Chunking: true})
		port := netip.MustParseAddrPort(snk.Addr()).Port()
		m := newTestManager(t, port, func(o *Options) { o.NoChunking = noChunking })
		bodies := bdatBodies()
		for i, b := range bodies {
			o := m.Deliver(context.Background(), routeTo("dst.test", "127.0.0.1"), env(b, "r"+itoa(i)+"@dst.test"))
			wantStatuses(t, o, Delivered)
		}
		msgs := snk.Messages()
		if len(msgs) != len(bodies) {
			t.Fatalf("noChunking=%v: %d messages at the sink, want %d", noChunking, len(msgs), len(bodies))
		}
		for i, msg := range msgs {
			if msg.Chunked == noChunking {
				t.Errorf("noChunking=%v: message %d chunked=%v", noChunking, i, msg.Chunked)
			}
			if !bytes.Equal(msg.Data, []byte(bodies[i])) {
				t.Errorf("noChunking=%v: message %d differs (%d bytes, sent %d)", noChunking, i, len(msg.Data), len(bodies[i]))
			}
		}
		if n := snk.Stats().Connections; n != 1 {
			t.Errorf("noChunking=%v: %d connections, want 1 (reused)", noChunking, n)
		}
	}
}

// With BDAT the refusals land where they belong: a refused recipient gets its
// RCPT reply while the others get the BDAT reply; a refused chunk is every
// accepted recipient's answer; a refused MAIL everyone's; and the connection
// stays usable for the next message after each (RSET first).
func TestBDATRefusals(t *testing.T) {
	snk := startBenchSink(t, bsink.Config{Keep: true, Chunking: true})
	port := netip.MustParseAddrPort(snk.Addr()).Port()
	m := newTestManager(t, port, nil)
	route := routeTo("dst.test", "127.0.0.1")
	deliver := func(rcpts ...string) Outcome {
		return m.Deliver(context.Background(), route, env(testBody, rcpts...))
	}
	fail := func(spec string) {
		t.Helper()
		f, err := bsink.ParseFailure(spec)
		if err != nil {
			t.Fatal(err)
		}
		snk.SetFaults(bsink.Faults{Failures: []bsink.Failure{f}})
	}

	fail("rcpt~bad:550:1:5.1.1 no such user")
	o := deliver("good@dst.test", "bad@dst.test")
	wantStatuses(t, o, Delivered, Bounced)
	if o.Results[1].Reply.Code != 550 {
		t.Errorf("refused recipient's reply %s", o.Results[1].Reply)
	}
	o = deliver("bad1@dst.test", "bad2@dst.test")
	wantStatuses(t, o, Bounced, Bounced)

	fail("dot:452:1:4.3.1 out of storage")
	o = deliver("a@dst.test", "b@dst.test")
	wantStatuses(t, o, Transient, Transient)
	if o.Results[0].Reply.Code != 452 {
		t.Errorf("refused chunk: reply %s", o.Results[0].Reply)
	}

	fail("mail:550:1:5.7.1 sender blocked")
	o = deliver("a@dst.test")
	wantStatuses(t, o, Bounced)

	snk.SetFaults(bsink.Faults{})
	o = deliver("after@dst.test")
	wantStatuses(t, o, Delivered)

	msgs := snk.Messages()
	if len(msgs) != 2 {
		t.Fatalf("%d messages at the sink, want 2 (good@ and after@)", len(msgs))
	}
	if got := strings.Join(msgs[0].Rcpts, ","); got != "good@dst.test" {
		t.Errorf("first message for %s", got)
	}
	if !msgs[1].Chunked || !bytes.Equal(msgs[1].Data, []byte(testBody)) {
		t.Errorf("last message chunked=%v body %q", msgs[1].Chunked, msgs[1].Data)
	}
	if n := snk.Stats().Connections; n != 1 {
		t.Errorf("%d connections, want 1: refusals must not cost the connection", n)
	}
}
