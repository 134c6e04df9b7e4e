package smtpwire

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
)

func testConfig() *ServerConfig {
	return &ServerConfig{Hostname: "mx.gannet.test", MaxMessageSize: 1 << 20, MaxRecipients: 10}
}

// drain returns and consumes the session's output.
func drain(s *Session) string {
	o := string(s.Output())
	s.ConsumeOutput(len(o))
	return o
}

func TestFeedWaitsForRespond(t *testing.T) {
	s := NewSession(testConfig())
	in := []byte("EHLO c.example\r\nMAIL FROM:<a@c.example>\r\nRCPT TO:<b@d.example>\r\n")
	n, ev := s.Feed(in)
	if ev.Kind != EventHello || ev.Hello != "c.example" {
		t.Fatalf("got %v", ev.Kind)
	}
	in = in[n:]
	n, ev = s.Feed(in)
	if ev.Kind != EventMail || ev.Mail.From.Addr != "a@c.example" || ev.Envelope.Helo != "c.example" || !s.Waiting() {
		t.Fatalf("got %v %+v", ev.Kind, ev.Mail)
	}
	in = in[n:]
	// The host's worker is busy: nothing is consumed, nothing answered.
	drain(s)
	for range 3 {
		if m, ev := s.Feed(in); m != 0 || ev.Kind != EventNone {
			t.Fatalf("Feed while waiting: %d %v", m, ev.Kind)
		}
	}
	if out := drain(s); out != "" {
		t.Fatalf("output while waiting: %q", out)
	}
	s.Respond(nil)
	if out := drain(s); out != "250 2.1.0 Sender OK\r\n" {
		t.Fatalf("after Respond: %q", out)
	}
	n, ev = s.Feed(in)
	if ev.Kind != EventRcpt || ev.Rcpt.Addr != "b@d.example" || n != len(in) {
		t.Fatalf("got %v n=%d", ev.Kind, n)
	}
	s.Respond(&ReplyRelayDenied)
	if out := drain(s); out != "554 5.7.1 Relay access denied\r\n" {
		t.Fatalf("refusal: %q", out)
	}
	s.Respond(nil) // nothing pending: ignored
	if out := drain(s); out != "" {
		t.Fatalf("Respond without event wrote %q", out)
	}
}

func TestStartTLSStopsAtCommand(t *testing.T) {
	cfg := testConfig()
	cfg.StartTLS = true
	s := NewSession(cfg)
	s.Feed([]byte("EHLO c.example\r\n"))
	drain(s)
	in := []byte("STARTTLS\r\nMAIL FROM:<injected@evil.example>\r\n")
	n, ev := s.Feed(in)
	if ev.Kind != EventStartTLS || n != len("STARTTLS\r\n") {
		t.Fatalf("got %v n=%d", ev.Kind, n)
	}
	if out := drain(s); out != "220 2.0.0 Ready to start TLS\r\n" {
		t.Fatalf("out %q", out)
	}
	// A careless host that feeds the rest anyway: it is dropped.
	if m, ev := s.Feed(in[n:]); m != len(in)-n || ev.Kind != EventNone || drain(s) != "" {
		t.Fatal("bytes before the handshake were not dropped")
	}
	s.TLSStarted()
	s.Feed([]byte("EHLO c.example\r\n"))
	if out := drain(s); strings.Contains(out, "STARTTLS") {
		t.Fatalf("STARTTLS advertised under TLS: %q", out)
	}
	_, ev = s.Feed([]byte("MAIL FROM:<a@c.example>\r\n"))
	if ev.Kind != EventMail || !ev.Envelope.TLS {
		t.Fatal("envelope does not say TLS")
	}
}

func TestImplicitTLSAndProtocol(t *testing.T) {
	cfg := testConfig()
	cfg.AuthMechs = []string{"PLAIN"}
	cfg.AuthRequireTLS = true
	s := NewSession(cfg)
	s.TLSStarted()
	s.Feed([]byte("EHLO c.example\r\n"))
	if out := drain(s); !strings.Contains(out, "250-AUTH PLAIN\r\n") {
		t.Fatalf("AUTH not offered under implicit TLS: %q", out)
	}
	_, ev := s.Feed([]byte("AUTH PLAIN " + base64.StdEncoding.EncodeToString([]byte("\x00u\x00p")) + "\r\n"))
	if ev.Kind != EventAuth || ev.Auth.Username != "u" || ev.Auth.Password != "p" {
		t.Fatalf("auth event %v", ev.Kind)
	}
	s.Respond(nil)
	_, ev = s.Feed([]byte("MAIL FROM:<a@c.example> SMTPUTF8\r\n"))
	if got := ev.Envelope.Protocol(); got != "UTF8SMTPSA" {
		t.Errorf("Protocol = %s", got)
	}
	for _, tt := range []struct {
		e    Envelope
		want string
	}{
		{Envelope{}, "SMTP"}, {Envelope{ESMTP: true}, "ESMTP"}, {Envelope{ESMTP: true, TLS: true}, "ESMTPS"},
		{Envelope{ESMTP: true, AuthUser: "u"}, "ESMTPA"}, {Envelope{ESMTP: true, TLS: true, AuthUser: "u"}, "ESMTPSA"},
	} {
		if got := tt.e.Protocol(); got != tt.want {
			t.Errorf("%+v: %s, want %s", tt.e, got, tt.want)
		}
	}
}

// A long AUTH line (RFC 4954 §4 allows 12288 octets) is not "too long".
func TestAuthLineLimit(t *testing.T) {
	cfg := testConfig()
	cfg.AuthMechs = []string{"PLAIN"}
	s := NewSession(cfg)
	s.Feed([]byte("EHLO c.example\r\n"))
	drain(s)
	pass := strings.Repeat("p", 6000)
	line := []byte("AUTH PLAIN " + base64.StdEncoding.EncodeToString([]byte("\x00u\x00"+pass)) + "\r\n")
	var ev Event
	for i := 0; i < len(line); i += 100 {
		_, ev = s.Feed(line[i:min(i+100, len(line))])
	}
	if ev.Kind != EventAuth || ev.Auth.Password != pass {
		t.Fatalf("long AUTH line: %v, out %q", ev.Kind, drain(s))
	}
}

// The body given with EventMessage is the host's: the next message does not
// write into it.
func TestBodyOwnership(t *testing.T) {
	s := NewSession(testConfig())
	txn := "MAIL FROM:<a@c.example>\r\nRCPT TO:<b@d.example>\r\nDATA\r\n"
	in := []byte("HELO c.example\r\n" + txn + "first\r\n.\r\n" + txn + "second\r\n.\r\n")
	var bodies [][]byte
	for len(in) > 0 {
		n, ev := s.Feed(in)
		in = in[n:]
		if ev.Kind == EventMessage {
			bodies = append(bodies, ev.Body)
		}
		s.Respond(nil)
	}
	if len(bodies) != 2 || string(bodies[0]) != "first\r\n" || string(bodies[1]) != "second\r\n" {
		t.Fatalf("bodies %q", bodies)
	}
	out := drain(s)
	if strings.Count(out, "250 2.0.0 OK\r\n") != 2 {
		t.Fatalf("out %q", out)
	}
}

// TestLargeBodyGrowth: a 300 KB body without SIZE= arrives in 16 KB reads
// (as gnet hands them over); it comes out intact, and its buffer was grown
// by doubling (at most twice the body plus one read), not line by line.
func TestLargeBodyGrowth(t *testing.T) {
	s := NewSession(testConfig())
	body := benchBody(300 << 10)
	in := []byte("HELO c.example\r\nMAIL FROM:<a@c.example>\r\nRCPT TO:<b@d.example>\r\nDATA\r\n")
	in = AppendDotStuffed(in, body)
	var got []byte
	var m0, m1 runtime.MemStats
	runtime.ReadMemStats(&m0)
	for len(in) > 0 {
		chunk := in[:min(len(in), 16<<10)]
		n, ev := s.Feed(chunk)
		in = in[n:]
		if ev.Kind == EventMessage {
			got = ev.Body
		}
		if ev.Kind.WantsResponse() {
			s.Respond(nil)
		}
	}
	if !bytes.Equal(got, body) {
		t.Fatalf("body of %d bytes came out as %d bytes", len(body), len(got))
	}
	runtime.ReadMemStats(&m1)
	if cap(got) > 2*len(body)+16<<10 {
		t.Errorf("buffer capacity %d for a %d-byte body", cap(got), len(body))
	}
	// Doubling allocates at most twice the final capacity in all (3.4
	// times the body here); growing by Go's append steps allocated five
	// times the body and copied it about ten times.
	if alloc := m1.TotalAlloc - m0.TotalAlloc; alloc > 4*uint64(len(body)) {
		t.Errorf("collecting a %d-byte body allocated %d bytes", len(body), alloc)
	}
}

// TestBodyBufferSizedByPrevious: a client that declares no SIZE= sends
// 100 KB messages, over DATA and over BDAT; from the session's second
// message on, the body buffer the host lends (BodyBuffer) is asked for
// that size at once and never replaced while the body arrives.
func TestBodyBufferSizedByPrevious(t *testing.T) {
	body := benchBody(100 << 10)
	data := append([]byte("MAIL FROM:<a@c.example>\r\nRCPT TO:<b@d.example>\r\nDATA\r\n"), AppendDotStuffed(nil, body)...)
	bdat := fmt.Appendf(nil, "MAIL FROM:<a@c.example>\r\nRCPT TO:<b@d.example>\r\nBDAT %d LAST\r\n%s", len(body), body)
	for name, in := range map[string][]byte{"DATA": data, "BDAT": bdat} {
		t.Run(name, func(t *testing.T) {
			cfg := testConfig()
			var asked []int
			cfg.BodyBuffer = func(n int) []byte {
				asked = append(asked, n)
				return make([]byte, 0, n)
			}
			s := NewSession(cfg)
			s.Feed([]byte("EHLO c.example\r\n"))
			drain(s)
			for i := range 3 {
				var got []byte
				for p := in; len(p) > 0; {
					n, ev := s.Feed(p[:min(len(p), 16<<10)])
					p = p[n:]
					if ev.Kind == EventMessage {
						got = ev.Body
					}
					if ev.Kind.WantsResponse() {
						s.Respond(nil)
					}
				}
				drain(s)
				if !bytes.Equal(got, body) {
					t.Fatalf("message %d: body of %d bytes came out as %d bytes", i, len(body), len(got))
				}
				if i > 0 && (asked[i] < len(body) || cap(got) != asked[i]) {
					t.Errorf("message %d: asked for a %d-byte buffer, body in one of %d; want one buffer for %d bytes", i, asked[i], cap(got), len(body))
				}
			}
		})
	}
}

// BenchmarkSessionLargeBody feeds a 100 KB message without SIZE= in 16 KB
// reads: the cost of collecting a large DATA body.
func BenchmarkSessionLargeBody(b *testing.B) {
	body := benchBody(100 << 10)
	in := []byte("MAIL FROM:<a@c.example>\r\nRCPT TO:<b@d.example>\r\nDATA\r\n")
	in = AppendDotStuffed(in, body)
	s := NewSession(testConfig())
	s.Feed([]byte("EHLO client.example.test\r\n"))
	drain(s)
	b.ReportAllocs()
	b.SetBytes(int64(len(in)))
	for b.Loop() {
		p := in
		for len(p) > 0 {
			n, ev := s.Feed(p[:min(len(p), 16<<10)])
			p = p[n:]
			if ev.Kind.WantsResponse() {
				s.Respond(nil)
			}
		}
		s.ConsumeOutput(len(s.Output()))
	}
}

func TestUnlimitedBadCommands(t *testing.T) {
	cfg := testConfig()
	cfg.MaxBadCommands = -1
	s := NewSession(cfg)
	_, ev := s.Feed([]byte(strings.Repeat("BOGUS\r\n", 100)))
	if ev.Kind != EventNone || s.Closed() || strings.Count(drain(s), "500 5.5.2") != 100 {
		t.Fatal("session closed with MaxBadCommands < 0")
	}
	s.Timeout()
	s.Timeout()
	if out := drain(s); out != "421 4.4.2 mx.gannet.test Error: timeout exceeded\r\n" {
		t.Fatalf("timeout: %q", out)
	}
	if n, ev := s.Feed([]byte("NOOP\r\n")); n != 6 || ev.Kind != EventClose {
		t.Fatal("closed session does not say so")
	}
}

// Commands that need no event cost no allocation.
func TestCommandsDoNotAllocate(t *testing.T) {
	s := NewSession(testConfig())
	s.Feed([]byte("EHLO c.example\r\n"))
	drain(s)
	in := []byte("NOOP\r\nRSET\r\nVRFY x\r\nRCPT TO:<b@d.example>\r\nBOGUS\r\n")
	cfgBad := s.maxBad
	s.maxBad = -1
	allocs := testing.AllocsPerRun(100, func() {
		s.Feed(in)
		s.ConsumeOutput(len(s.Output()))
	})
	s.maxBad = cfgBad
	if allocs != 0 {
		t.Errorf("%.1f allocations per run", allocs)
	}
}

// runFuzzSession plays data against a session, cut at points from rng, with
// a host that answers events from the data itself.
func runFuzzSession(t *testing.T, data []byte, seed uint64) {
	cfg := &ServerConfig{
		Hostname: "mx.gannet.test", MaxMessageSize: 300, MaxRecipients: 3, MaxBadCommands: -1,
		StartTLS: true, AuthMechs: []string{"PLAIN", "LOGIN", "CRAM-MD5"},
		CRAMChallenge: func() string { return "<1.2@mx.gannet.test>" },
	}
	if seed%2 == 1 {
		cfg.BareLF = BareLFReject
		cfg.MaxBadCommands = 5
	}
	// Small output caps make Feed yield (EventFlush) in the middle of
	// pipelined batches.
	cfg.MaxOutput = 1 + int(seed>>1%512)
	s := NewSession(cfg)
	rng := rand.New(rand.NewPCG(seed, 1))
	var buf []byte
	check := func() {
		o := s.Output()
		if _, err := checkWellFormed(o); err != nil {
			t.Fatalf("malformed output %q: %v", o, err)
		}
		s.ConsumeOutput(len(o))
	}
	for len(data) > 0 && !s.Closed() {
		k := 1 + rng.IntN(min(len(data), 64))
		buf = append(buf, data[:k]...)
		data = data[k:]
		for steps := 0; ; steps++ {
			if steps > 10000 {
				t.Fatal("Feed makes no progress")
			}
			lines := s.Lines()
			n, ev := s.Feed(buf)
			if n < 0 || n > len(buf) || ev.Kind == EventNone && n != len(buf) {
				t.Fatalf("Feed: n=%d of %d, %v", n, len(buf), ev.Kind)
			}
			if err := checkOutputBound(s, cfg, ev); err != nil {
				t.Fatal(err)
			}
			if s.Lines() < lines {
				t.Fatalf("Lines went back from %d to %d", lines, s.Lines())
			}
			buf = buf[n:]
			check()
			if ev.Kind == EventNone {
				break
			}
			switch ev.Kind {
			case EventStartTLS:
				buf = buf[:0]
				s.TLSStarted()
			case EventQuit, EventClose:
				return
			case EventMessage:
				if int64(len(ev.Body)) > cfg.MaxMessageSize {
					t.Fatalf("body of %d bytes over the limit", len(ev.Body))
				}
			}
			if ev.Kind.WantsResponse() {
				switch rng.IntN(3) {
				case 0:
					s.Respond(nil)
				case 1:
					s.Respond(&ReplyRelayDenied)
				default:
					s.Respond(&Reply{Code: 250, Enhanced: "2.0.0", Lines: []string{"OK id=x\r\n250 evil"}})
				}
				check()
			}
		}
	}
}

// TestOutputYield: 4 MiB of pipelined "EHLO a" (each line answered with
// about 24 times its size) fed at once. Feed stops whenever MaxOutput bytes
// of replies wait (EventFlush) instead of producing ~100 MB of replies in
// one call; a host that writes them and feeds the rest gets every reply.
func TestOutputYield(t *testing.T) {
	const cmd = "EHLO a\r\n"
	in := bytes.Repeat([]byte(cmd), 4<<20/len(cmd))
	s := NewSession(testConfig())
	p, feeds, replies := in, 0, 0
	for len(p) > 0 {
		n, ev := s.Feed(p)
		feeds++
		if pending := len(s.Output()); pending >= DefaultMaxOutput+maxReplyLen {
			t.Fatalf("feed %d left %d bytes of output", feeds, pending)
		}
		switch ev.Kind {
		case EventHello:
		case EventFlush:
			if n == len(p) || len(s.Output()) < DefaultMaxOutput {
				t.Fatalf("EventFlush with %d of %d bytes consumed and %d bytes of output", n, len(p), len(s.Output()))
			}
		case EventNone:
			if n != len(p) {
				t.Fatalf("EventNone with %d of %d bytes consumed", n, len(p))
			}
		default:
			t.Fatalf("unexpected %v", ev.Kind)
		}
		p = p[n:]
		replies += bytes.Count(s.Output(), []byte("250 CHUNKING\r\n"))
		s.ConsumeOutput(len(s.Output()))
	}
	if want := len(in) / len(cmd); replies != want {
		t.Fatalf("%d EHLO replies, want %d", replies, want)
	}
	// An unflushed Output stops Feed at once.
	if _, ev := s.Feed([]byte(strings.Repeat("NOOP\r\n", DefaultMaxOutput))); ev.Kind != EventFlush {
		t.Fatalf("a long batch of NOOP: %v", ev.Kind)
	}
	if n, ev := s.Feed([]byte("NOOP\r\n")); n != 0 || ev.Kind != EventFlush {
		t.Fatalf("Feed with full Output: n=%d, %v", n, ev.Kind)
	}
}

// TestLinesCount follows Lines, which a host arms its per-line timeouts
// from: it moves when a command line, a SASL response, a line of message
// data or a BDAT chunk is complete, and not for bytes of an unfinished
// line, so a client trickling bytes does not move it.
func TestLinesCount(t *testing.T) {
	cfg := testConfig()
	cfg.AuthMechs = []string{"LOGIN"}
	s := NewSession(cfg)
	steps := []struct {
		in    string
		lines uint64
	}{
		{"EH", 0},
		{"LO c.example", 0},
		{"\r\n", 1},
		{"AUTH LOGIN\r\n", 2}, // the 334 exchange
		{"dXNlcg==\r", 2},
		{"\n", 3},
		{"cGFzcw==\r\n", 4},
		{"MAIL FROM:<a@c.example>\r\n", 5},
		{"RCPT TO:<b@d.example>\r\n", 6},
		{"DATA\r\n", 7},
		{"Subject: x\r\n\r\nhello", 9},
		{" world", 9},
		{strings.Repeat("x", DataLineMax-len("hello world")), 10}, // a long line counts per DataLineMax octets
		{"\r\n.\r\n", 12},
		{"X" + strings.Repeat("y", MaxCommandLine+10), 12}, // an overlong command line
		{"\r\n", 13},
		{"MAIL FROM:<a@c.example>\r\nRCPT TO:<b@d.example>\r\n", 15},
		{"BDAT 8\r\nabc", 16},
		{"de", 16},
		{"fgh", 17}, // the end of a chunk
		{"BDAT 3 LAST\r\nabc", 19},
	}
	for i, st := range steps {
		p := []byte(st.in)
		for {
			n, ev := s.Feed(p)
			p = p[n:]
			if ev.Kind.WantsResponse() {
				s.Respond(nil)
			}
			drain(s)
			if ev.Kind == EventNone {
				break
			}
		}
		if got := s.Lines(); got != st.lines {
			t.Fatalf("step %d (%q): Lines %d, want %d", i, st.in, got, st.lines)
		}
	}
}

func FuzzSession(f *testing.F) {
	for _, s := range []string{
		"EHLO x\r\nMAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\nhi\r\n.\r\nQUIT\r\n",
		"EHLO x\r\nMAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nBDAT 3 LAST\r\nabc",
		"EHLO x\r\nAUTH PLAIN\r\nAHUAcA==\r\nAUTH LOGIN\r\n*\r\nAUTH CRAM-MD5\r\ndSAwMTIzNDU2Nzg5YWJjZGVmMDEyMzQ1Njc4OWFiY2RlZg==\r\n",
		"EHLO x\r\nSTARTTLS\r\nEHLO y\r\n",
		"HELO x\n\nMAIL FROM:<\xff>\r\nDATA\r\n\n.\n\r\n.\r\n",
	} {
		f.Add([]byte(s), uint64(0))
	}
	// Every transcript's client bytes are seeds too.
	files, _ := filepath.Glob("testdata/transcripts/*.txt")
	for i, name := range files {
		data, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		var seed []byte
		for _, l := range strings.Split(string(data), "\n") {
			if strings.HasPrefix(l, "C: ") {
				seed = append(seed, l[3:]+"\r\n"...)
			} else if strings.HasPrefix(l, "R: ") {
				seed = append(seed, strings.NewReplacer(`\r`, "\r", `\n`, "\n").Replace(l[3:])...)
			}
		}
		f.Add(seed, uint64(i))
	}
	f.Fuzz(func(t *testing.T, data []byte, seed uint64) {
		runFuzzSession(t, data, seed)
	})
}

func BenchmarkSessionTransaction(b *testing.B) {
	body := benchBody(2 << 10)
	var in []byte
	in = append(in, "MAIL FROM:<sender@client.example.test> SIZE=2100 BODY=8BITMIME\r\n"...)
	in = append(in, "RCPT TO:<recipient@dest.example.test>\r\nDATA\r\n"...)
	in = AppendDotStuffed(in, body)
	s := NewSession(testConfig())
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
		if out := s.Output(); !bytes.HasSuffix(out, []byte("250 2.0.0 OK\r\n")) {
			b.Fatalf("out %q", out)
		}
		s.ConsumeOutput(len(s.Output()))
	}
}

// TestSessionState follows InTransaction, InData and InAuth through a
// session: what a host's timeouts depend on (RFC 5321 §4.5.3.2).
func TestSessionState(t *testing.T) {
	cfg := testConfig()
	cfg.AuthMechs = []string{"LOGIN"}
	s := NewSession(cfg)
	state := func() string {
		return fmt.Sprintf("txn=%v data=%v auth=%v", s.InTransaction(), s.InData(), s.InAuth())
	}
	steps := []struct {
		in, want string
		respond  *Reply
	}{
		{"EHLO c.example\r\n", "txn=false data=false auth=false", nil},
		{"AUTH LOGIN\r\n", "txn=false data=false auth=true", nil},
		{"*\r\n", "txn=false data=false auth=false", nil},
		{"MAIL FROM:<a@c.example>\r\n", "txn=true data=false auth=false", nil},
		{"RCPT TO:<b@d.example>\r\n", "txn=true data=false auth=false", nil},
		{"DATA\r\n", "txn=true data=true auth=false", nil},
		{"partial line", "txn=true data=true auth=false", nil},
		{"\r\n.\r\n", "txn=false data=false auth=false", &ReplyOK},
		{"MAIL FROM:<a@c.example>\r\n", "txn=false data=false auth=false", &ReplyQueueFull},
		{"MAIL FROM:<a@c.example>\r\n", "txn=true data=false auth=false", nil},
		{"RCPT TO:<b@d.example>\r\n", "txn=true data=false auth=false", nil},
		{"BDAT 10\r\n12345", "txn=true data=true auth=false", nil},
		{"67890", "txn=true data=false auth=false", nil},
		{"RSET\r\n", "txn=false data=false auth=false", nil},
	}
	for _, st := range steps {
		in := []byte(st.in)
		for len(in) > 0 {
			n, ev := s.Feed(in)
			in = in[n:]
			if ev.Kind.WantsResponse() {
				r := st.respond
				if ev.Kind != EventMessage && ev.Kind != EventMail {
					r = nil
				}
				s.Respond(r)
			}
			if ev.Kind == EventNone {
				break
			}
		}
		drain(s)
		if got := state(); got != st.want {
			t.Errorf("after %q: %s, want %s", st.in, got, st.want)
		}
	}
}

// runFuzzBDAT sends data in BDAT chunks whose sizes come from cuts
// (RFC 3030 §2), optionally with NOOPs between chunks, cut into pieces at
// points from seed, and checks the framing: the message is the chunks'
// concatenation, each chunk is acknowledged with the running total, an
// oversized message gets 552 5.3.4 and is never delivered, and the session
// is in step afterwards (the RSET sent last gets its 250).
func runFuzzBDAT(t *testing.T, data, cuts []byte, seed uint64) {
	const maxSize = 200
	cfg := &ServerConfig{Hostname: "mx.gannet.test", MaxMessageSize: maxSize, MaxBadCommands: -1}
	var in []byte
	in = append(in, "EHLO c.example\r\nMAIL FROM:<a@c.example>\r\nRCPT TO:<b@d.example>\r\n"...)
	var wantAcks []string
	rest, total, lastStart := data, 0, 0
	for i := 0; ; i++ {
		n := len(rest)
		if i < len(cuts) {
			n = min(n, int(cuts[i]%64))
		}
		last := n == len(rest) && i >= len(cuts)-1
		lastStart = total
		in = strconv.AppendInt(append(in, "BDAT "...), int64(n), 10)
		if last {
			in = append(in, " LAST"...)
		}
		in = append(in, "\r\n"...)
		in = append(in, rest[:n]...)
		rest, total = rest[n:], total+n
		if last {
			break
		}
		switch {
		case total <= maxSize:
			wantAcks = append(wantAcks, fmt.Sprintf("250 2.0.0 %d octets received\r\n", total))
		case total-n <= maxSize:
			wantAcks = append(wantAcks, "552 5.3.4 ")
		default:
			// RFC 3030 §2: after a failed chunk the transaction is over.
			wantAcks = append(wantAcks, "503 5.5.1 ")
		}
		if i < len(cuts) && cuts[i]&0x80 != 0 {
			in = append(in, "NOOP\r\n"...)
			wantAcks = append(wantAcks, "250 2.0.0 OK\r\n")
		}
	}
	in = append(in, "RSET\r\n"...)

	s := NewSession(cfg)
	rng := rand.New(rand.NewPCG(seed, 2))
	var out []byte
	var bodies [][]byte
	var buf []byte
	for len(in) > 0 || len(buf) > 0 {
		k := min(len(in), 1+rng.IntN(80))
		buf = append(buf, in[:k]...)
		in = in[k:]
		for steps := 0; ; steps++ {
			if steps > 10000 {
				t.Fatal("Feed makes no progress")
			}
			n, ev := s.Feed(buf)
			buf = buf[n:]
			if ev.Kind == EventMessage {
				if !ev.Envelope.Chunked {
					t.Fatal("BDAT message not marked Chunked")
				}
				bodies = append(bodies, append([]byte(nil), ev.Body...))
			}
			if ev.Kind.WantsResponse() {
				s.Respond(nil)
			}
			if ev.Kind == EventNone {
				break
			}
		}
		if len(in) == 0 {
			break
		}
	}
	out = append(out, s.Output()...)
	if _, err := checkWellFormed(out); err != nil {
		t.Fatalf("malformed output %q: %v", out, err)
	}
	lines := strings.SplitAfter(string(out), "\r\n")
	// Greeting-less session: EHLO reply lines, 250 MAIL, 250 RCPT, then ours.
	i := 0
	for i < len(lines) && strings.HasPrefix(lines[i], "250-") {
		i++
	}
	i += 3 // last EHLO line, MAIL, RCPT
	if i > len(lines) {
		t.Fatalf("short output %q", out)
	}
	got := lines[i:]
	if len(got) > 0 && got[len(got)-1] == "" {
		got = got[:len(got)-1]
	}
	want := len(wantAcks) + 2 // the acks, the final reply, RSET's 250
	if len(got) != want {
		t.Fatalf("%d replies after RCPT, want %d: %q", len(got), want, got)
	}
	for j, w := range wantAcks {
		if !strings.HasPrefix(got[j], w) {
			t.Fatalf("reply %d = %q, want %q", j, got[j], w)
		}
	}
	final := got[len(wantAcks)]
	if len(data) > maxSize {
		wantFinal := "552 5.3.4 "
		if lastStart > maxSize {
			wantFinal = "503 5.5.1 " // refused at an earlier chunk
		}
		if !strings.HasPrefix(final, wantFinal) || len(bodies) != 0 {
			t.Fatalf("oversized message: final %q, %d bodies", final, len(bodies))
		}
	} else if !strings.HasPrefix(final, "250 ") || len(bodies) != 1 || !bytes.Equal(bodies[0], data) {
		t.Fatalf("message: final %q, %d bodies", final, len(bodies))
	}
	if got[len(got)-1] != "250 2.0.0 OK\r\n" {
		t.Fatalf("session out of step: RSET answered %q", got[len(got)-1])
	}
}

func FuzzBDAT(f *testing.F) {
	f.Add([]byte("Subject: x\r\n\r\nhello\r\n"), []byte{5, 0x80 | 7}, uint64(0))
	f.Add([]byte(""), []byte{}, uint64(1))
	f.Add([]byte("BDAT 3 LAST\r\nRSET\r\n.\r\n"), []byte{0, 0, 3, 60}, uint64(2))
	f.Add([]byte(strings.Repeat("x", 250)), []byte{63, 63, 63, 63}, uint64(3))
	f.Fuzz(func(t *testing.T, data, cuts []byte, seed uint64) {
		if len(cuts) > 64 {
			cuts = cuts[:64]
		}
		runFuzzBDAT(t, data, cuts, seed)
	})
}
