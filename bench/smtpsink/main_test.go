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

	"github.com/miekg/dns"

	"gannet/bench/smtpsink/sink"
)

// The command wires its flags to the sink and prints a final summary.
func TestRunFlags(t *testing.T) {
	dir := t.TempDir()
	r := startRun(t, "-listen", "127.0.0.1:0,127.0.0.1:0", "-chunking",
		"-fail", "rcpt~bad:550:1:5.1.1 No such user", "-dump", filepath.Join(dir, "d"), "-ids", filepath.Join(dir, "ids"))
	s := r.sink
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
	if out := r.stop(); !strings.Contains(out, "final") || !strings.Contains(out, "msgs=1 ") || !strings.Contains(out, "550:1") {
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

// -persona makes the listen addresses play providers, and -dns serves
// their domains' MX records and MX hosts' addresses.
func TestRunPersonasAndDNS(t *testing.T) {
	pf := filepath.Join(t.TempDir(), "personas.toml")
	os.WriteFile(pf, []byte(`
[[persona]]
name = "bulk"
listen = "127.0.10.1:0"
domains = ["a.example", "b.example"]
rate = 1

[[persona]]
unknown_users = 1
name = "small"
domains = ["c.example"]
listen = "127.0.10.2:0"
`), 0o644)
	r := startRun(t, "-persona", pf, "-dns")
	s := r.sink
	// stderr is complete up to the start (written before started).
	_, dnsAddr, ok := strings.Cut(r.stderr.String(), "DNS at ")
	if !ok {
		t.Fatalf("no DNS address on stderr: %q", r.stderr.String())
	}
	dnsAddr = strings.TrimSpace(strings.SplitN(dnsAddr, "\n", 2)[0])
	ask := func(name string, qtype uint16) []dns.RR {
		t.Helper()
		m := new(dns.Msg)
		m.SetQuestion(name, qtype)
		r, err := dns.Exchange(m, dnsAddr)
		if err != nil {
			t.Fatalf("DNS %s: %v", name, err)
		}
		return r.Answer
	}
	mx := ask("b.example.", dns.TypeMX)
	if len(mx) != 1 || mx[0].(*dns.MX).Mx != "mx1.personas.example." {
		t.Fatalf("MX of b.example: %v", mx)
	}
	a := ask("mx2.personas.example.", dns.TypeA)
	if len(a) != 1 || a[0].(*dns.A).A.String() != "127.0.10.2" {
		t.Fatalf("A of mx2: %v", a)
	}
	if err := smtp.SendMail(s.Addrs()[0], nil, "s@example.test", []string{"u@a.example"}, []byte("x\r\n")); err != nil {
		t.Fatal(err)
	}
	if err := smtp.SendMail(s.Addrs()[1], nil, "s@example.test", []string{"u@c.example"}, []byte("x\r\n")); err == nil || !strings.Contains(err.Error(), "550") {
		t.Fatalf("unknown user: %v, want 550", err)
	}
	out := r.stop()
	for _, want := range []string{"personas=2 accepted=1", "persona bulk (127.0.10.1:0) accepted=1 breaches=0", "persona small (127.0.10.2:0) accepted=0 breaches=0 deferred=rate:0,conns:0,burst:0,greylist:0 unknown=1"} {
		if !strings.Contains(out, want) {
			t.Errorf("summary lacks %q:\n%s", want, out)
		}
	}
}

// runningSink is run started by a test on its own goroutine.
type runningSink struct {
	t              *testing.T
	sink           *sink.Sink
	cancel         context.CancelFunc
	done           chan error
	stdout, stderr *bytes.Buffer
}

// startRun starts run with args and waits for its sink.
func startRun(t *testing.T, args ...string) *runningSink {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r := &runningSink{t: t, cancel: cancel, done: make(chan error, 1), stdout: new(bytes.Buffer), stderr: new(bytes.Buffer)}
	t.Cleanup(cancel)
	started := make(chan *sink.Sink, 1)
	go func() { r.done <- run(ctx, args, r.stdout, r.stderr, started) }()
	select {
	case r.sink = <-started:
	case err := <-r.done:
		t.Fatalf("run: %v", err)
	case <-time.After(5 * time.Second):
		t.Fatal("sink did not start")
	}
	return r
}

// stop ends run as SIGINT would and returns what it printed on stdout.
func (r *runningSink) stop() string {
	r.t.Helper()
	r.cancel()
	if err := <-r.done; err != nil {
		r.t.Fatalf("run: %v", err)
	}
	return r.stdout.String()
}
