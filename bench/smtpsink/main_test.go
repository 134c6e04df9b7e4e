package main

import (
	"bytes"
	"context"
	"net/smtp"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gannet/bench/smtpsink/sink"
)

// The command wires its flags to the sink and prints a final summary.
func TestRunFlags(t *testing.T) {
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stdout, stderr bytes.Buffer
	started := make(chan *sink.Sink, 1)
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"-listen", "127.0.0.1:0,127.0.0.1:0", "-chunking",
			"-fail", "rcpt~bad:550:1:5.1.1 No such user", "-dump", filepath.Join(dir, "d"), "-ids", filepath.Join(dir, "ids")},
			&stdout, &stderr, started)
	}()
	var s *sink.Sink
	select {
	case s = <-started:
	case err := <-done:
		t.Fatalf("run: %v", err)
	case <-time.After(5 * time.Second):
		t.Fatal("sink did not start")
	}
	if len(s.Addrs()) != 2 {
		t.Fatalf("addrs = %v", s.Addrs())
	}
	err := smtp.SendMail(s.Addrs()[1], nil, "a@example.test", []string{"bad@example.test"}, []byte("x\r\n"))
	if err == nil || !strings.Contains(err.Error(), "550") {
		t.Errorf("bad recipient: %v, want 550", err)
	}
	if err := smtp.SendMail(s.Addr(), nil, "a@example.test", []string{"ok@example.test"}, []byte("X-Blast-Id: r-9\r\n\r\nx\r\n")); err != nil {
		t.Fatal(err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("run: %v", err)
	}
	if out := stdout.String(); !strings.Contains(out, "final") || !strings.Contains(out, "msgs=1 ") || !strings.Contains(out, "550:1") {
		t.Errorf("summary %q", out)
	}
	if ids, _ := os.ReadFile(filepath.Join(dir, "ids")); string(ids) != "r-9\n" {
		t.Errorf("ids = %q", ids)
	}
	if _, err := os.Stat(filepath.Join(dir, "d", "000000001.eml")); err != nil {
		t.Error(err)
	}
}

func TestRunBadFlags(t *testing.T) {
	for _, args := range [][]string{{"-fail", "rcpt:99:1"}, {"-throttle", "x"}, {"-delay", "dot"}, {"-drop", "dot:2"}, {"extra"}} {
		var out bytes.Buffer
		if err := run(context.Background(), append([]string{"-listen", "127.0.0.1:0"}, args...), &out, &out, nil); err == nil {
			t.Errorf("run(%q) succeeded", args)
		}
	}
}
