package delivery

// End-to-end tests of the delivery loop with real parts: the spool
// (queue.Open in a temp dir), the resolver asking a real DNS server
// (resolver/dnstest), the outbound connection manager, and Postfix's
// smtp-sink as the receiving MX host.

import (
	"context"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gannet/engine/logrec"
	"gannet/engine/outbound"
	"gannet/queue"
	"gannet/queue/queuetest"
	"gannet/resolver"
	"gannet/resolver/dnstest"
)

const testZone = `
$ORIGIN example.test.
@    300 IN SOA ns hostmaster 1 3600 600 86400 60
@    300 IN MX  10 mx1
mx1  300 IN A   127.0.0.1
$ORIGIN other.test.
@    300 IN SOA ns hostmaster 1 3600 600 86400 60
@    300 IN MX  10 mx1.example.test.
$ORIGIN nullmx.test.
@    300 IN SOA ns hostmaster 1 3600 600 86400 60
@    300 IN MX  0 .
`

// sink is a running smtp-sink.
type sink struct {
	cmd  *exec.Cmd
	port uint16
	dump string
}

// startSink runs /usr/sbin/smtp-sink on 127.0.0.1:port (0: a free port)
// with the given fault flags; the test's cleanup stops it.
func startSink(t *testing.T, port uint16, flags ...string) *sink {
	t.Helper()
	const bin = "/usr/sbin/smtp-sink"
	if _, err := os.Stat(bin); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("smtp-sink missing (make peers)")
		}
		t.Skip("SKIPPING: smtp-sink missing (make peers installs postfix)")
	}
	if port == 0 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port = netip.MustParseAddrPort(ln.Addr().String()).Port()
		ln.Close()
	}
	s := &sink{port: port, dump: t.TempDir()}
	args := append([]string{}, flags...)
	if os.Geteuid() == 0 {
		args = append(args, "-u", "root")
	}
	addr := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), port).String()
	args = append(args, "-d", filepath.Join(s.dump, "%M."), addr, "100")
	s.cmd = exec.Command(bin, args...)
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.stop)
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("smtp-sink not listening on %s", addr)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return s
}

func (s *sink) stop() {
	if s.cmd.ProcessState == nil {
		s.cmd.Process.Kill()
		s.cmd.Wait()
	}
}

// dumps returns the transactions the sink stored.
func (s *sink) dumps(t *testing.T) []string {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(s.dump, "*"))
	var out []string
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, string(b))
	}
	return out
}

// system is a delivery loop wired to real parts.
type system struct {
	loop  *Loop
	spool *queue.Spool
	rec   *recorder
	clock *queuetest.FakeClock
	dir   string
}

func startSystem(t *testing.T, dir string, dnsAddr string, port uint16, clock *queuetest.FakeClock, retry queue.RetryPolicy) *system {
	t.Helper()
	sp, err := queue.Open(queue.Options{Dir: dir, Compression: "zstd", MinFreeBytes: -1})
	if err != nil {
		t.Fatal(err)
	}
	res, err := resolver.New(resolver.Config{Nameservers: []string{dnsAddr}, Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	mgr := outbound.New(outbound.Options{
		EHLOName:       "relay.gannet.test",
		SMTPPort:       int(port),
		ConnectTimeout: 2 * time.Second,
		CommandTimeout: 10 * time.Second,
		DataTimeout:    10 * time.Second,
		HostBackoff:    time.Millisecond,
		TLS:            outbound.TLSPolicy{Mode: outbound.TLSOpportunistic},
	})
	s := &system{spool: sp, rec: newRecorder(), clock: clock, dir: dir}
	s.loop = New(Options{
		Store: sp, Router: res, Transport: mgr, Record: s.rec, Clock: clock, Retry: retry,
	})
	s.loop.Start()
	t.Cleanup(s.close)
	return s
}

func (s *system) close() {
	if s.loop != nil {
		s.loop.Stop(context.Background())
		s.loop = nil
	}
	if s.spool != nil {
		s.spool.Close()
		s.spool = nil
	}
}

// submit spools a message and hands it to the loop, as reception does.
func (s *system) submit(t *testing.T, id, body string, rcpts ...string) *queue.Message {
	t.Helper()
	m := &queue.Message{ID: id, From: "sender@src.test", Created: s.clock.Now(), Tenant: "acme"}
	for _, r := range rcpts {
		m.Recipients = append(m.Recipients, queue.Recipient{Addr: r})
	}
	if err := s.spool.Append(m, []byte(body)); err != nil {
		t.Fatal(err)
	}
	if err := s.loop.Enqueue(m); err != nil {
		t.Fatal(err)
	}
	return m
}

func (s *system) spooled(t *testing.T) []*queue.Message {
	t.Helper()
	var ms []*queue.Message
	if err := s.spool.Scan(func(m *queue.Message) error { ms = append(ms, m); return nil }); err != nil {
		t.Fatal(err)
	}
	return ms
}

func (s *system) waitSpoolEmpty(t *testing.T) {
	t.Helper()
	waitUntil(t, func() bool { return len(s.spooled(t)) == 0 })
}

var defaultRetry = queue.RetryPolicy{Initial: 5 * time.Minute, Max: time.Hour, MaxAge: 72 * time.Hour}

func newClock() *queuetest.FakeClock { return queuetest.NewFakeClock(time.Now()) }

func TestRealDeliveryTwoDomains(t *testing.T) {
	dns := dnstest.NewServer(t, testZone)
	snk := startSink(t, 0)
	s := startSystem(t, t.TempDir(), dns.Addr, snk.port, newClock(), defaultRetry)
	body := "Subject: hello\r\n\r\n.dotted\r\nbye\r\n"
	s.submit(t, "msg1", body, "a@example.test", "c@other.test", "b@Example.Test")
	recs := s.rec.waitFor(t, 3)
	for _, r := range recs {
		if r.Type != logrec.Delivery || r.Response.Code != 250 || r.Site != "mx1.example.test" ||
			r.PeerAddress.Addr != "127.0.0.1" || r.PeerAddress.Name != "mx1.example.test" || r.Size != int64(len(body)) {
			t.Errorf("record %+v", r)
		}
	}
	s.waitSpoolEmpty(t)
	dumps := snk.dumps(t)
	if len(dumps) != 2 {
		t.Fatalf("smtp-sink got %d transactions, want 2 (one per domain)", len(dumps))
	}
	rcpts := 0
	for _, d := range dumps {
		rcpts += strings.Count(d, "X-Rcpt-Args: ")
		if !strings.Contains(d, strings.ReplaceAll(body, "\r\n", "\n")) {
			t.Errorf("body altered:\n%s", d)
		}
		if strings.Contains(d, "<a@example.test>") != strings.Contains(d, "<b@Example.Test>") {
			t.Errorf("the two example.test recipients were not in one transaction:\n%s", d)
		}
	}
	if rcpts != 3 {
		t.Errorf("%d recipients delivered, want 3 (each once)", rcpts)
	}
}

func TestRealNullMXBounce(t *testing.T) {
	dns := dnstest.NewServer(t, testZone)
	snk := startSink(t, 0)
	s := startSystem(t, t.TempDir(), dns.Addr, snk.port, newClock(), defaultRetry)
	s.submit(t, "msg1", "Subject: x\r\n\r\nx\r\n", "nobody@nullmx.test")
	recs := s.rec.waitFor(t, 1)
	if r := recs[0]; r.Type != logrec.Bounce || r.Response.Code != 556 || r.Response.EnhancedCode != "5.1.10" {
		t.Fatalf("record %+v, want Bounce 556 5.1.10", r)
	}
	s.waitSpoolEmpty(t)
	if len(snk.dumps(t)) != 0 {
		t.Error("something was delivered")
	}
}

func TestRealBounce(t *testing.T) {
	dns := dnstest.NewServer(t, testZone)
	snk := startSink(t, 0, "-f", "RCPT")
	s := startSystem(t, t.TempDir(), dns.Addr, snk.port, newClock(), defaultRetry)
	s.submit(t, "msg1", "Subject: x\r\n\r\nx\r\n", "a@example.test")
	recs := s.rec.waitFor(t, 1)
	if r := recs[0]; r.Type != logrec.Bounce || r.Response.Code != 500 || r.Response.EnhancedCode != "5.3.0" {
		t.Fatalf("record %+v, want smtp-sink's 500 5.3.0 as a Bounce", r)
	}
	s.waitSpoolEmpty(t)
}

func TestRealTransientThenDelivered(t *testing.T) {
	dns := dnstest.NewServer(t, testZone)
	snk := startSink(t, 0, "-r", "RCPT")
	clock := newClock()
	s := startSystem(t, t.TempDir(), dns.Addr, snk.port, clock, defaultRetry)
	s.submit(t, "msg1", "Subject: x\r\n\r\nx\r\n", "a@example.test")
	recs := s.rec.waitFor(t, 1)
	if r := recs[0]; r.Type != logrec.TransientFailure || r.Response.Code != 450 || r.NumAttempts != 1 {
		t.Fatalf("record %+v, want TransientFailure 450", r)
	}
	if ms := s.spooled(t); len(ms) != 1 || ms[0].Recipients[0].Attempts != 1 || ms[0].Recipients[0].State != queue.Pending {
		t.Fatalf("spool after the deferral: %+v", ms)
	}
	// The receiver recovers; the retry is due 5 minutes later.
	snk.stop()
	snk = startSink(t, snk.port)
	waitUntil(t, func() bool { return clock.Timers() > 0 })
	clock.Advance(5 * time.Minute)
	recs = s.rec.waitFor(t, 2)
	if r := recs[1]; r.Type != logrec.Delivery || r.NumAttempts != 2 {
		t.Fatalf("record %+v, want Delivery after 2 attempts", r)
	}
	s.waitSpoolEmpty(t)
	if len(snk.dumps(t)) != 1 {
		t.Errorf("%d messages at the sink, want 1", len(snk.dumps(t)))
	}
}

func TestRealExpiration(t *testing.T) {
	dns := dnstest.NewServer(t, testZone)
	snk := startSink(t, 0, "-r", "RCPT")
	clock := newClock()
	retry := queue.RetryPolicy{Initial: 10 * time.Minute, Max: time.Hour, MaxAge: 30 * time.Minute}
	s := startSystem(t, t.TempDir(), dns.Addr, snk.port, clock, retry)
	s.submit(t, "msg1", "Subject: x\r\n\r\nx\r\n", "a@example.test")
	s.rec.waitFor(t, 1)
	waitUntil(t, func() bool { return clock.Timers() > 0 })
	clock.Advance(10 * time.Minute) // second attempt; the next would be at 30m = max age
	recs := s.rec.waitFor(t, 2)
	if r := recs[1]; r.Type != logrec.Expiration || r.Response.Code != 450 || r.NumAttempts != 2 {
		t.Fatalf("record %+v, want Expiration with the last reply", r)
	}
	s.waitSpoolEmpty(t)
}

func TestRealRestartDeliversPending(t *testing.T) {
	dns := dnstest.NewServer(t, testZone)
	// Nobody listens yet: connection refused.
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	port := netip.MustParseAddrPort(ln.Addr().String()).Port()
	ln.Close()
	clock := newClock()
	dir := t.TempDir()
	s := startSystem(t, dir, dns.Addr, port, clock, defaultRetry)
	s.submit(t, "msg1", "Subject: 1\r\n\r\none\r\n", "a@example.test", "b@other.test")
	s.submit(t, "msg2", "Subject: 2\r\n\r\ntwo\r\n", "c@example.test")
	recs := s.rec.waitFor(t, 3)
	for _, r := range recs {
		if r.Type != logrec.TransientFailure || r.Response.EnhancedCode != "4.4.1" {
			t.Errorf("record %+v, want TransientFailure 4.4.1 (connection refused)", r)
		}
	}
	s.close()

	// Restart: reopen the spool, load it into a new loop.
	snk := startSink(t, port)
	clock.Advance(5 * time.Minute)
	s2 := startSystem(t, dir, dns.Addr, port, clock, defaultRetry)
	n, err := s2.loop.Load(s2.spool, nil)
	if err != nil {
		t.Fatal(err)
	}
	if n != 2 {
		t.Fatalf("%d messages in the spool after restart, want 2", n)
	}
	recs = s2.rec.waitFor(t, 3)
	for _, r := range recs {
		if r.Type != logrec.Delivery || r.NumAttempts != 2 {
			t.Errorf("record %+v, want Delivery on attempt 2", r)
		}
	}
	s2.waitSpoolEmpty(t)
	if d := snk.dumps(t); len(d) != 3 {
		t.Errorf("%d transactions at the sink, want 3", len(d))
	}
}
