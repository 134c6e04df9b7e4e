package sink

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)

func checkedPersona(t *testing.T, p Persona) *personaState {
	t.Helper()
	if err := p.check(); err != nil {
		t.Fatalf("check: %v", err)
	}
	return newPersonaState(p, t0)
}

// The hidden rate is a token bucket: a burst of RateBurst, then Rate a second.
func TestPersonaTokenBucket(t *testing.T) {
	ps := checkedPersona(t, Persona{Listen: "x", Rate: 10, RateBurst: 5})
	got := 0
	for range 20 {
		if ps.takeToken(t0) {
			got++
		}
	}
	if got != 5 {
		t.Fatalf("at once: %d let through, want the burst of 5", got)
	}
	// Over the next 10 s, one try every 10 ms: 10/s gets through.
	got = 0
	for i := 1; i <= 1000; i++ {
		if ps.takeToken(t0.Add(time.Duration(i) * 10 * time.Millisecond)) {
			got++
		}
	}
	if got < 99 || got > 101 {
		t.Errorf("over 10 s at 100 tries/s: %d let through, want about 100", got)
	}
	if !checkedPersona(t, Persona{Listen: "x"}).takeToken(t0) {
		t.Error("no rate set, yet a message was refused")
	}
}

// A deferral burst is the last DeferFor of every DeferEvery.
func TestPersonaBursts(t *testing.T) {
	ps := checkedPersona(t, Persona{Listen: "x", DeferEvery: Duration(30 * time.Second), DeferFor: Duration(5 * time.Second)})
	for _, c := range []struct {
		at   time.Duration
		want bool
	}{{0, false}, {24 * time.Second, false}, {25 * time.Second, true}, {29 * time.Second, true}, {30 * time.Second, false}, {56 * time.Second, true}} {
		if got := ps.inBurst(t0.Add(c.at)); got != c.want {
			t.Errorf("at %v: in burst %v, want %v", c.at, got, c.want)
		}
	}
}

// A new triple waits Greylist from its first attempt; others are apart.
func TestPersonaGreylist(t *testing.T) {
	ps := checkedPersona(t, Persona{Listen: "x", Greylist: Duration(time.Minute)})
	rcpt := []byte("u@a.example")
	if !ps.greylisted("127.0.0.1", "s@b.example", rcpt, t0) {
		t.Fatal("first attempt accepted")
	}
	if !ps.greylisted("127.0.0.1", "s@b.example", rcpt, t0.Add(59*time.Second)) {
		t.Fatal("accepted before the wait passed")
	}
	if !ps.greylisted("127.0.0.2", "s@b.example", rcpt, t0.Add(59*time.Second)) {
		t.Fatal("another client IP is another triple, yet it was accepted")
	}
	if ps.greylisted("127.0.0.1", "s@b.example", rcpt, t0.Add(time.Minute)) {
		t.Fatal("still greylisted after the wait")
	}
}

// Unknown users are a share of the addresses, the same ones every time.
func TestPersonaUnknownUsers(t *testing.T) {
	ps := checkedPersona(t, Persona{Listen: "x", UnknownUsers: 0.03})
	n := 0
	for i := range 20000 {
		addr := []byte(fmt.Sprintf("user%d@d%d.example", i, i%7))
		u := ps.unknownUser(addr)
		if u {
			n++
		}
		if ps.unknownUser([]byte(strings.ToUpper(string(addr)))) != u {
			t.Fatalf("%s: another answer in upper case", addr)
		}
	}
	if n < 500 || n > 700 {
		t.Errorf("%d of 20000 unknown, want about 600 (3%%)", n)
	}
}

func TestLoadPersonas(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.toml")
	os.WriteFile(good, []byte(`
[[persona]]
name = "big"
listen = "127.0.10.1:2525"
rate = 400
max_conns = 20
rate_stage = "rcpt"
rate_reply = "451 4.7.0 Slow down"
defer_every = "60s"
defer_for = "5s"
greylist = "30s"
unknown_users = 0.02
domains = ["a.example", "b.example"]

[[persona]]
listen = "127.0.10.2:2525"
`), 0o644)
	ps, err := LoadPersonas(good)
	if err != nil {
		t.Fatal(err)
	}
	if len(ps) != 2 || ps[0].Rate != 400 || time.Duration(ps[0].Greylist) != 30*time.Second || len(ps[0].Domains) != 2 {
		t.Fatalf("loaded %+v", ps)
	}
	if ps[1].Name != "127.0.10.2:2525" || ps[1].RateStage != "mail" || !strings.HasPrefix(ps[1].RateReply, "421 4.7.28") {
		t.Errorf("defaults not filled in: %+v", ps[1])
	}
	for _, bad := range []string{
		`[[persona]]` + "\n" + `rate = 1`,
		`[[persona]]` + "\n" + `listen = "x"` + "\n" + `rate_stage = "data"`,
		`[[persona]]` + "\n" + `listen = "x"` + "\n" + `rate_reply = "250 fine"`,
		`[[persona]]` + "\n" + `listen = "x"` + "\n" + `conn_reply = "451 4.7.0 busy"`,
		`[[persona]]` + "\n" + `listen = "x"` + "\n" + `defer_every = "5s"`,
		`[[persona]]` + "\n" + `listen = "x"` + "\n" + `greylist = "soon"`,
		`[[persona]]` + "\n" + `listen = "x"` + "\n" + `unknown_users = 2`,
	} {
		f := filepath.Join(dir, "bad.toml")
		os.WriteFile(f, []byte(bad), 0o644)
		if _, err := LoadPersonas(f); err == nil {
			t.Errorf("accepted %q", bad)
		}
	}
}

// sendOne runs one transaction and returns the first refusal's code (0:
// accepted).
func sendOne(c *rawClient, rcpt string) (int, string) {
	c.t.Helper()
	for _, line := range []string{"MAIL FROM:<s@b.example>", "RCPT TO:<" + rcpt + ">", "DATA", "x\r\n."} {
		if code, text := c.cmd(line); code >= 400 {
			return code, text
		}
	}
	return 0, ""
}

// Over the wire: the hidden rate at MAIL (421 closes), the connection
// limit at the greeting, and the counters of /stats.
func TestPersonaRateAndConnsOnTheWire(t *testing.T) {
	clk := &fakeClock{t: t0}
	s := startSink(t, Config{Now: clk.Now, Personas: []Persona{
		{Name: "small", Listen: "127.0.10.1:0", Rate: 1, RateBurst: 2, MaxConns: 1},
	}})
	c := dialRaw(t, s.Addr())
	c.expect(220)
	c.cmd("EHLO c")
	for i := range 2 {
		if code, text := sendOne(c, fmt.Sprintf("u%d@a.example", i)); code != 0 {
			t.Fatalf("message %d: %d %s", i, code, text)
		}
	}
	// A second connection while the first is open: over the limit.
	c2 := dialRaw(t, s.Addr())
	if code, text := c2.reply(); code != 421 || !strings.HasPrefix(text, "4.7.0") {
		t.Fatalf("second connection: greeting %d %q, want 421 4.7.0", code, text)
	}
	code, text := sendOne(c, "u3@a.example")
	if code != 421 || !strings.HasPrefix(text, "4.7.28") {
		t.Fatalf("past the rate: %d %q, want 421 4.7.28", code, text)
	}
	if !c.closed() {
		t.Error("connection open after 421")
	}
	clk.Add(time.Second) // one token more
	waitFor(t, "the first connection to end", func() bool { return s.Stats().CurrentConns == 0 })
	c3 := dialRaw(t, s.Addr())
	c3.expect(220)
	c3.cmd("EHLO c")
	if code, text := sendOne(c3, "u3@a.example"); code != 0 {
		t.Fatalf("a second later: %d %s", code, text)
	}
	st := s.Stats()
	if len(st.Personas) != 1 {
		t.Fatalf("personas in stats: %+v", st.Personas)
	}
	p := st.Personas[0]
	if p.Name != "small" || p.Accepted != 3 || p.Deferred["rate"] != 1 || p.Deferred["conns"] != 1 || p.Breaches != 2 {
		t.Errorf("persona stats %+v", p)
	}
	if !strings.Contains(st.String(), "personas=1 accepted=3 breaches=2") {
		t.Errorf("summary line %q", st.String())
	}
}

// Over the wire: the rate at the end of data with a 451 that keeps the
// connection, greylisting and unknown users at RCPT, a deferral burst at MAIL.
func TestPersonaDeferralsOnTheWire(t *testing.T) {
	clk := &fakeClock{t: t0}
	s := startSink(t, Config{Now: clk.Now, Personas: []Persona{{
		Name: "grey", Listen: "127.0.10.2:0", Rate: 1, RateBurst: 1, RateStage: "dot", RateReply: "451 4.7.0 Too fast",
		Greylist: Duration(10 * time.Second), DeferEvery: Duration(time.Hour), DeferFor: Duration(time.Minute),
	}, {
		Name: "strict", Listen: "127.0.10.3:0", UnknownUsers: 1,
	}}})
	c := dialRaw(t, s.Addrs()[0])
	c.expect(220)
	c.cmd("EHLO c")
	if code, text := sendOne(c, "u1@a.example"); code != 451 || !strings.HasPrefix(text, "4.7.1") {
		t.Fatalf("first attempt: %d %q, want 451 4.7.1 (greylisted)", code, text)
	}
	c.cmd("RSET")
	clk.Add(10 * time.Second)
	if code, text := sendOne(c, "u1@a.example"); code != 0 {
		t.Fatalf("after the greylisting wait: %d %s", code, text)
	}
	// The token is spent: the end of data gets 451, the connection stays,
	// and the triple, accepted once, is not greylisted again.
	if code, text := sendOne(c, "u1@a.example"); code != 451 || text != "4.7.0 Too fast" {
		t.Fatalf("past the rate at the end of data: %d %q", code, text)
	}
	if code, _ := c.cmd("NOOP"); code != 250 {
		t.Fatal("connection gone after a 451")
	}
	clk.Add(time.Hour - time.Minute - 10*time.Second) // into the burst
	if code, text := c.cmd("MAIL FROM:<s@b.example>"); code != 421 || !strings.Contains(text, "Temporary system problem") {
		t.Fatalf("in a burst: %d %q", code, text)
	}
	u := dialRaw(t, s.Addrs()[1])
	u.expect(220)
	u.cmd("EHLO c")
	if code, text := sendOne(u, "nobody@a.example"); code != 550 || !strings.HasPrefix(text, "5.1.1") {
		t.Fatalf("unknown user: %d %q", code, text)
	}
	st := s.Stats()
	g, x := st.Personas[0], st.Personas[1]
	if g.Accepted != 1 || g.Deferred["greylist"] != 1 || g.Deferred["rate"] != 1 || g.Deferred["burst"] != 1 || g.Breaches != 1 {
		t.Errorf("greylisting persona %+v", g)
	}
	if x.Unknown != 1 || x.Accepted != 0 || x.Breaches != 0 {
		t.Errorf("unknown-users persona %+v", x)
	}
}
