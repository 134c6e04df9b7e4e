package smtpwire

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// A transcript is a scripted SMTP conversation; the format is described in
// testdata/transcripts/README.md.
type transcript struct {
	name    string
	cfg     ServerConfig
	ops     []transcriptOp // flights and host actions, in order
	events  []expectedEvent
	output  []byte // every S: line, CRLF-terminated
	sawExit bool
}

type transcriptOp struct {
	flight []byte // client bytes sent together; nil for an action
	action string // "timeout"
}

type expectedEvent struct {
	line   int
	desc   string
	answer *Reply // nil: accept with the default reply
}

func loadTranscript(t *testing.T, path string) *transcript {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	tr := &transcript{name: filepath.Base(path), cfg: ServerConfig{
		Hostname: "mx.gannet.test", MaxMessageSize: 1000000, MaxRecipients: 100,
	}}
	inFlight := false
	for i, raw := range strings.Split(string(data), "\n") {
		lineNo := i + 1
		line := strings.TrimSuffix(raw, "\r")
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if strings.HasPrefix(line, "@config") {
			applyConfig(t, &tr.cfg, strings.Fields(line)[1:], path, lineNo)
			continue
		}
		if len(line) < 3 || line[1] != ':' || (len(line) > 2 && line[2] != ' ') {
			t.Fatalf("%s:%d: bad line %q", path, lineNo, line)
		}
		text := line[3:]
		switch line[0] {
		case 'C', 'R':
			b := unescape(t, text, path, lineNo)
			if line[0] == 'C' {
				b = append(b, '\r', '\n')
			}
			if !inFlight {
				tr.ops = append(tr.ops, transcriptOp{flight: []byte{}})
				inFlight = true
			}
			op := &tr.ops[len(tr.ops)-1]
			op.flight = append(op.flight, b...)
			continue
		case 'S':
			tr.output = append(tr.output, unescape(t, text, path, lineNo)...)
			tr.output = append(tr.output, '\r', '\n')
		case 'E':
			ev := expectedEvent{line: lineNo, desc: text}
			if desc, ans, ok := strings.Cut(text, " => "); ok {
				r, _, err := ParseReply([]byte(ans + "\r\n"))
				if err != nil {
					t.Fatalf("%s:%d: bad answer %q: %v", path, lineNo, ans, err)
				}
				ev.desc, ev.answer = desc, &r
			}
			tr.events = append(tr.events, ev)
		case 'X':
			tr.ops = append(tr.ops, transcriptOp{action: text})
		default:
			t.Fatalf("%s:%d: unknown line kind %q", path, lineNo, line[:1])
		}
		inFlight = false
	}
	return tr
}

func applyConfig(t *testing.T, c *ServerConfig, kvs []string, path string, line int) {
	for _, kv := range kvs {
		k, v, _ := strings.Cut(kv, "=")
		num := func() int64 {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				t.Fatalf("%s:%d: %s needs a number", path, line, k)
			}
			return n
		}
		switch k {
		case "hostname":
			c.Hostname = v
		case "maxsize":
			c.MaxMessageSize = num()
		case "maxrcpts":
			c.MaxRecipients = int(num())
		case "maxbad":
			c.MaxBadCommands = int(num())
		case "barelf":
			if v == "reject" {
				c.BareLF = BareLFReject
			}
		case "starttls":
			c.StartTLS = true
		case "auth":
			c.AuthMechs = strings.Split(v, ",")
		case "authrequired":
			c.AuthRequired = true
		case "authtls":
			c.AuthRequireTLS = true
		case "requiretls":
			c.RequireTLS = true
		case "challenge":
			c.CRAMChallenge = func() string { return v }
		case "maxoutput":
			c.MaxOutput = int(num())
		default:
			t.Fatalf("%s:%d: unknown config key %q", path, line, k)
		}
	}
}

// unescape turns \r \n \t \\ and \xHH into bytes.
func unescape(t testing.TB, s, path string, line int) []byte {
	var b []byte
	for i := 0; i < len(s); i++ {
		if s[i] != '\\' || i+1 == len(s) {
			b = append(b, s[i])
			continue
		}
		i++
		switch s[i] {
		case 'r':
			b = append(b, '\r')
		case 'n':
			b = append(b, '\n')
		case 't':
			b = append(b, '\t')
		case '\\':
			b = append(b, '\\')
		case 'x':
			if i+3 > len(s) {
				t.Fatalf("%s:%d: short \\x escape", path, line)
			}
			n, err := strconv.ParseUint(s[i+1:i+3], 16, 8)
			if err != nil {
				t.Fatalf("%s:%d: bad \\x escape", path, line)
			}
			b = append(b, byte(n))
			i += 2
		default:
			t.Fatalf("%s:%d: unknown escape \\%c", path, line, s[i])
		}
	}
	return b
}

// describe renders an event in the E: line format; bytes >= 0x80 outside
// the body are written as \xHH.
func describe(ev Event) string {
	d := describeRaw(ev)
	var b strings.Builder
	for i := 0; i < len(d); i++ {
		if d[i] >= 0x80 {
			fmt.Fprintf(&b, "\\x%02x", d[i])
		} else {
			b.WriteByte(d[i])
		}
	}
	return b.String()
}

func describeRaw(ev Event) string {
	switch ev.Kind {
	case EventHello:
		return "hello " + ev.Hello
	case EventMail:
		s := "mail " + ev.Mail.From.String()
		if ev.Mail.Size > 0 {
			s += " size=" + strconv.FormatInt(ev.Mail.Size, 10)
		}
		if ev.Mail.BodyBinary {
			s += " binarymime"
		} else if ev.Mail.Body8BIT {
			s += " 8bitmime"
		}
		if ev.Mail.SMTPUTF8 {
			s += " smtputf8"
		}
		if ev.Mail.RequireTLS {
			s += " requiretls"
		}
		if ev.Mail.Ret != 0 {
			s += " ret=" + ev.Mail.Ret.String()
		}
		if ev.Mail.EnvID != "" {
			s += " envid=" + strconv.Quote(ev.Mail.EnvID)
		}
		return s
	case EventRcpt:
		s := "rcpt " + ev.Rcpt.String()
		if ev.Rcpt.Notify != 0 {
			s += " notify=" + ev.Rcpt.Notify.String()
		}
		if ev.Rcpt.ORcpt != "" {
			s += " orcpt=" + strconv.Quote(ev.Rcpt.ORcpt)
		}
		return s
	case EventMessage:
		e := ev.Envelope
		var to []string
		for _, r := range e.Rcpts {
			to = append(to, r.String())
		}
		s := "message from=" + e.From.String() + " to=" + strings.Join(to, ",")
		if e.TLS {
			s += " tls"
		}
		if e.AuthUser != "" {
			s += " auth=" + e.AuthUser
		}
		if e.Chunked {
			s += " chunked"
		}
		if e.RequireTLS {
			s += " requiretls"
		}
		if e.Ret != 0 || e.EnvID != "" {
			s += " ret=" + e.Ret.String() + " envid=" + strconv.Quote(e.EnvID)
		}
		for _, r := range e.Rcpts {
			if r.Notify != 0 || r.ORcpt != "" {
				s += " dsn(" + r.Addr + ")=" + r.Notify.String() + "/" + strconv.Quote(r.ORcpt)
			}
		}
		return s + " body=" + strconv.QuoteToASCII(string(ev.Body))
	case EventAuth:
		a := ev.Auth
		if a.Mechanism == "CRAM-MD5" {
			return fmt.Sprintf("auth CRAM-MD5 user=%q challenge=%q digest=%q", a.Username, a.Challenge, a.Digest)
		}
		return fmt.Sprintf("auth %s authz=%q user=%q pass=%q", a.Mechanism, a.Authzid, a.Username, a.Password)
	case EventStartTLS:
		return "starttls"
	case EventQuit:
		return "quit"
	case EventClose:
		return "close"
	}
	return "none"
}

// splitter cuts one flight into the pieces a host would read.
type splitter func(flight []byte) [][]byte

func whole(f []byte) [][]byte { return [][]byte{f} }

func bytewise(f []byte) [][]byte {
	var out [][]byte
	for i := range f {
		out = append(out, f[i:i+1])
	}
	return out
}

func splitAt(pos int) splitter {
	return func(f []byte) [][]byte {
		if pos >= len(f) {
			return [][]byte{f}
		}
		return [][]byte{f[:pos], f[pos:]}
	}
}

func randomSplits(seed uint64) splitter {
	rng := rand.New(rand.NewPCG(seed, 7))
	return func(f []byte) [][]byte {
		var out [][]byte
		for len(f) > 0 {
			n := 1 + rng.IntN(min(len(f), 1+rng.IntN(40)))
			out = append(out, f[:n])
			f = f[n:]
		}
		return out
	}
}

// run plays tr against a fresh session the way a host does and returns the
// output and the events seen, or an error at the first unexpected event.
func (tr *transcript) run(split splitter) (out []byte, err error) {
	s := NewSession(&tr.cfg)
	out = append(out, s.Greeting()...)
	evi := 0
	flush := func() error {
		o := s.Output()
		if _, err := checkWellFormed(o); err != nil {
			return fmt.Errorf("malformed output %q: %v", o, err)
		}
		out = append(out, o...)
		s.ConsumeOutput(len(o))
		return nil
	}
	closed := false
	for _, op := range tr.ops {
		if closed {
			return out, fmt.Errorf("client bytes or actions after the session ended")
		}
		if op.flight == nil {
			switch op.action {
			case "timeout":
				s.Timeout()
				closed = true
			default:
				return out, fmt.Errorf("unknown action %q", op.action)
			}
			if err := flush(); err != nil {
				return out, err
			}
			continue
		}
		var buf []byte
	pieces:
		for _, piece := range split(op.flight) {
			buf = append(buf, piece...)
			for {
				n, ev := s.Feed(buf)
				if n < 0 || n > len(buf) {
					return out, fmt.Errorf("Feed returned n=%d for %d bytes", n, len(buf))
				}
				if ev.Kind == EventNone && n != len(buf) {
					return out, fmt.Errorf("EventNone with %d of %d bytes consumed", n, len(buf))
				}
				if err := checkOutputBound(s, &tr.cfg, ev); err != nil {
					return out, err
				}
				buf = buf[n:]
				if err := flush(); err != nil {
					return out, err
				}
				if ev.Kind == EventNone {
					break
				}
				if ev.Kind == EventFlush {
					continue // not a protocol event: only the output was written
				}
				if evi >= len(tr.events) {
					return out, fmt.Errorf("unexpected event %q", describe(ev))
				}
				want := tr.events[evi]
				evi++
				if got := describe(ev); got != want.desc {
					return out, fmt.Errorf("line %d: event\n got %s\nwant %s", want.line, got, want.desc)
				}
				if ev.Kind.WantsResponse() {
					if m, _ := s.Feed([]byte("NOOP\r\n")); m != 0 {
						return out, fmt.Errorf("Feed consumed input while waiting for Respond")
					}
					s.Respond(want.answer)
					if err := flush(); err != nil {
						return out, err
					}
				}
				switch ev.Kind {
				case EventStartTLS:
					// Discard everything buffered and the rest of the flight,
					// as the host must (RFC 3207 §5).
					s.TLSStarted()
					break pieces
				case EventQuit, EventClose:
					closed = true
					break pieces
				}
			}
		}
	}
	if !closed && s.Closed() {
		// A refused AUTH may have ended the session inside Respond.
		if _, ev := s.Feed(nil); ev.Kind != EventClose {
			return out, fmt.Errorf("closed session does not report EventClose")
		}
	}
	if evi != len(tr.events) {
		return out, fmt.Errorf("line %d: expected event %q did not happen", tr.events[evi].line, tr.events[evi].desc)
	}
	return out, nil
}

// maxReplyLen bounds the replies the session writes for one command: the
// EHLO reply is the longest, about 400 octets with a host name of 255, and
// a 421 may follow a refusal.
const maxReplyLen = 512

// checkOutputBound checks what Feed left in Output, which the hosts here
// flush before every Feed: EventFlush only once MaxOutput bytes wait, and
// never more than MaxOutput plus the replies to one more command.
func checkOutputBound(s *Session, cfg *ServerConfig, ev Event) error {
	limit := cfg.MaxOutput
	if limit <= 0 {
		limit = DefaultMaxOutput
	}
	pending := len(s.Output())
	if ev.Kind == EventFlush && pending < limit {
		return fmt.Errorf("EventFlush with %d bytes of output, under MaxOutput %d", pending, limit)
	}
	if pending >= limit+maxReplyLen {
		return fmt.Errorf("Feed left %d bytes of output, MaxOutput is %d", pending, limit)
	}
	return nil
}

// checkWellFormed parses out as a sequence of replies.
func checkWellFormed(out []byte) (int, error) {
	n := 0
	for len(out) > 0 {
		_, used, err := ParseReply(out)
		if err != nil {
			return n, err
		}
		if !bytes.HasSuffix(out[:used], []byte("\r\n")) {
			return n, fmt.Errorf("reply without CRLF")
		}
		out = out[used:]
		n++
	}
	return n, nil
}

func TestTranscripts(t *testing.T) {
	files, err := filepath.Glob("testdata/transcripts/*.txt")
	if err != nil || len(files) == 0 {
		t.Fatalf("no transcripts: %v", err)
	}
	for _, f := range files {
		tr := loadTranscript(t, f)
		t.Run(tr.name, func(t *testing.T) {
			check := func(mode string, split splitter) bool {
				out, err := tr.run(split)
				if err != nil {
					t.Errorf("%s: %v\noutput so far:\n%s", mode, err, out)
					return false
				}
				if !bytes.Equal(out, tr.output) {
					t.Errorf("%s: output differs\n%s", mode, diffLines(out, tr.output))
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

// forEachSplit calls check with every way a transcript is played: each
// flight whole, byte by byte, cut in two at every position below maxLen
// (the longest flight) and cut at random points (fixed seeds). It stops at
// the first check that fails.
func forEachSplit(maxLen int, check func(mode string, split splitter) bool) {
	if !check("whole", whole) || !check("bytewise", bytewise) {
		return
	}
	for pos := 1; pos < maxLen; pos++ {
		if !check(fmt.Sprintf("split at %d", pos), splitAt(pos)) {
			return
		}
	}
	for seed := uint64(1); seed <= 30; seed++ {
		if !check(fmt.Sprintf("random seed %d", seed), randomSplits(seed)) {
			return
		}
	}
}

func diffLines(got, want []byte) string {
	g := strings.SplitAfter(string(got), "\n")
	w := strings.SplitAfter(string(want), "\n")
	var b strings.Builder
	for i := 0; i < max(len(g), len(w)); i++ {
		var gl, wl string
		if i < len(g) {
			gl = g[i]
		}
		if i < len(w) {
			wl = w[i]
		}
		mark := "  "
		if gl != wl {
			mark = "!!"
		}
		fmt.Fprintf(&b, "%s got  %q\n%s want %q\n", mark, gl, mark, wl)
	}
	return b.String()
}
