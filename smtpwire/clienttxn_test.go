package smtpwire

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// A clientTranscript is one scripted client transaction; the format is
// described in testdata/client/README.md.
type clientTranscript struct {
	name     string
	msg      ClientMessage
	ext      Extensions
	opts     ClientTxnOptions
	ops      []clientOp
	wantErr  string   // E: the error Begin or Feed returns
	outcomes []string // O: lines, one per recipient
	flags    string   // F: line
}

// A clientOp is one write of the client (C: and B: lines) or one flight of
// server bytes (S: and R: lines).
type clientOp struct {
	line   int
	write  bool
	cmds   []byte
	body   BodyForm
	flight []byte
}

var bodyFormNames = map[string]BodyForm{"dot-stuffed": BodyDotStuffed, "as-is": BodyAsIs}

func loadClientTranscript(t testing.TB, path string) *clientTranscript {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	tr := &clientTranscript{name: filepath.Base(path)}
	tr.msg.Size = 100
	tr.msg.CRLFClean = true
	var ehlo []string
	last := byte(0) // kind of the previous C/B/S/R line, to group them
	for i, raw := range strings.Split(string(data), "\n") {
		lineNo := i + 1
		line := strings.TrimSuffix(raw, "\r")
		fail := func(format string, args ...any) {
			t.Helper()
			t.Fatalf("%s:%d: %s", path, lineNo, fmt.Sprintf(format, args...))
		}
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if key, rest, ok := strings.Cut(line, " "); ok && strings.HasPrefix(key, "@") {
			switch key {
			case "@ehlo":
				for _, kw := range strings.Split(rest, ",") {
					ehlo = append(ehlo, strings.TrimSpace(kw))
				}
			case "@message":
				tr.parseMessage(rest, fail)
			case "@options":
				for _, o := range strings.Fields(rest) {
					switch o {
					case "rset-first":
						tr.opts.RSETFirst = true
					case "no-chunking":
						tr.opts.NoChunking = true
					default:
						fail("unknown option %q", o)
					}
				}
			default:
				fail("unknown setting %q", key)
			}
			continue
		}
		if len(line) < 3 || line[1] != ':' || line[2] != ' ' {
			fail("bad line %q", line)
		}
		kind, text := line[0], line[3:]
		if (kind == 'C' || kind == 'B' || kind == 'S' || kind == 'R') && (tr.wantErr != "" || len(tr.outcomes) > 0 || tr.flags != "") {
			fail("conversation after the result")
		}
		switch kind {
		case 'C', 'B':
			if last != 'C' && last != 'B' || kind == 'C' && last == 'B' {
				tr.ops = append(tr.ops, clientOp{line: lineNo, write: true, cmds: []byte{}})
			}
			op := &tr.ops[len(tr.ops)-1]
			if kind == 'C' {
				op.cmds = append(append(op.cmds, unescape(t, text, path, lineNo)...), '\r', '\n')
			} else if op.body = bodyFormNames[text]; op.body == NoBody {
				fail("unknown body form %q", text)
			}
		case 'S', 'R':
			if last != 'S' && last != 'R' {
				tr.ops = append(tr.ops, clientOp{line: lineNo, flight: []byte{}})
			}
			op := &tr.ops[len(tr.ops)-1]
			op.flight = append(op.flight, unescape(t, text, path, lineNo)...)
			if kind == 'S' {
				op.flight = append(op.flight, '\r', '\n')
			}
		case 'E':
			tr.wantErr = text
		case 'O':
			tr.outcomes = append(tr.outcomes, text)
		case 'F':
			tr.flags = text
		default:
			fail("unknown line kind %q", line[:1])
		}
		last = kind
	}
	if ehlo != nil {
		reply := Reply{Code: 250, Lines: append([]string{"mx.dst.test"}, ehlo...)}
		tr.ext = ParseEHLO(reply)
	}
	if tr.flags == "" {
		t.Fatalf("%s: no F: line", path)
	}
	return tr
}

func (tr *clientTranscript) parseMessage(settings string, fail func(string, ...any)) {
	path := func(s string) Path {
		p, err := ParsePath(s)
		if err != nil {
			fail("bad path %q: %v", s, err)
		}
		return p
	}
	var notify DSNNotify
	orcpt := ""
	for _, kv := range strings.Fields(settings) {
		k, v, _ := strings.Cut(kv, "=")
		switch k {
		case "from":
			tr.msg.From = path(v)
		case "to":
			for _, s := range strings.Split(v, ",") {
				tr.msg.Rcpts = append(tr.msg.Rcpts, path(s))
			}
		case "size":
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				fail("size needs a number")
			}
			tr.msg.Size = n
		case "8bit":
			tr.msg.EightBit = true
		case "utf8headers":
			tr.msg.UTF8Headers = true
		case "notclean":
			tr.msg.CRLFClean = false
		case "requiretls":
			tr.msg.RequireTLS = true
		case "ret":
			switch v {
			case "FULL":
				tr.msg.Ret = RetFull
			case "HDRS":
				tr.msg.Ret = RetHeaders
			default:
				fail("ret is FULL or HDRS")
			}
		case "envid":
			tr.msg.EnvID = v
		case "notify":
			n, ok := parseNotify([]byte(v))
			if !ok {
				fail("bad notify %q", v)
			}
			notify = n
		case "orcpt":
			orcpt = v
		default:
			fail("unknown message setting %q", k)
		}
	}
	for i := range tr.msg.Rcpts {
		tr.msg.Rcpts[i].Notify, tr.msg.Rcpts[i].ORcpt = notify, orcpt
	}
}

// clientResult is what a run of a transcript ends with.
type clientResult struct {
	err      string
	outcomes []string
	flags    string
}

// String renders r in the transcript's E:, O: and F: lines.
func (r clientResult) String() string {
	var b strings.Builder
	if r.err != "" {
		b.WriteString("E: " + r.err + "\n")
	}
	for _, o := range r.outcomes {
		b.WriteString("O: " + o + "\n")
	}
	return b.String() + "F: " + r.flags
}

// run plays tr on txn the way a host does, with the server's flights cut
// into pieces by split, and returns how the transaction ended, or an error
// at the first write that differs from the transcript.
func (tr *clientTranscript) run(txn *ClientTxn, split splitter) (clientResult, error) {
	var res clientResult
	var buf []byte
	err := txn.Begin(&tr.msg, &tr.ext, tr.opts)
ops:
	for _, op := range tr.ops {
		if err != nil {
			break
		}
		if op.write {
			if txn.Awaiting() {
				return res, fmt.Errorf("line %d: the client still waits for replies", op.line)
			}
			cmds, body := txn.Send()
			if cmds == nil && body == NoBody {
				return res, fmt.Errorf("line %d: the client has nothing to write", op.line)
			}
			if !bytes.Equal(cmds, op.cmds) || body != op.body {
				return res, fmt.Errorf("line %d: the client writes\n%q + body %d\nwant\n%q + body %d", op.line, cmds, body, op.cmds, op.body)
			}
			continue
		}
		for _, piece := range split(op.flight) {
			buf = append(buf, piece...)
			for txn.Awaiting() {
				var n int
				if n, _, err = txn.Feed(buf); err != nil {
					break ops
				}
				if n == 0 {
					break
				}
				buf = buf[n:]
			}
		}
	}
	if err != nil {
		res.err = err.Error()
	} else {
		if !txn.Done() {
			return res, fmt.Errorf("the transaction is not done (awaiting %v)", txn.Awaiting())
		}
		if len(buf) > 0 {
			return res, fmt.Errorf("server bytes left unread: %q", buf)
		}
	}
	if cmds, body := txn.Send(); txn.Done() && (cmds != nil || body != NoBody) {
		return res, fmt.Errorf("a done transaction still writes %q", cmds)
	}
	if txn.Settled() {
		for i, rcpt := range tr.msg.Rcpts {
			o := txn.Outcome(i)
			s := rcpt.String() + " " + o.By.String()
			if o.By != NotAnswered {
				s += " " + o.Reply.String()
			} else if o.Reply.Code != 0 {
				return res, fmt.Errorf("%s: not answered, yet reply %s", rcpt, o.Reply)
			}
			if o.Delivered() && (o.By != DecidedByMessage || !o.Reply.Positive()) {
				return res, fmt.Errorf("%s: delivered by %s", rcpt, s)
			}
			res.outcomes = append(res.outcomes, s)
		}
	}
	var flags []string
	for _, f := range []struct {
		on   bool
		name string
	}{{txn.Closing(), "closing"}, {txn.NeedsRSET(), "rset-next"}, {txn.Replayable(), "replayable"}} {
		if f.on {
			flags = append(flags, f.name)
		}
	}
	res.flags = strings.Join(flags, " ")
	if res.flags == "" {
		res.flags = "none"
	}
	return res, nil
}

func TestClientTranscripts(t *testing.T) {
	files, err := filepath.Glob("testdata/client/*.txt")
	if err != nil || len(files) == 0 {
		t.Fatalf("no client transcripts: %v", err)
	}
	for _, f := range files {
		tr := loadClientTranscript(t, f)
		want := clientResult{err: tr.wantErr, outcomes: tr.outcomes, flags: tr.flags}
		t.Run(tr.name, func(t *testing.T) {
			// One ClientTxn for every run: each Begin must forget the last
			// transaction.
			var txn ClientTxn
			check := func(mode string, split splitter) bool {
				got, err := tr.run(&txn, split)
				if err != nil {
					t.Errorf("%s: %v", mode, err)
					return false
				}
				if got.String() != want.String() {
					t.Errorf("%s: the transaction ended with\n%s\nwant\n%s", mode, got, want)
					return false
				}
				return true
			}
			maxLen := 0
			for _, op := range tr.ops {
				maxLen = max(maxLen, len(op.flight))
			}
			forEachSplit(maxLen, check)
		})
	}
}

// runAgainstSession plays txn against the server session s in memory, the
// way outbound plays it against a socket, and returns the message the
// session took (Kind EventNone when none). rcptReply answers each RCPT.
func runAgainstSession(t *testing.T, s *Session, txn *ClientTxn, body []byte, rcptReply func(Path) *Reply) Event {
	t.Helper()
	var msg Event
	for !txn.Done() {
		cmds, form := txn.Send()
		in := append([]byte(nil), cmds...)
		switch form {
		case BodyDotStuffed:
			in = AppendDotStuffed(in, body)
		case BodyAsIs:
			in = append(in, body...)
		}
		for len(in) > 0 {
			n, ev := s.Feed(in)
			in = in[n:]
			switch ev.Kind {
			case EventRcpt:
				s.Respond(rcptReply(*ev.Rcpt))
			case EventMail:
				s.Respond(nil)
			case EventMessage:
				msg = ev
				s.Respond(&Reply{Code: 250, Enhanced: "2.0.0", Lines: []string{"OK id=42"}})
			}
		}
		out := s.Output()
		for txn.Awaiting() {
			n, _, err := txn.Feed(out)
			if err != nil || n == 0 {
				t.Fatalf("replies %q: n=%d err=%v", out, n, err)
			}
			out = out[n:]
		}
		s.ConsumeOutput(len(s.Output()) - len(out))
	}
	return msg
}

// The client transaction against the server session, with and without
// PIPELINING and CHUNKING: one recipient refused, the other two get the
// message, byte for byte as the session hands it to its host; then a
// transaction with every recipient refused leaves the connection needing
// RSET, and the next one starts with it.
func TestClientTxnAgainstSession(t *testing.T) {
	for _, c := range []struct {
		name                  string
		pipelining, chunking  bool
		wantChunked, wantDots bool
	}{
		{name: "plain"},
		{name: "pipelined", pipelining: true},
		{name: "pipelined BDAT", pipelining: true, chunking: true, wantChunked: true},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := NewSession(testConfig())
			s.Feed([]byte("EHLO client.example\r\n"))
			ehlo, _, err := ParseReply(s.Output())
			if err != nil {
				t.Fatal(err)
			}
			s.ConsumeOutput(len(s.Output()))
			ext := ParseEHLO(ehlo)
			if !ext.Pipelining || !ext.Chunking || ext.Size != 1<<20 {
				t.Fatalf("extensions %+v", ext)
			}
			ext.Pipelining, ext.Chunking = c.pipelining, c.chunking

			refuse := func(p Path) *Reply {
				if p.Domain() != "d.example" {
					return &ReplyRelayDenied
				}
				return nil
			}
			body := []byte("Subject: t\r\n\r\n.leading dot\r\n.\r\nend\r\n")
			msg := ClientMessage{
				From:      Path{Addr: "a@client.example"},
				Rcpts:     []Path{{Addr: "ok1@d.example"}, {Addr: "denied@elsewhere.example"}, {Addr: "ok2@d.example"}},
				Size:      int64(len(body)),
				CRLFClean: true,
			}
			var txn ClientTxn
			if err := txn.Begin(&msg, &ext, ClientTxnOptions{}); err != nil {
				t.Fatal(err)
			}
			ev := runAgainstSession(t, s, &txn, body, refuse)
			if ev.Kind != EventMessage || !bytes.Equal(ev.Body, body) || ev.Envelope.Chunked != c.wantChunked {
				t.Fatalf("message %v chunked=%v body %q", ev.Kind, ev.Envelope != nil && ev.Envelope.Chunked, ev.Body)
			}
			if got := len(ev.Envelope.Rcpts); got != 2 {
				t.Errorf("%d recipients reached the server, want 2", got)
			}
			for i, want := range []string{"message 250 2.0.0 OK id=42", "RCPT 554 5.7.1 Relay access denied", "message 250 2.0.0 OK id=42"} {
				o := txn.Outcome(i)
				if got := o.By.String() + " " + o.Reply.String(); got != want || o.Delivered() != (i != 1) {
					t.Errorf("recipient %d: %s (delivered %v), want %s", i, got, o.Delivered(), want)
				}
			}
			if txn.NeedsRSET() || txn.Closing() || txn.Replayable() {
				t.Errorf("flags after a delivery: rset %v closing %v replayable %v", txn.NeedsRSET(), txn.Closing(), txn.Replayable())
			}

			msg.Rcpts = []Path{{Addr: "x@elsewhere.example"}}
			if err := txn.Begin(&msg, &ext, ClientTxnOptions{}); err != nil {
				t.Fatal(err)
			}
			if ev := runAgainstSession(t, s, &txn, body, refuse); ev.Kind != EventNone {
				t.Fatalf("a message without recipients reached the server: %v", ev.Kind)
			}
			if !txn.NeedsRSET() || txn.Outcome(0).By != DecidedByRCPT {
				t.Fatalf("all refused: rset %v, outcome %+v", txn.NeedsRSET(), txn.Outcome(0))
			}

			msg.Rcpts = []Path{{Addr: "ok3@d.example"}}
			if err := txn.Begin(&msg, &ext, ClientTxnOptions{RSETFirst: true}); err != nil {
				t.Fatal(err)
			}
			if cmds, _ := txn.Send(); !bytes.HasPrefix(cmds, []byte("RSET\r\n")) {
				t.Fatalf("first write %q, want RSET first", cmds)
			}
			if err := txn.Begin(&msg, &ext, ClientTxnOptions{RSETFirst: true}); err != nil {
				t.Fatal(err)
			}
			if ev := runAgainstSession(t, s, &txn, body, refuse); ev.Kind != EventMessage || !txn.Outcome(0).Delivered() {
				t.Fatalf("after RSET: message %v, outcome %+v", ev.Kind, txn.Outcome(0))
			}
		})
	}
}

// The setup byte of FuzzClientTxn: which extensions the server offers, the
// host's options, the message and 1 to 4 recipients.
const (
	fuzzPipelining = 1 << iota
	fuzzChunking
	fuzzRSETFirst
	fuzzNoChunking
	fuzzNotClean
	fuzzSize
	fuzzRcptShift = iota
)

// FuzzClientTxn feeds arbitrary server bytes to a client transaction: they
// are untrusted input. The transaction must not panic, must never ask the
// host to write while it waits or to wait while it has nothing outstanding,
// and must end — at the latest when the server closes with 421 — with one
// outcome per recipient, unless it reports the reply bytes as malformed.
func FuzzClientTxn(f *testing.F) {
	f.Add([]byte("250 ok\r\n250 ok\r\n550 5.1.1 no\r\n354 go\r\n250 2.0.0 queued\r\n"), uint8(fuzzPipelining|1<<fuzzRcptShift))
	f.Add([]byte("250 ok\r\n421 4.3.2 bye\r\n"), uint8(fuzzRSETFirst|2<<fuzzRcptShift))
	f.Add([]byte("250-a\r\n250 b\r\n550 x\r\n354 go\r\n250 ok\r\n"), uint8(fuzzPipelining|fuzzChunking))
	// Every client transcript's server bytes are seeds too, with its setup.
	files, _ := filepath.Glob("testdata/client/*.txt")
	for _, name := range files {
		tr := loadClientTranscript(f, name)
		var replies []byte
		for _, op := range tr.ops {
			replies = append(replies, op.flight...)
		}
		setup := uint8(min(len(tr.msg.Rcpts)-1, 3) << fuzzRcptShift)
		for _, b := range []struct {
			on  bool
			bit uint8
		}{{tr.ext.Pipelining, fuzzPipelining}, {tr.ext.Chunking, fuzzChunking}, {tr.opts.RSETFirst, fuzzRSETFirst},
			{tr.opts.NoChunking, fuzzNoChunking}, {!tr.msg.CRLFClean, fuzzNotClean}, {tr.ext.Size > 0, fuzzSize}} {
			if b.on {
				setup |= b.bit
			}
		}
		f.Add(replies, setup)
	}
	f.Fuzz(func(t *testing.T, replies []byte, setup uint8) {
		ext := Extensions{Pipelining: setup&fuzzPipelining != 0, Chunking: setup&fuzzChunking != 0, EightBitMIME: true}
		if setup&fuzzSize != 0 {
			ext.Size = 1000
		}
		msg := ClientMessage{From: Path{Addr: "s@src.test"}, Size: 100, EightBit: true, CRLFClean: setup&fuzzNotClean == 0}
		for i := 0; i <= int(setup>>fuzzRcptShift); i++ {
			msg.Rcpts = append(msg.Rcpts, Path{Addr: "r" + strconv.Itoa(i) + "@dst.test"})
		}
		var txn ClientTxn
		if err := txn.Begin(&msg, &ext, ClientTxnOptions{RSETFirst: setup&fuzzRSETFirst != 0, NoChunking: setup&fuzzNoChunking != 0}); err != nil {
			t.Fatal(err)
		}
		closed := false // the 421 that ends every script was fed
		buf := replies
		for steps := 0; !txn.Done(); steps++ {
			if steps > 10000 {
				t.Fatal("the transaction does not end")
			}
			if txn.Awaiting() {
				t.Fatal("waiting for replies before Send")
			}
			if cmds, body := txn.Send(); cmds == nil && body == NoBody {
				t.Fatal("not done, not waiting and nothing to write")
			}
			if c, b := txn.Send(); c != nil || b != NoBody {
				t.Fatal("Send twice for one write")
			}
			for txn.Awaiting() {
				n, _, err := txn.Feed(buf)
				if err != nil {
					return // the host gives up the connection
				}
				if n == 0 {
					if closed {
						t.Fatalf("a whole 421 did not end the transaction")
					}
					buf, closed = []byte("421 4.4.2 closing\r\n"), true
					continue
				}
				buf = buf[n:]
			}
		}
		if !txn.Settled() {
			t.Fatal("done but not settled")
		}
		if closed && !txn.Closing() {
			t.Fatal("a 421 did not mark the session closing")
		}
		for i := range msg.Rcpts {
			o := txn.Outcome(i)
			if o.By > DecidedByMessage || o.By == NotAnswered && (o.Reply.Lines != nil || ext.Pipelining) {
				t.Fatalf("recipient %d: %+v", i, o)
			}
			if o.By != NotAnswered && o.Reply.Lines == nil {
				t.Fatalf("recipient %d decided by %s without a reply", i, o.By)
			}
			if o.Delivered() && o.By != DecidedByMessage {
				t.Fatalf("recipient %d delivered by %s", i, o.By)
			}
		}
	})
}

// BenchmarkClientTxn measures the protocol side of one pipelined DATA
// transaction with two recipients: Begin, the envelope write, four replies,
// the body, the final reply and the outcomes, as a session runs one after
// another: the envelope's replies are the same each time, the final one
// names a new queue id. The final reply's text is the only allocation
// (ParseReply keeps it; the others come from the session's memo).
func BenchmarkClientTxn(b *testing.B) {
	msg := ClientMessage{From: Path{Addr: "sender@client.example.test"}, Rcpts: []Path{{Addr: "a@dest.example.test"}, {Addr: "b@dest.example.test"}},
		Size: 2048, EightBit: true, CRLFClean: true}
	ext := Extensions{Pipelining: true, EightBitMIME: true, EnhancedStatusCodes: true, Size: 10 << 20}
	envelopeReplies := []byte("250 2.1.0 Sender OK\r\n250 2.1.5 Recipient OK\r\n250 2.1.5 Recipient OK\r\n354 End data with <CR><LF>.<CR><LF>\r\n")
	final := []byte("250 2.0.0 OK queued as 1234\r\n")
	id := final[len(final)-6 : len(final)-2]
	var txn ClientTxn
	b.ReportAllocs()
	for b.Loop() {
		for i := len(id) - 1; i >= 0; i-- { // the next queue id
			if id[i]++; id[i] <= '9' {
				break
			}
			id[i] = '0'
		}
		if err := txn.Begin(&msg, &ext, ClientTxnOptions{}); err != nil {
			b.Fatal(err)
		}
		txn.Send()
		for p := envelopeReplies; txn.Awaiting(); {
			n, _, _ := txn.Feed(p)
			p = p[n:]
		}
		if _, body := txn.Send(); body != BodyDotStuffed {
			b.Fatalf("body %d", body)
		}
		txn.Feed(final)
		for i := range msg.Rcpts {
			if !txn.Outcome(i).Delivered() {
				b.Fatal("not delivered")
			}
		}
	}
}
