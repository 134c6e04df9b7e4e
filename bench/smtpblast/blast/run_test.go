package blast

import (
	"bytes"
	"context"
	"crypto/x509"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"gannet/bench/smtpsink/sink"
)

func startSink(t *testing.T, cfg sink.Config) *sink.Sink {
	t.Helper()
	s, err := sink.Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func mustRun(t *testing.T, cfg Config) *Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	res, err := Run(ctx, cfg)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	return res
}

// syncBuffer is a bytes.Buffer safe for the run's concurrent writers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// The counts agree with the sink's, every acked message is in the ids with
// the sink's queue id, and the messages arrive as generated.
func TestRunAgainstSink(t *testing.T) {
	dir := t.TempDir()
	var mu sync.Mutex
	got := map[string]sink.Message{}
	s := startSink(t, sink.Config{IDsFile: filepath.Join(dir, "sink-ids"), OnMessage: func(m *sink.Message) {
		mu.Lock()
		got[sink.MessageKey(m.Data)] = *m
		mu.Unlock()
	}})
	var ids syncBuffer
	res := mustRun(t, Config{
		Server: s.Addr(), Connections: 3, Messages: 200, PerConn: 30, Rcpts: 2, Pipelining: true,
		Domains: []Weighted[string]{{"a.test", 3}, {"b.test", 1}}, Sizes: []Weighted[int]{{2048, 1}}, IDs: &ids, RunID: "t1",
	})
	st := s.Stats()
	if res.Sent != 200 || res.Acked != 200 || res.Failed != 0 || st.Messages != 200 {
		t.Fatalf("result %+v, sink %+v", res, st)
	}
	if res.RcptsAccepted != 400 || st.Recipients != 400 {
		t.Errorf("recipients: blast %d, sink %d", res.RcptsAccepted, st.Recipients)
	}
	if res.Connects != st.Connections || res.Connects < 200/30 {
		t.Errorf("connects: blast %d, sink %d", res.Connects, st.Connections)
	}
	if res.Replies[354] != 200 || res.Latency.Count != 200 || res.Latency.P50 <= 0 || res.Latency.Max < res.Latency.P99 {
		t.Errorf("replies %v latency %+v", res.Replies, res.Latency)
	}
	lines := strings.Split(strings.TrimSpace(ids.b.String()), "\n")
	if len(lines) != 200 {
		t.Fatalf("%d id lines", len(lines))
	}
	domains := map[string]int{}
	seen := map[string]bool{}
	for _, line := range lines {
		qid, bid, ok := strings.Cut(line, "\t")
		if !ok || seen[bid] || !strings.HasPrefix(bid, "t1-") {
			t.Fatalf("bad or repeated id line %q", line)
		}
		seen[bid] = true
		m, ok := got[bid]
		if !ok {
			t.Fatalf("sink has no message %s", bid)
		}
		if qid != strconv.FormatUint(m.Seq, 10) {
			t.Errorf("%s: queue id %s, sink seq %d", bid, qid, m.Seq)
		}
		if m.Size < 1900 || m.Size > 2200 {
			t.Errorf("%s: size %d, want about 2048", bid, m.Size)
		}
		if !bytes.Contains(m.Data, []byte("\r\n.dot")) || !bytes.Contains(m.Data, []byte("\r\n.\r\n")) {
			t.Errorf("%s: no dot lines in the body", bid)
		}
		if !bytes.Contains(m.Data, []byte("Message-ID: <"+bid+"@blast.example.test>\r\n")) {
			t.Errorf("%s: Message-ID missing", bid)
		}
		for _, line := range strings.Split(string(m.Data), "\r\n") {
			if len(line) > 78 {
				t.Errorf("%s: line of %d characters", bid, len(line))
			}
		}
		for _, r := range m.Rcpts {
			domains[r[strings.IndexByte(r, '@')+1:]]++
		}
	}
	if domains["a.test"] < 220 || domains["b.test"] < 50 || domains["a.test"]+domains["b.test"] != 400 {
		t.Errorf("domain spread %v, want about 300:100", domains)
	}
	sinkIDs, _ := os.ReadFile(filepath.Join(dir, "sink-ids"))
	a := strings.Fields(string(sinkIDs))
	sort.Strings(a)
	var b []string
	for bid := range seen {
		b = append(b, bid)
	}
	sort.Strings(b)
	if strings.Join(a, ",") != strings.Join(b, ",") {
		t.Error("sink ids file differs from blast ids")
	}
}

// Without PIPELINING offered the client goes step by step; results are the
// same.
func TestRunWithoutPipelining(t *testing.T) {
	s := startSink(t, sink.Config{NoPipelining: true})
	res := mustRun(t, Config{Server: s.Addr(), Connections: 2, Messages: 50, Pipelining: true, Rcpts: 3})
	if res.Acked != 50 || s.Stats().Messages != 50 || s.Stats().Recipients != 150 {
		t.Fatalf("result %+v sink %+v", res, s.Stats())
	}
}

// Refusals and 421 hang-ups are counted, the client reconnects, and the
// totals match the sink's view.
func TestRunWithFaults(t *testing.T) {
	s := startSink(t, sink.Config{Seed: 7, Faults: sink.Faults{Failures: []sink.Failure{
		{Stage: sink.StageDot, Code: 451, Prob: 0.2},
		{Stage: sink.StageMail, Code: 421, Prob: 0.05},
		{Stage: sink.StageRcpt, Code: 550, Prob: 1, Match: "user7@"},
	}}})
	for _, pipelining := range []bool{true, false} {
		before := s.Stats()
		res := mustRun(t, Config{Server: s.Addr(), Connections: 4, Messages: 300, Pipelining: pipelining})
		st := s.Stats()
		if res.Sent != 300 || res.Acked+res.Failed != 300 || res.Acked != st.Messages-before.Messages {
			t.Fatalf("pipelining=%v: result %+v, sink %+v", pipelining, res, st)
		}
		if res.Failed == 0 || res.Replies[451] != st.Replies[451]-before.Replies[451] || res.Replies[421] == 0 {
			t.Errorf("pipelining=%v: replies %v", pipelining, res.Replies)
		}
		if res.Connects <= 4 || res.RcptsRejected > 1 {
			t.Errorf("pipelining=%v: connects %d, rejected rcpts %d", pipelining, res.Connects, res.RcptsRejected)
		}
	}
}

func TestRunStartTLSAndAuth(t *testing.T) {
	tc, err := sink.SelfSignedTLS()
	if err != nil {
		t.Fatal(err)
	}
	s := startSink(t, sink.Config{TLS: tc, Keep: true})
	res := mustRun(t, Config{Server: s.Addr(), Connections: 2, Messages: 20, StartTLS: true, Insecure: true, AuthUser: "u", AuthPass: "p", Pipelining: true})
	if res.Acked != 20 || s.Stats().TLSHandshakes != res.Connects || res.Replies[235] != res.Connects {
		t.Fatalf("result %+v sink %+v", res, s.Stats())
	}
	for _, m := range s.Messages() {
		if !m.TLS {
			t.Fatal("message received without TLS")
		}
	}
	// Certificate verification is on without Insecure, against RootCAs
	// when set.
	if _, err := Run(context.Background(), Config{Server: s.Addr(), Messages: 1, StartTLS: true}); err == nil {
		t.Error("self-signed certificate accepted without -insecure")
	}
	leaf, err := x509.ParseCertificate(tc.Certificates[0].Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(leaf)
	if res := mustRun(t, Config{Server: s.Addr(), Messages: 2, StartTLS: true, RootCAs: roots}); res.Acked != 2 {
		t.Errorf("with the certificate in RootCAs: acked %d of 2 (%v)", res.Acked, res.Errors)
	}
}

// Every message sent gets its time from the end of the data to the reply,
// with and without PIPELINING; that of a slow server shows.
func TestRunDotLatency(t *testing.T) {
	s := startSink(t, sink.Config{Faults: sink.Faults{Delays: []sink.Delay{{Stage: sink.StageDot, Duration: 20 * time.Millisecond}}}})
	for _, pipelining := range []bool{false, true} {
		res := mustRun(t, Config{Server: s.Addr(), Connections: 2, Messages: 10, Pipelining: pipelining})
		if d := res.DotLatency; d.Count != 10 || d.P50 < 20 || d.P50 > res.Latency.P50 {
			t.Errorf("pipelining=%v: end of data to reply %+v, MAIL to reply %+v; want 10 of at least 20 ms, within the latter",
				pipelining, d, res.Latency)
		}
	}
}

// -duration and -rate bound the run.
func TestRunDurationAndRate(t *testing.T) {
	s := startSink(t, sink.Config{})
	start := time.Now()
	res := mustRun(t, Config{Server: s.Addr(), Connections: 4, Duration: 600 * time.Millisecond, Rate: 200})
	if el := time.Since(start); el > 3*time.Second {
		t.Errorf("run took %v", el)
	}
	if res.Acked < 80 || res.Acked > 125 {
		t.Errorf("acked %d in 0.6 s at 200/s, want about 120", res.Acked)
	}
}

func TestRunUnreachable(t *testing.T) {
	s := startSink(t, sink.Config{})
	addr := s.Addr()
	s.Close()
	if _, err := Run(context.Background(), Config{Server: addr, Messages: 10, Timeout: time.Second}); err == nil || !strings.Contains(err.Error(), "cannot reach") {
		t.Fatalf("Run against a closed port: %v", err)
	}
}

func TestQueueID(t *testing.T) {
	for text, want := range map[string]string{
		"2.0.0 OK id=<abc>":          "abc",
		"2.0.0 OK id=42":             "42",
		"2.0.0 Ok: queued as 4Xyz12": "4Xyz12",
		"2.0.0 OK":                   "",
		"2.0.0 OK pid=3":             "",
		"2.0.0 OK id=<Q1> and more":  "Q1",
	} {
		if got := queueID(text); got != want {
			t.Errorf("queueID(%q) = %q, want %q", text, got, want)
		}
	}
}
