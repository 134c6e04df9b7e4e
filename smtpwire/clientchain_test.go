package smtpwire

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
)

// chainStep plays a pipelined pair the way outbound does: t1 has just
// written its body with t2's commands behind it (RFC 2920 §3.1); the
// server's replies to both come in one flight, t1's final reply first.
// It feeds t1 until it is done and then t2, and returns what was left of
// the flight.
func chainStep(t *testing.T, t1, t2 *ClientTxn, flight []byte) []byte {
	t.Helper()
	for _, txn := range []*ClientTxn{t1, t2} {
		for txn.Awaiting() {
			n, _, err := txn.Feed(flight)
			if err != nil {
				t.Fatalf("feed %q: %v", flight, err)
			}
			if n == 0 {
				return flight
			}
			flight = flight[n:]
		}
	}
	return flight
}

// outcomes renders the outcome of each recipient of a settled transaction.
func outcomes(txn *ClientTxn, n int) string {
	var out []string
	for i := range n {
		o := txn.Outcome(i)
		out = append(out, o.By.String()+" "+o.Reply.String())
	}
	return strings.Join(out, "; ")
}

// flags renders Closing, NeedsRSET, Replayable and Done.
func flags(txn *ClientTxn) string {
	return fmt.Sprintf("closing=%v rset=%v replayable=%v done=%v", txn.Closing(), txn.NeedsRSET(), txn.Replayable(), txn.Done())
}

// A transaction whose body goes out may carry the next one's envelope in
// the same write; the next transaction is independent of the reply to the
// ".", and a 421 (or a lost connection) before any reply to it leaves it
// replayable, unattempted.
func TestClientTxnChained(t *testing.T) {
	ext := ParseEHLO(Reply{Code: 250, Lines: []string{"mx.dst.test", "PIPELINING", "8BITMIME", "ENHANCEDSTATUSCODES"}})
	m1 := ClientMessage{From: Path{Addr: "one@src.test"}, Rcpts: []Path{{Addr: "a@dst.test"}}, Size: 10, CRLFClean: true}
	m2 := ClientMessage{From: Path{Addr: "two@src.test"}, Rcpts: []Path{{Addr: "b@dst.test"}, {Addr: "c@dst.test"}}, Size: 10, CRLFClean: true}
	for _, c := range []struct {
		name      string
		flight    string // the replies after the body of m1 and the envelope of m2
		want1     string // m1's outcome
		flags1    string
		want2     string // m2's outcomes once settled ("" not settled)
		flags2    string
		then2     string // what m2 writes next: "body", "lone dot", "" nothing
		chainable bool   // m2 may carry a third one
	}{
		{name: "both go on", flight: "250 2.0.0 one\r\n250 ok\r\n250 ok\r\n250 ok\r\n354 go\r\n",
			want1: "message 250 2.0.0 one", flags1: "closing=false rset=false replayable=false done=true",
			flags2: "closing=false rset=false replayable=false done=false", then2: "body", chainable: true},
		{name: "dot refused, next independent", flight: "554 5.7.1 spam\r\n250 ok\r\n250 ok\r\n451 4.2.0 later\r\n354 go\r\n",
			want1: "message 554 5.7.1 spam", flags1: "closing=false rset=false replayable=false done=true",
			flags2: "closing=false rset=false replayable=false done=false", then2: "body", chainable: true},
		{name: "dot deferred", flight: "451 4.3.0 try again\r\n250 ok\r\n250 ok\r\n250 ok\r\n354 go\r\n",
			want1: "message 451 4.3.0 try again", flags1: "closing=false rset=false replayable=false done=true",
			flags2: "closing=false rset=false replayable=false done=false", then2: "body", chainable: true},
		{name: "421 after the dot", flight: "421 4.3.2 closing\r\n",
			want1: "message 421 4.3.2 closing", flags1: "closing=true rset=false replayable=false done=true",
			flags2: "closing=false rset=false replayable=true done=false"},
		{name: "next MAIL refused, 354 anyway", flight: "250 2.0.0 one\r\n550 5.7.1 sender\r\n503 5.5.1 no MAIL\r\n503 5.5.1 no MAIL\r\n354 go\r\n",
			want1: "message 250 2.0.0 one", flags1: "closing=false rset=false replayable=false done=true",
			want2: "MAIL 550 5.7.1 sender; MAIL 550 5.7.1 sender", flags2: "closing=false rset=true replayable=false done=false", then2: "lone dot"},
		{name: "next recipients refused, 554 to DATA", flight: "250 2.0.0 one\r\n250 ok\r\n550 5.1.1 no b\r\n550 5.1.1 no c\r\n554 5.5.1 no valid recipients\r\n",
			want1: "message 250 2.0.0 one", flags1: "closing=false rset=false replayable=false done=true",
			want2: "RCPT 550 5.1.1 no b; RCPT 550 5.1.1 no c", flags2: "closing=false rset=true replayable=false done=true"},
		{name: "421 to the next MAIL", flight: "250 2.0.0 one\r\n421 4.7.0 too many\r\n",
			want1: "message 250 2.0.0 one", flags1: "closing=false rset=false replayable=false done=true",
			want2: "MAIL 421 4.7.0 too many; MAIL 421 4.7.0 too many", flags2: "closing=true rset=true replayable=false done=true"},
	} {
		t.Run(c.name, func(t *testing.T) {
			var t1, t2 ClientTxn
			if err := t1.Begin(&m1, &ext, ClientTxnOptions{}); err != nil {
				t.Fatal(err)
			}
			t1.Send()
			if ok, _ := t1.Chainable(); ok {
				t.Fatal("the envelope's write is chainable")
			}
			chainStep(t, &t1, &t2, []byte("250 ok\r\n250 ok\r\n354 go\r\n"))
			_, body := t1.Send()
			if ok, rset := t1.Chainable(); body != BodyDotStuffed || !ok || rset {
				t.Fatalf("the body's write: %v, chainable %v, RSET first %v", body, ok, rset)
			}
			if err := t2.Begin(&m2, &ext, ClientTxnOptions{}); err != nil {
				t.Fatal(err)
			}
			cmds, body := t2.Send()
			if want := "MAIL FROM:<two@src.test>\r\nRCPT TO:<b@dst.test>\r\nRCPT TO:<c@dst.test>\r\nDATA\r\n"; string(cmds) != want || body != NoBody {
				t.Fatalf("the next envelope: %q %v, want %q", cmds, body, want)
			}
			if left := chainStep(t, &t1, &t2, []byte(c.flight)); len(left) > 0 {
				t.Fatalf("replies left over: %q", left)
			}
			if got := outcomes(&t1, 1); got != c.want1 {
				t.Errorf("first: %s, want %s", got, c.want1)
			}
			if got := flags(&t1); got != c.flags1 {
				t.Errorf("first: %s, want %s", got, c.flags1)
			}
			if c.want2 != "" {
				if got := outcomes(&t2, 2); !t2.Settled() || got != c.want2 {
					t.Errorf("next: settled %v, %s, want %s", t2.Settled(), got, c.want2)
				}
			} else if t2.Settled() {
				t.Errorf("next settled: %s", outcomes(&t2, 2))
			}
			if got := flags(&t2); got != c.flags2 {
				t.Errorf("next: %s, want %s", got, c.flags2)
			}
			next, form := t2.Send()
			switch c.then2 {
			case "body":
				if len(next) != 0 || form != BodyDotStuffed {
					t.Errorf("next writes %q %v, want its body", next, form)
				}
			case "lone dot":
				if string(next) != ".\r\n" || form != NoBody {
					t.Errorf("next writes %q %v, want a lone dot", next, form)
				}
			default:
				if next != nil || form != NoBody {
					t.Errorf("next writes %q %v, want nothing", next, form)
				}
			}
			if ok, _ := t2.Chainable(); ok != c.chainable {
				t.Errorf("next chainable %v, want %v", ok, c.chainable)
			}
		})
	}
}

// Nothing follows a write that leaves commands to come: not the envelope
// of a DATA transaction (the body waits for the 354), not a body to a
// server without PIPELINING, not the lone "." after a transaction without
// recipients (RSET must come first and know the lone dot's fate).
func TestClientTxnNotChainable(t *testing.T) {
	msg := ClientMessage{From: Path{Addr: "s@src.test"}, Rcpts: []Path{{Addr: "a@dst.test"}}, Size: 10, CRLFClean: true}
	for _, c := range []struct {
		name    string
		ehlo    []string
		replies []string // one flight per write before the last
	}{
		{name: "envelope", ehlo: []string{"PIPELINING"}},
		{name: "no PIPELINING", ehlo: []string{"8BITMIME"}, replies: []string{"250 ok\r\n", "250 ok\r\n", "354 go\r\n"}},
		{name: "lone dot", ehlo: []string{"PIPELINING"}, replies: []string{"250 ok\r\n550 no\r\n354 go\r\n"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			ext := ParseEHLO(Reply{Code: 250, Lines: append([]string{"mx.dst.test"}, c.ehlo...)})
			var txn ClientTxn
			if err := txn.Begin(&msg, &ext, ClientTxnOptions{}); err != nil {
				t.Fatal(err)
			}
			for _, r := range c.replies {
				txn.Send()
				if ok, _ := txn.Chainable(); ok {
					t.Fatal("an envelope write is chainable")
				}
				for rest := []byte(r); len(rest) > 0; {
					n, _, err := txn.Feed(rest)
					if err != nil || n == 0 {
						t.Fatalf("feed %q: %d %v", rest, n, err)
					}
					rest = rest[n:]
				}
			}
			cmds, body := txn.Send()
			if cmds == nil && body == NoBody {
				t.Fatal("nothing to write")
			}
			if ok, _ := txn.Chainable(); ok {
				t.Errorf("write %q + body %v is chainable", cmds, body)
			}
		})
	}
}

// A BDAT transaction is written whole (RFC 3030 §4.2): the next one may go
// at once, RSET first, and stays independent of how this one ends — also
// when its sender was refused and its chunk with it.
func TestClientTxnChainedBDAT(t *testing.T) {
	ext := ParseEHLO(Reply{Code: 250, Lines: []string{"mx.dst.test", "PIPELINING", "CHUNKING"}})
	m1 := ClientMessage{From: Path{Addr: "one@src.test"}, Rcpts: []Path{{Addr: "a@dst.test"}}, Size: 10, CRLFClean: true}
	m2 := ClientMessage{From: Path{Addr: "two@src.test"}, Rcpts: []Path{{Addr: "b@dst.test"}}, Size: 20, CRLFClean: true}
	for _, c := range []struct {
		name, flight, want1, want2 string
	}{
		{"both delivered", "250 ok\r\n250 ok\r\n250 2.0.0 one\r\n250 ok\r\n250 ok\r\n250 ok\r\n250 2.0.0 two\r\n",
			"message 250 2.0.0 one", "message 250 2.0.0 two"},
		{"first sender refused", "550 5.7.1 no\r\n503 5.5.1 MAIL first\r\n503 5.5.1 MAIL first\r\n250 ok\r\n250 ok\r\n250 ok\r\n250 2.0.0 two\r\n",
			"MAIL 550 5.7.1 no", "message 250 2.0.0 two"},
		{"chunk refused", "250 ok\r\n250 ok\r\n554 5.7.1 spam\r\n250 ok\r\n250 ok\r\n250 ok\r\n250 2.0.0 two\r\n",
			"message 554 5.7.1 spam", "message 250 2.0.0 two"},
		{"421 to the first", "421 4.3.2 bye\r\n", "MAIL 421 4.3.2 bye", ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			var t1, t2 ClientTxn
			if err := t1.Begin(&m1, &ext, ClientTxnOptions{}); err != nil {
				t.Fatal(err)
			}
			if _, body := t1.Send(); body != BodyAsIs {
				t.Fatalf("body %v, want BDAT", body)
			}
			ok, rset := t1.Chainable()
			if !ok || !rset {
				t.Fatalf("after the BDAT write: chainable %v, RSET first %v", ok, rset)
			}
			if err := t2.Begin(&m2, &ext, ClientTxnOptions{RSETFirst: rset}); err != nil {
				t.Fatal(err)
			}
			cmds, body := t2.Send()
			if want := "RSET\r\nMAIL FROM:<two@src.test>\r\nRCPT TO:<b@dst.test>\r\nBDAT 20 LAST\r\n"; string(cmds) != want || body != BodyAsIs {
				t.Fatalf("the next write: %q %v, want %q and its body", cmds, body, want)
			}
			if left := chainStep(t, &t1, &t2, []byte(c.flight)); len(left) > 0 {
				t.Fatalf("replies left over: %q", left)
			}
			if got := outcomes(&t1, 1); !t1.Done() || got != c.want1 {
				t.Errorf("first: done %v, %s, want %s", t1.Done(), got, c.want1)
			}
			if c.want2 == "" {
				if !t2.Replayable() || t2.Settled() {
					t.Errorf("next after a 421: %s", flags(&t2))
				}
				return
			}
			if got := outcomes(&t2, 1); !t2.Done() || got != c.want2 || t2.NeedsRSET() {
				t.Errorf("next: %s, %s, want %s", flags(&t2), got, c.want2)
			}
		})
	}
}

// Many messages over one in-memory server session, each envelope
// pipelined behind the body before it: the session takes every message
// once, with its own sender and recipients and its body byte for byte, and
// each client transaction gets its own outcome — also when a message's
// recipients are all refused in the middle of the chain (the lone "."
// breaks it, and the next one starts with RSET).
func TestClientTxnChainAgainstSession(t *testing.T) {
	s := NewSession(testConfig())
	s.Feed([]byte("EHLO client.example\r\n"))
	ehlo, _, err := ParseReply(s.Output())
	if err != nil {
		t.Fatal(err)
	}
	s.ConsumeOutput(len(s.Output()))
	ext := ParseEHLO(ehlo)
	ext.Chunking = false
	refuse := func(p Path) *Reply {
		if strings.HasPrefix(p.Addr, "no") {
			return &ReplyRelayDenied
		}
		return nil
	}
	const n = 12
	msgs := make([]ClientMessage, n)
	bodies := make([][]byte, n)
	for i := range msgs {
		bodies[i] = fmt.Appendf(nil, "Subject: %d\r\n\r\n.dot line %d\r\n", i, i)
		rcpt := fmt.Sprintf("r%d@d.example", i)
		if i == 5 {
			rcpt = "no5@d.example" // refused: the chain breaks here
		}
		msgs[i] = ClientMessage{From: Path{Addr: fmt.Sprintf("s%d@c.example", i)}, Rcpts: []Path{{Addr: rcpt}}, Size: int64(len(bodies[i])), CRLFClean: true}
	}
	var txns [2]ClientTxn
	var got []Event
	// feedServer gives the session the client's bytes and returns its replies.
	feedServer := func(in []byte) []byte {
		for len(in) > 0 {
			k, ev := s.Feed(in)
			in = in[k:]
			switch ev.Kind {
			case EventRcpt:
				s.Respond(refuse(*ev.Rcpt))
			case EventMail:
				s.Respond(nil)
			case EventMessage:
				ev.Body = bytes.Clone(ev.Body)
				got = append(got, ev)
				s.Respond(&Reply{Code: 250, Enhanced: "2.0.0", Lines: []string{fmt.Sprintf("OK id=%d", len(got))}})
			}
		}
		out := bytes.Clone(s.Output())
		s.ConsumeOutput(len(out))
		return out
	}
	cur, rset, writes := 0, false, 0
	var pending []byte // server replies not yet fed
	begun := -1        // the message txns[1-cur] was begun for behind a body
	for i := 0; i < n; i++ {
		t1 := &txns[cur]
		if begun != i {
			if err := t1.Begin(&msgs[i], &ext, ClientTxnOptions{RSETFirst: rset}); err != nil {
				t.Fatal(err)
			}
		}
		for !t1.Done() {
			cmds, form := t1.Send()
			in := bytes.Clone(cmds)
			if form == BodyDotStuffed {
				in = AppendDotStuffed(in, bodies[i])
			}
			if ok, _ := t1.Chainable(); form == BodyDotStuffed && ok && i+1 < n {
				if err := txns[1-cur].Begin(&msgs[i+1], &ext, ClientTxnOptions{}); err != nil {
					t.Fatal(err)
				}
				next, _ := txns[1-cur].Send()
				in = append(in, next...)
				begun = i + 1
			}
			if len(in) > 0 {
				writes++
				pending = append(pending, feedServer(in)...)
			}
			for t1.Awaiting() {
				k, _, err := t1.Feed(pending)
				if err != nil || k == 0 {
					t.Fatalf("message %d: replies %q: %d %v", i, pending, k, err)
				}
				pending = pending[k:]
			}
		}
		id := i + 1
		if i > 5 {
			id = i
		}
		want := fmt.Sprintf("message 250 2.0.0 OK id=%d", id)
		if i == 5 {
			want = "RCPT 554 5.7.1 Relay access denied"
		}
		if o := outcomes(t1, 1); o != want {
			t.Errorf("message %d: %s, want %s", i, o, want)
		}
		rset = t1.NeedsRSET()
		cur = 1 - cur
	}
	if len(pending) > 0 {
		t.Errorf("replies left: %q", pending)
	}
	if len(got) != n-1 {
		t.Fatalf("the server took %d messages, want %d", len(got), n-1)
	}
	k := 0
	for i := range msgs {
		if i == 5 {
			continue
		}
		ev := got[k]
		k++
		if ev.Envelope.From.Addr != msgs[i].From.Addr || len(ev.Envelope.Rcpts) != 1 || ev.Envelope.Rcpts[0].Addr != msgs[i].Rcpts[0].Addr || !bytes.Equal(ev.Body, bodies[i]) {
			t.Errorf("message %d arrived as from %s to %v, body %q", i, ev.Envelope.From.Addr, ev.Envelope.Rcpts, ev.Body)
		}
	}
	// Unchained, a message costs two writes (envelope, body); chained, one:
	// its body, the next envelope behind it. The chain breaks at message 5,
	// whose recipient is refused (DATA gets 554: no body), so message 6's
	// envelope (with RSET first) goes alone.
	if want := (n - 1) + 2; writes != want {
		t.Errorf("%d writes for %d messages, want %d", writes, n, want)
	}
}
