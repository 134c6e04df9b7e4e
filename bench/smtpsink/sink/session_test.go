package sink

import (
	"bufio"
	"crypto/tls"
	"net/smtp"
	"strconv"
	"strings"
	"testing"
)

// A message sent with the standard library client arrives byte-exact, with
// its envelope, and is counted.
func TestNetSMTPPlain(t *testing.T) {
	s := startSink(t, Config{Keep: true})
	body := "Subject: hi\r\nX-Blast-Id: run-1\r\n\r\nline one\r\n.starts with dot\r\n.\r\n..two dots\r\nlast\r\n"
	if err := smtp.SendMail(s.Addr(), nil, "a@example.test", []string{"b@example.test", "c@example.test"}, []byte(body)); err != nil {
		t.Fatalf("SendMail: %v", err)
	}
	msgs := s.Messages()
	if len(msgs) != 1 {
		t.Fatalf("got %d messages, want 1", len(msgs))
	}
	m := msgs[0]
	if string(m.Data) != body {
		t.Errorf("body = %q, want %q", m.Data, body)
	}
	if m.From != "a@example.test" || strings.Join(m.Rcpts, ",") != "b@example.test,c@example.test" {
		t.Errorf("envelope = %q %q", m.From, m.Rcpts)
	}
	st := s.Stats()
	if st.Messages != 1 || st.Recipients != 2 || st.Bytes != uint64(len(body)) || st.Connections != 1 {
		t.Errorf("stats = %+v", st)
	}
	if st.Replies[250] < 4 || st.Replies[354] != 1 || st.Replies[221] != 1 {
		t.Errorf("replies = %v", st.Replies)
	}
}

func TestNetSMTPStartTLS(t *testing.T) {
	tc, err := SelfSignedTLS("sink.example.test")
	if err != nil {
		t.Fatal(err)
	}
	s := startSink(t, Config{Keep: true, TLS: tc})
	c, err := smtp.Dial(s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if ok, _ := c.Extension("STARTTLS"); !ok {
		t.Fatal("STARTTLS not advertised")
	}
	if err := c.StartTLS(&tls.Config{InsecureSkipVerify: true}); err != nil {
		t.Fatalf("StartTLS: %v", err)
	}
	if ok, _ := c.Extension("STARTTLS"); ok {
		t.Error("STARTTLS advertised again after TLS")
	}
	if err := c.Mail("a@example.test"); err != nil {
		t.Fatal(err)
	}
	if err := c.Rcpt("b@example.test"); err != nil {
		t.Fatal(err)
	}
	w, err := c.Data()
	if err != nil {
		t.Fatal(err)
	}
	w.Write([]byte("Subject: tls\r\n\r\nsecret\r\n"))
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	c.Quit()
	msgs := s.Messages()
	if len(msgs) != 1 || !msgs[0].TLS {
		t.Fatalf("messages = %+v, want one over TLS", msgs)
	}
	if s.Stats().TLSHandshakes != 1 {
		t.Errorf("tls handshakes = %d", s.Stats().TLSHandshakes)
	}
}

// A client that keeps its TLS sessions resumes one on its next connection;
// the stats count those handshakes apart.
func TestStartTLSResumedCounted(t *testing.T) {
	tc, err := SelfSignedTLS("sink.example.test")
	if err != nil {
		t.Fatal(err)
	}
	s := startSink(t, Config{TLS: tc})
	cfg := &tls.Config{InsecureSkipVerify: true, ServerName: "sink.example.test", ClientSessionCache: tls.NewLRUClientSessionCache(4)}
	for i := range 3 {
		c, err := smtp.Dial(s.Addr())
		if err != nil {
			t.Fatal(err)
		}
		if err := c.StartTLS(cfg); err != nil {
			t.Fatalf("StartTLS %d: %v", i, err)
		}
		// The TLS 1.3 ticket comes after the handshake: a command reads it.
		if err := c.Noop(); err != nil {
			t.Fatal(err)
		}
		c.Quit()
	}
	if st := s.Stats(); st.TLSHandshakes != 3 || st.TLSResumed != 2 {
		t.Errorf("tls handshakes %d, resumed %d; want 3, 2", st.TLSHandshakes, st.TLSResumed)
	}
}

// A client that pipelines the whole transaction in one write gets every reply
// in order (RFC 2920).
func TestPipelinedTransaction(t *testing.T) {
	s := startSink(t, Config{Keep: true})
	c := dialRaw(t, s.Addr())
	c.expect(220)
	c.send("EHLO c.example.test\r\nMAIL FROM:<a@example.test>\r\nRCPT TO:<b@example.test>\r\nRCPT TO:<c@example.test>\r\nDATA\r\n")
	if text := c.expect(250); !strings.Contains(text, "PIPELINING") {
		t.Errorf("EHLO reply lacks PIPELINING: %q", text)
	}
	for range 3 {
		c.expect(250)
	}
	c.expect(354)
	c.send("Subject: p\r\n\r\n..x\r\n.\r\nMAIL FROM:<a@example.test>\r\nRCPT TO:<d@example.test>\r\nDATA\r\n")
	c.expect(250)
	c.expect(250)
	c.expect(250)
	c.expect(354)
	c.send("second\r\n.\r\nQUIT\r\n")
	c.expect(250)
	c.expect(221)
	msgs := s.Messages()
	if len(msgs) != 2 || string(msgs[0].Data) != "Subject: p\r\n\r\n.x\r\n" || string(msgs[1].Data) != "second\r\n" {
		t.Fatalf("messages = %+v", msgs)
	}
}

// The data ends only at CRLF "." CRLF, and transparency dots are removed
// (RFC 5321 §4.5.2).
func TestDataTermination(t *testing.T) {
	cases := []struct{ name, wire, want string }{
		{"plain", "a\r\nb\r\n.\r\n", "a\r\nb\r\n"},
		{"empty", ".\r\n", ""},
		{"stuffed", "..\r\n...x\r\n.\r\n", ".\r\n..x\r\n"},
		{"bare LF dot LF does not end", "a\n.\nb\r\n.\r\n", "a\n\nb\r\n"},
		{"bare LF then dot CRLF does not end", "a\n.\r\nb\r\n.\r\n", "a\n\r\nb\r\n"},
		{"dot not at line start", "a.\r\n.\r\n", "a.\r\n"},
		{"no final CRLF", "abc\r\n.\r\n", "abc\r\n"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := startSink(t, Config{Keep: true})
			c := dialRaw(t, s.Addr())
			c.expect(220)
			c.send("HELO c\r\nMAIL FROM:<>\r\nRCPT TO:<b@example.test>\r\nDATA\r\n")
			c.expect(250)
			c.expect(250)
			c.expect(250)
			c.expect(354)
			c.send(tc.wire)
			c.expect(250)
			if msgs := s.Messages(); len(msgs) != 1 || string(msgs[0].Data) != tc.want {
				t.Fatalf("body = %+v, want %q", msgs, tc.want)
			}
		})
	}
}

// A body line longer than the read buffer is kept whole.
func TestLongBodyLine(t *testing.T) {
	s := startSink(t, Config{Keep: true})
	c := dialRaw(t, s.Addr())
	c.expect(220)
	long := "." + strings.Repeat("x", 200000) + "\r\n"
	c.send("HELO c\r\nMAIL FROM:<a@example.test>\r\nRCPT TO:<b@example.test>\r\nDATA\r\n")
	for _, want := range []int{250, 250, 250, 354} {
		c.expect(want)
	}
	c.send(long + ".\r\n")
	c.expect(250)
	if msgs := s.Messages(); len(msgs) != 1 || string(msgs[0].Data) != long[1:] {
		t.Fatalf("long line not kept (got %d messages)", len(msgs))
	}
}

func TestSequenceAndSyntaxErrors(t *testing.T) {
	s := startSink(t, Config{MaxMessageSize: 10})
	c := dialRaw(t, s.Addr())
	c.expect(220)
	steps := []struct {
		cmd  string
		want int
	}{
		{"MAIL FROM:<a@example.test>", 503},
		{"FOO", 500},
		{"EHLO", 501},
		{"EHLO c.example.test", 250},
		{"RCPT TO:<b@example.test>", 503},
		{"MAIL FROM:a@example.test", 501},
		{"MAIL FROM:<a@example.test>", 250},
		{"MAIL FROM:<a@example.test>", 503},
		{"DATA", 554},
		{"MAIL FROM:<a@example.test>", 250},
		{"RCPT TO:<b@example.test>", 250},
		{"DATA", 354},
		{"this is more than ten bytes\r\n.", 552},
		{"BDAT 1 LAST", 502},
		{"STARTTLS", 502},
		{"AUTH PLAIN AGZvbwBiYXI=", 235},
		{"NOOP", 250},
		{"RSET", 250},
		{"QUIT", 221},
	}
	for _, st := range steps {
		if code, text := c.cmd(st.cmd); code != st.want {
			t.Fatalf("%q: got %d %s, want %d", st.cmd, code, text, st.want)
		}
	}
	if st := s.Stats(); st.Rejected != 1 || st.Messages != 0 {
		t.Errorf("stats = %+v", st)
	}
}

// BDAT chunks concatenate byte for byte (RFC 3030), pipelined or not.
func TestChunking(t *testing.T) {
	s := startSink(t, Config{Keep: true, Chunking: true})
	c := dialRaw(t, s.Addr())
	c.expect(220)
	if _, text := c.cmd("EHLO c.example.test"); !strings.Contains(text, "CHUNKING") {
		t.Fatalf("CHUNKING not advertised: %q", text)
	}
	part1 := "Subject: chunk\r\n\r\n.dot stays\r\n"
	part2 := "end\r\n"
	c.send("MAIL FROM:<a@example.test>\r\nRCPT TO:<b@example.test>\r\nBDAT " + strconv.Itoa(len(part1)) + "\r\n" + part1 +
		"BDAT " + strconv.Itoa(len(part2)) + " LAST\r\n" + part2)
	for _, want := range []int{250, 250, 250, 250} {
		c.expect(want)
	}
	// A BDAT without a transaction is refused but its bytes are skipped.
	c.send("BDAT 6 LAST\r\nQUIT\r\nNOOP\r\n")
	c.expect(503)
	c.expect(250)
	msgs := s.Messages()
	if len(msgs) != 1 || string(msgs[0].Data) != part1+part2 || !msgs[0].Chunked {
		t.Fatalf("messages = %+v", msgs)
	}
}

// Bytes a client pipelines behind STARTTLS are discarded (RFC 3207 §4.2).
func TestStartTLSDiscardsPipelinedBytes(t *testing.T) {
	tc, err := SelfSignedTLS()
	if err != nil {
		t.Fatal(err)
	}
	s := startSink(t, Config{TLS: tc})
	c := dialRaw(t, s.Addr())
	c.expect(220)
	c.cmd("EHLO c")
	c.send("STARTTLS\r\nMAIL FROM:<evil@example.test>\r\n")
	c.expect(220)
	tconn := tls.Client(c.conn, &tls.Config{InsecureSkipVerify: true})
	if err := tconn.Handshake(); err != nil {
		t.Fatalf("handshake: %v", err)
	}
	tc2 := &rawClient{t: t, conn: tconn, r: bufio.NewReader(tconn)}
	// The injected MAIL must be gone: MAIL now needs a fresh EHLO.
	if code, _ := tc2.cmd("MAIL FROM:<a@example.test>"); code != 503 {
		t.Fatalf("MAIL after STARTTLS without EHLO: got %d, want 503", code)
	}
	if _, text := tc2.cmd("EHLO c"); strings.Contains(text, "STARTTLS") {
		t.Error("STARTTLS advertised inside TLS")
	}
}

// A client that goes away without QUIT leaves its last accepted messages
// counted as cut after the reply (it may not have read the 250: with
// PIPELINING a command after it proves nothing, up to two transactions may
// be in flight) and a message it was still sending as cut in DATA; the body
// of a later DATA, or QUIT, means the client read it.
func TestCutConnections(t *testing.T) {
	s := startSink(t, Config{})
	tx := func(c *rawClient, id string) {
		c.cmd("MAIL FROM:<a@example.test>")
		c.cmd("RCPT TO:<b@example.test>")
		if code, _ := c.cmd("DATA"); code != 354 {
			t.Fatalf("DATA: %d", code)
		}
		c.send("X-Blast-Id: " + id + "\r\n\r\nbody\r\n.\r\n")
		c.expect(250)
	}
	open := func() *rawClient {
		c := dialRaw(t, s.Addr())
		c.expect(220)
		c.cmd("EHLO client.example.test")
		return c
	}
	// Two messages, gone after the second 250: one cut after the reply.
	a := open()
	tx(a, "a-1")
	tx(a, "a-2")
	a.conn.Close()
	// Gone in the middle of the body.
	b := open()
	b.cmd("MAIL FROM:<a@example.test>")
	b.cmd("RCPT TO:<b@example.test>")
	b.cmd("DATA")
	b.send("X-Blast-Id: b-1\r\n\r\nhalf a bo")
	b.conn.Close()
	// A command after the 250, then gone: a pipelining client may have
	// written it before it read the 250.
	c := open()
	tx(c, "c-1")
	c.cmd("NOOP")
	c.conn.Close()
	// QUIT: nothing cut.
	d := open()
	tx(d, "d-1")
	d.cmd("QUIT")
	d.conn.Close()
	waitFor(t, "four sessions to end", func() bool { return s.Stats().CurrentConns == 0 })
	if st := s.Stats(); st.CutAfterReply != 2 || st.CutInData != 1 || st.Messages != 4 {
		t.Errorf("cut after reply %d, cut in data %d, messages %d; want 2, 1, 4", st.CutAfterReply, st.CutInData, st.Messages)
	}
}

// Two BDAT transactions written at once (as Gannet keeps two in flight),
// then gone: both 250s may be unread. Without PIPELINING, a command after
// the 250 proves the client read it.
func TestCutConnectionsPipelinedBDAT(t *testing.T) {
	s := startSink(t, Config{Chunking: true})
	c := dialRaw(t, s.Addr())
	c.expect(220)
	c.cmd("EHLO client.example.test")
	c.send("MAIL FROM:<a@example.test>\r\nRCPT TO:<b@example.test>\r\nBDAT 6 LAST\r\nbody\r\n" +
		"RSET\r\nMAIL FROM:<a@example.test>\r\nRCPT TO:<b@example.test>\r\nBDAT 6 LAST\r\nbody\r\n")
	for _, want := range []int{250, 250, 250, 250, 250, 250, 250} {
		c.expect(want)
	}
	c.conn.Close()
	np := startSink(t, Config{NoPipelining: true})
	d := dialRaw(t, np.Addr())
	d.expect(220)
	d.cmd("EHLO client.example.test")
	for _, line := range []string{"MAIL FROM:<a@example.test>", "RCPT TO:<b@example.test>", "DATA"} {
		d.cmd(line)
	}
	d.send("body\r\n.\r\n")
	d.expect(250)
	d.cmd("NOOP")
	d.conn.Close()
	waitFor(t, "the sessions to end", func() bool { return s.Stats().CurrentConns == 0 && np.Stats().CurrentConns == 0 })
	if st := s.Stats(); st.CutAfterReply != 2 || st.Messages != 2 {
		t.Errorf("pipelined: cut after reply %d, messages %d; want 2, 2", st.CutAfterReply, st.Messages)
	}
	if st := np.Stats(); st.CutAfterReply != 0 || st.Messages != 1 {
		t.Errorf("without pipelining: cut after reply %d, messages %d; want 0, 1", st.CutAfterReply, st.Messages)
	}
}
