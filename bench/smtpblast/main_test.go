package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gannet/bench/smtpblast/blast"
	"gannet/bench/smtpsink/sink"
)

// The command's -json summary parses, the ids file is complete, and the exit
// code says whether everything was acked.
func TestRunJSONAndIDs(t *testing.T) {
	s, err := sink.Start(sink.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ids := filepath.Join(t.TempDir(), "ids.tsv")
	var stdout, stderr bytes.Buffer
	code, err := run(context.Background(), []string{"-server", s.Addr(), "-connections", "3", "-messages", "120",
		"-size-dist", "1k:1,4k:1", "-rcpts", "2", "-domains", "a.test:1,b.test:1", "-pipelining", "-per-conn", "25",
		"-json", "-ids", ids, "-run-id", "cli"}, &stdout, &stderr, true)
	if err != nil || code != 0 {
		t.Fatalf("run: code %d, %v\n%s", code, err, stderr.String())
	}
	var res blast.Result
	if err := json.Unmarshal(stdout.Bytes(), &res); err != nil {
		t.Fatalf("summary is not JSON: %v\n%s", err, stdout.String())
	}
	if res.Acked != 120 || res.RunID != "cli" || res.Replies[250] == 0 || res.Latency.P99 <= 0 || res.CPUSeconds <= 0 {
		t.Errorf("summary %+v", res)
	}
	data, err := os.ReadFile(ids)
	if err != nil {
		t.Fatal(err)
	}
	if lines := strings.Split(strings.TrimSpace(string(data)), "\n"); len(lines) != 120 || !strings.Contains(lines[0], "\tcli-") {
		t.Errorf("ids file has %d lines, first %q", len(lines), lines[0])
	}
	if !strings.Contains(stderr.String(), "\r") || !strings.Contains(stderr.String(), "acked 120") {
		t.Errorf("progress on a terminal %q", stderr.String())
	}
	if st := s.Stats(); st.Messages != 120 || st.Recipients != 240 {
		t.Errorf("sink %+v", st)
	}
}

// Text summary, and exit code 1 when messages fail.
func TestRunTextSummaryFailures(t *testing.T) {
	s, err := sink.Start(sink.Config{Faults: sink.Faults{Failures: []sink.Failure{{Stage: sink.StageDot, Code: 554, Prob: 1}}}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var stdout, stderr bytes.Buffer
	code, err := run(context.Background(), []string{"-server", s.Addr(), "-messages", "5"}, &stdout, &stderr, false)
	if err != nil || code != 1 {
		t.Fatalf("code %d, %v", code, err)
	}
	out := stdout.String()
	for _, want := range []string{"sent 5, acked 0, failed 5", "554:5", "latency ms: p50"} {
		if !strings.Contains(out, want) {
			t.Errorf("summary lacks %q:\n%s", want, out)
		}
	}
}

func TestRunBadFlags(t *testing.T) {
	for _, args := range [][]string{{"-size", "big"}, {"-domains", "@"}, {"-rate", "fast"}, {"-auth", "nopass"}, {"stray"}, {"-nosuchflag"}} {
		var out bytes.Buffer
		if code, _ := run(context.Background(), args, &out, &out, false); code != 2 {
			t.Errorf("run(%q) exit code %d, want 2", args, code)
		}
	}
}

// When stderr is not a terminal (a file, a pipe, a CI log), a whole progress
// line is written there every -progress, and a last one at the end; none with
// -progress 0. -h says so.
func TestRunProgressLinesWhenNotATerminal(t *testing.T) {
	s, err := sink.Start(sink.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var stdout, stderr bytes.Buffer
	code, err := run(context.Background(), []string{"-server", s.Addr(), "-messages", "40", "-rate", "50/s",
		"-progress", "100ms"}, &stdout, &stderr, false)
	if err != nil || code != 0 {
		t.Fatalf("run: code %d, %v\n%s", code, err, stderr.String())
	}
	out := stderr.String()
	if strings.Contains(out, "\r") {
		t.Errorf("progress for a file has \\r: %q", out)
	}
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(lines) < 3 {
		t.Fatalf("want a progress line every 100ms of a ~0.8s run, got %q", out)
	}
	for _, l := range lines {
		if !strings.HasPrefix(l, "smtpblast: ") || !strings.Contains(l, "acked ") || !strings.HasSuffix(l, "msg/s") {
			t.Errorf("progress line %q", l)
		}
	}
	if last := lines[len(lines)-1]; !strings.Contains(last, "acked 40 ") {
		t.Errorf("last progress line %q, want acked 40", last)
	}
	if strings.Contains(stdout.String(), "smtpblast: ") {
		t.Errorf("progress leaked into stdout: %q", stdout.String())
	}

	stderr.Reset()
	if code, err := run(context.Background(), []string{"-server", s.Addr(), "-messages", "5", "-progress", "0"},
		&stdout, &stderr, false); code != 0 || err != nil {
		t.Fatalf("run -progress 0: code %d, %v", code, err)
	}
	if stderr.Len() != 0 {
		t.Errorf("-progress 0 printed %q", stderr.String())
	}

	var help bytes.Buffer
	run(context.Background(), []string{"-h"}, &help, &help, false)
	if h := help.String(); !strings.Contains(h, "-progress") || !strings.Contains(h, "not a terminal") {
		t.Errorf("-h does not explain the progress line:\n%s", h)
	}
}
