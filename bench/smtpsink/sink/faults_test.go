package sink

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestParseFailure(t *testing.T) {
	cases := []struct {
		spec string
		want Failure
		ok   bool
	}{
		{"rcpt:550:0.1", Failure{Stage: StageRcpt, Code: 550, Prob: 0.1}, true},
		{"dot:421:0.05", Failure{Stage: StageDot, Code: 421, Prob: 0.05}, true},
		{"mail:451:0.2:4.7.0 Try later", Failure{Stage: StageMail, Code: 451, Prob: 0.2, Text: "4.7.0 Try later"}, true},
		{"rcpt~bad:550:1:5.1.1 No: such user", Failure{Stage: StageRcpt, Code: 550, Prob: 1, Match: "bad", Text: "5.1.1 No: such user"}, true},
		{"CONNECT:554:1", Failure{Stage: StageConnect, Code: 554, Prob: 1}, true},
		{"rcpt:250:1", Failure{}, false},
		{"rcpt:550:2", Failure{}, false},
		{"helo:550:1", Failure{}, false},
		{"rcpt:550", Failure{}, false},
		{"rcpt~@slow.test:421:#30:4.7.28 Too many", Failure{Stage: StageRcpt, Code: 421, Count: 30, Match: "@slow.test", Text: "4.7.28 Too many"}, true},
		{"rcpt:421:#0", Failure{}, false},
		{"rcpt:421:#x", Failure{}, false},
	}
	for _, tc := range cases {
		got, err := ParseFailure(tc.spec)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("ParseFailure(%q) = %+v, %v; want %+v ok=%v", tc.spec, got, err, tc.want, tc.ok)
		}
	}
}

func TestParseDelayDropThrottle(t *testing.T) {
	if d, err := ParseDelay("dot:250ms"); err != nil || d != (Delay{StageDot, 250 * time.Millisecond}) {
		t.Errorf("ParseDelay = %+v, %v", d, err)
	}
	if _, err := ParseDelay("dot:soon"); err == nil {
		t.Error("ParseDelay accepted a bad duration")
	}
	if d, err := ParseDrop("data:0.5"); err != nil || d != (Drop{Stage: StageData, Prob: 0.5}) {
		t.Errorf("ParseDrop = %+v, %v", d, err)
	}
	if d, err := ParseDrop("dot~cut:1"); err != nil || d != (Drop{Stage: StageDot, Prob: 1, Match: "cut"}) {
		t.Errorf("ParseDrop = %+v, %v", d, err)
	}
	for spec, want := range map[string]Throttle{"100/m": {100, time.Minute, ""}, "5/s": {5, time.Second, ""}, "7/10s": {7, 10 * time.Second, ""},
		"20/s:4.7.28 Unusual rate": {20, time.Second, "4.7.28 Unusual rate"}} {
		if got, err := ParseThrottle(spec); err != nil || got != want {
			t.Errorf("ParseThrottle(%q) = %+v, %v", spec, got, err)
		}
	}
	for _, bad := range []string{"0/m", "x/m", "5", "5/fortnight"} {
		if _, err := ParseThrottle(bad); err == nil {
			t.Errorf("ParseThrottle(%q) accepted", bad)
		}
	}
}

// Every stage answers with the injected code; 421 closes the connection.
func TestFailureInjection(t *testing.T) {
	dialogue := []string{"", "EHLO c.example.test", "MAIL FROM:<a@example.test>", "RCPT TO:<b@example.test>", "DATA", "x\r\n."}
	cases := []struct {
		spec      string
		stage     int // index into dialogue
		wantText  string
		wantClose bool
	}{
		{"connect:421:1", 0, "4.7.0", true},
		{"ehlo:550:1:5.7.1 Go away", 1, "5.7.1 Go away", false},
		{"mail:451:1:4.7.0 Try later", 2, "4.7.0 Try later", false},
		{"rcpt:550:1", 3, "5.0.0", false},
		{"data:452:1", 4, "4.0.0", false},
		{"dot:421:1", 5, "4.7.0", true},
		{"dot:554:1:5.7.1 Spam", 5, "5.7.1 Spam", false},
	}
	for _, tc := range cases {
		t.Run(tc.spec, func(t *testing.T) {
			f, err := ParseFailure(tc.spec)
			if err != nil {
				t.Fatal(err)
			}
			s := startSink(t, Config{Faults: Faults{Failures: []Failure{f}}})
			c := dialRaw(t, s.Addr())
			for i, line := range dialogue[:tc.stage+1] {
				var code int
				var text string
				if line == "" {
					code, text = c.reply()
				} else {
					code, text = c.cmd(line)
				}
				if i < tc.stage {
					if code >= 400 {
						t.Fatalf("%q: unexpected %d %s", line, code, text)
					}
					continue
				}
				if code != f.Code || !strings.HasPrefix(text, tc.wantText) {
					t.Fatalf("%q: got %d %q, want %d %q", line, code, text, f.Code, tc.wantText)
				}
			}
			if got := c.closed(); got != tc.wantClose {
				t.Errorf("connection closed = %v, want %v", got, tc.wantClose)
			}
			st := s.Stats()
			if st.Replies[f.Code] != 1 || st.Messages != 0 {
				t.Errorf("stats = %+v", st)
			}
		})
	}
}

// TestFailureCount: a scripted failure ("#2") answers the first two
// matching recipients, over two connections, then never again; other
// recipients are not counted.
func TestFailureCount(t *testing.T) {
	f, err := ParseFailure("rcpt~@slow.test:451:#2:4.7.28 Too many messages")
	if err != nil {
		t.Fatal(err)
	}
	s := startSink(t, Config{Faults: Faults{Failures: []Failure{f}}})
	var got []int
	for range 2 {
		c := dialRaw(t, s.Addr())
		c.expect(220)
		c.cmd("EHLO c")
		c.cmd("MAIL FROM:<a@example.test>")
		for _, r := range []string{"x@slow.test", "y@fast.test", "z@slow.test"} {
			code, _ := c.cmd("RCPT TO:<" + r + ">")
			got = append(got, code)
		}
	}
	if want := []int{451, 250, 451, 250, 250, 250}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("RCPT replies %v, want %v", got, want)
	}
}

// Match limits a failure to chosen recipients; probability 0 never fires.
func TestFailureMatchAndProbability(t *testing.T) {
	s := startSink(t, Config{Faults: Faults{Failures: []Failure{
		{Stage: StageRcpt, Code: 550, Prob: 1, Match: "bad"},
		{Stage: StageMail, Code: 451, Prob: 0},
	}}})
	c := dialRaw(t, s.Addr())
	c.expect(220)
	c.cmd("EHLO c")
	for _, st := range []struct {
		line string
		want int
	}{
		{"MAIL FROM:<a@example.test>", 250},
		{"RCPT TO:<good@example.test>", 250},
		{"RCPT TO:<bad@example.test>", 550},
		{"RCPT TO:<ok@example.test>", 250},
	} {
		if code, _ := c.cmd(st.line); code != st.want {
			t.Errorf("%q: got %d, want %d", st.line, code, st.want)
		}
	}
}

// At data and dot, Match picks transactions by their sender: only the
// chosen message is refused at its ".", and a matched drop cuts the
// connection right after the "." of the chosen one.
func TestDotFailureAndDropMatchSender(t *testing.T) {
	s := startSink(t, Config{Faults: Faults{
		Failures: []Failure{{Stage: StageDot, Code: 554, Prob: 1, Match: "refuse", Text: "5.7.1 No"}},
		Drops:    []Drop{{Stage: StageDot, Prob: 1, Match: "cut"}},
	}})
	c := dialRaw(t, s.Addr())
	c.expect(220)
	c.cmd("EHLO c")
	send := func(from string) int {
		t.Helper()
		for _, line := range []string{"MAIL FROM:<" + from + ">", "RCPT TO:<b@example.test>"} {
			if code, text := c.cmd(line); code != 250 {
				t.Fatalf("%q: %d %s", line, code, text)
			}
		}
		if code, text := c.cmd("DATA"); code != 354 {
			t.Fatalf("DATA: %d %s", code, text)
		}
		code, _ := c.cmd("x\r\n.")
		return code
	}
	for _, st := range []struct {
		from string
		want int
	}{{"ok@example.test", 250}, {"refuse@example.test", 554}, {"ok2@example.test", 250}, {"cut@example.test", 0}} {
		if got := send(st.from); got != st.want {
			t.Errorf("message from %s: reply %d, want %d", st.from, got, st.want)
		}
	}
	if st := s.Stats(); st.Messages != 2 || st.Rejected != 1 || st.Dropped != 1 {
		t.Errorf("stats = %+v", st)
	}
}

// A probability of 0.3 fails roughly 30% of recipients, repeatably per seed.
func TestFailureRate(t *testing.T) {
	s := startSink(t, Config{Seed: 42, Faults: Faults{Failures: []Failure{{Stage: StageRcpt, Code: 450, Prob: 0.3}}}})
	c := dialRaw(t, s.Addr())
	c.expect(220)
	c.cmd("EHLO c")
	c.cmd("MAIL FROM:<a@example.test>")
	failed := 0
	for range 500 {
		if code, _ := c.cmd("RCPT TO:<x@example.test>"); code == 450 {
			failed++
		}
	}
	if failed < 100 || failed > 200 {
		t.Errorf("%d of 500 recipients failed, want about 150", failed)
	}
}

func TestDropAndDelay(t *testing.T) {
	s := startSink(t, Config{Faults: Faults{
		Drops:  []Drop{{Stage: StageMail, Prob: 1}},
		Delays: []Delay{{Stage: StageEHLO, Duration: 150 * time.Millisecond}},
	}})
	c := dialRaw(t, s.Addr())
	c.expect(220)
	start := time.Now()
	c.cmd("EHLO c")
	if d := time.Since(start); d < 150*time.Millisecond {
		t.Errorf("EHLO answered after %v, want >= 150ms", d)
	}
	if code, _ := c.cmd("MAIL FROM:<a@example.test>"); code != 0 {
		t.Fatalf("MAIL got %d, want a dropped connection", code)
	}
	if st := s.Stats(); st.Dropped != 1 {
		t.Errorf("dropped = %d", st.Dropped)
	}
	// SetFaults takes effect for the next session.
	s.SetFaults(Faults{})
	c2 := dialRaw(t, s.Addr())
	c2.expect(220)
	c2.cmd("EHLO c")
	if code, _ := c2.cmd("MAIL FROM:<a@example.test>"); code != 250 {
		t.Errorf("after SetFaults, MAIL got %d", code)
	}
}

// fakeClock is a settable clock for throttle windows.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (f *fakeClock) Now() time.Time { f.mu.Lock(); defer f.mu.Unlock(); return f.t }
func (f *fakeClock) Add(d time.Duration) {
	f.mu.Lock()
	f.t = f.t.Add(d)
	f.mu.Unlock()
}

// After N messages in the window, MAIL gets 421 4.7.0 and the connection
// closes, until the window passes.
func TestThrottle(t *testing.T) {
	clk := &fakeClock{t: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)}
	s := startSink(t, Config{Now: clk.Now, Faults: Faults{Throttle: Throttle{Limit: 2, Per: time.Minute}}})
	c := dialRaw(t, s.Addr())
	c.expect(220)
	c.cmd("EHLO c")
	for range 2 {
		for _, line := range []string{"MAIL FROM:<a@example.test>", "RCPT TO:<b@example.test>", "DATA", "x\r\n."} {
			if code, text := c.cmd(line); code >= 400 {
				t.Fatalf("%q: %d %s", line, code, text)
			}
		}
	}
	code, text := c.cmd("MAIL FROM:<a@example.test>")
	if code != 421 || !strings.HasPrefix(text, "4.7.0") {
		t.Fatalf("third MAIL: got %d %q, want 421 4.7.0", code, text)
	}
	if !c.closed() {
		t.Error("connection stays open after 421")
	}
	clk.Add(30 * time.Second)
	c2 := dialRaw(t, s.Addr())
	c2.expect(220)
	c2.cmd("EHLO c")
	if code, _ := c2.cmd("MAIL FROM:<a@example.test>"); code != 421 {
		t.Fatalf("within the window: got %d, want 421", code)
	}
	clk.Add(31 * time.Second)
	c3 := dialRaw(t, s.Addr())
	c3.expect(220)
	c3.cmd("EHLO c")
	if code, _ := c3.cmd("MAIL FROM:<a@example.test>"); code != 250 {
		t.Fatalf("after the window: got %d, want 250", code)
	}
	if st := s.Stats(); st.Throttled != 2 || st.Messages != 2 {
		t.Errorf("stats = %+v", st)
	}
}

// The sink counts open and most concurrent connections, and refuses those
// past MaxConns.
func TestConnectionCounting(t *testing.T) {
	s := startSink(t, Config{MaxConns: 4})
	var clients []*rawClient
	for range 4 {
		c := dialRaw(t, s.Addr())
		c.expect(220)
		clients = append(clients, c)
	}
	extra := dialRaw(t, s.Addr())
	if code, text := extra.reply(); code != 421 || !strings.HasPrefix(text, "4.7.0") {
		t.Fatalf("fifth connection: got %d %q, want 421 4.7.0", code, text)
	}
	st := s.Stats()
	if st.CurrentConns != 4 || st.MaxConcurrentConns != 4 || st.RefusedConns != 1 || st.Connections != 4 {
		t.Fatalf("stats = %+v", st)
	}
	for _, c := range clients[:3] {
		c.cmd("QUIT")
	}
	waitFor(t, "connections to close", func() bool { return s.Stats().CurrentConns == 1 })
	c := dialRaw(t, s.Addr())
	c.expect(220)
	if st := s.Stats(); st.MaxConcurrentConns != 4 || st.CurrentConns != 2 {
		t.Errorf("stats = %+v", st)
	}
	// A new period starts from the connections open now (2), and counts
	// its own peak.
	if peak := s.TakeMaxConcurrent(); peak != 4 {
		t.Errorf("TakeMaxConcurrent = %d, want 4 (the peak so far)", peak)
	}
	if peak := s.TakeMaxConcurrent(); peak != 2 {
		t.Errorf("TakeMaxConcurrent = %d, want 2 (open since the last call)", peak)
	}
	c3 := dialRaw(t, s.Addr())
	c3.expect(220)
	if peak := s.TakeMaxConcurrent(); peak != 3 {
		t.Errorf("TakeMaxConcurrent = %d, want 3", peak)
	}
}
