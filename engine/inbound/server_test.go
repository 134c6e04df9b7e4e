package inbound

import (
	"bytes"
	"context"
	"fmt"
	"net/smtp"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"gannet/smtpwire"
)

// TestNetSMTPClient sends one message with Go's net/smtp and checks that the
// Acceptor got it byte for byte, with the envelope and session facts.
func TestNetSMTPClient(t *testing.T) {
	acc := &memAcceptor{}
	_, addr := startServer(t, testListener(), acc, Options{})
	body := "From: a@example.test\r\nTo: b@example.test\r\nSubject: hi\r\n\r\nHello.\r\n.leading dot\r\n"
	if err := smtp.SendMail(addr, nil, "a@example.test", []string{"b@example.test", "c@example.test"}, []byte(body)); err != nil {
		t.Fatal(err)
	}
	msgs := acc.messages()
	if len(msgs) != 1 {
		t.Fatalf("got %d messages", len(msgs))
	}
	m := msgs[0]
	if string(m.Body) != body {
		t.Errorf("body\n got %q\nwant %q", m.Body, body)
	}
	if m.Envelope.From.Addr != "a@example.test" || len(m.Envelope.Rcpts) != 2 || m.Envelope.Rcpts[1].Addr != "c@example.test" {
		t.Errorf("envelope %+v", m.Envelope)
	}
	if m.Listener != "test-in" || m.Peer.Addr().String() != "127.0.0.1" || m.Local.String() != addr || m.TLS != nil {
		t.Errorf("incoming %+v", m)
	}
}

// TestGreetingAndEHLO checks the banner and the extensions the contract
// requires.
func TestGreetingAndEHLO(t *testing.T) {
	_, addr := startServer(t, testListener(), &memAcceptor{}, Options{})
	c := dialRaw(t, addr)
	g := c.expect(220, "")
	if !strings.Contains(g.Text(), "mx.gannet.test") {
		t.Errorf("greeting %q", g.String())
	}
	c.send("EHLO client.example.test\r\n")
	r := c.expect(250, "")
	for _, ext := range []string{"PIPELINING", "8BITMIME", "SMTPUTF8", "SIZE 1048576", "ENHANCEDSTATUSCODES", "CHUNKING"} {
		if !hasLine(r, ext) {
			t.Errorf("EHLO lacks %s: %q", ext, r.Lines)
		}
	}
	for _, ext := range []string{"STARTTLS", "AUTH"} {
		if hasLine(r, ext) {
			t.Errorf("EHLO offers %s without TLS config / authenticator: %q", ext, r.Lines)
		}
	}
	c.send("QUIT\r\n")
	c.expect(221, "")
	c.expectClosed()
}

// TestPipelining sends each transaction's commands in one write and the next
// transaction right behind the final dot, in the same write as the body
// (RFC 2920), and checks replies come back in order and both messages arrive.
func TestPipelining(t *testing.T) {
	acc := &memAcceptor{}
	_, addr := startServer(t, testListener(), acc, Options{})
	c := dialRaw(t, addr)
	c.hello()
	c.send("MAIL FROM:<a@example.test>\r\nRCPT TO:<b@example.test>\r\nRCPT TO:<c@example.test>\r\nDATA\r\n")
	c.expect(250, "2.1.0")
	c.expect(250, "2.1.5")
	c.expect(250, "2.1.5")
	c.expect(354, "")
	c.send("Subject: one\r\n\r\nfirst\r\n.\r\nMAIL FROM:<d@example.test>\r\nRCPT TO:<e@example.test>\r\nDATA\r\n")
	r := c.expect(250, "2.0.0")
	if !strings.Contains(r.Text(), "id=m1") {
		t.Errorf("message reply %q", r.String())
	}
	c.expect(250, "2.1.0")
	c.expect(250, "2.1.5")
	c.expect(354, "")
	c.send("Subject: two\r\n\r\nsecond\r\n.\r\nQUIT\r\n")
	c.expect(250, "2.0.0")
	c.expect(221, "")
	c.expectClosed()
	msgs := acc.messages()
	if len(msgs) != 2 {
		t.Fatalf("got %d messages", len(msgs))
	}
	if string(msgs[0].Body) != "Subject: one\r\n\r\nfirst\r\n" || string(msgs[1].Body) != "Subject: two\r\n\r\nsecond\r\n" {
		t.Errorf("bodies %q / %q", msgs[0].Body, msgs[1].Body)
	}
	if msgs[1].Envelope.From.Addr != "d@example.test" || len(msgs[1].Envelope.Rcpts) != 1 {
		t.Errorf("second envelope %+v", msgs[1].Envelope)
	}
}

// TestSmuggling checks that <LF>.<LF> and <CR><LF>.<LF> never end DATA: the
// smuggled "MAIL FROM" stays inside the one message (SMTP smuggling).
func TestSmuggling(t *testing.T) {
	for _, end := range []string{"\n.\n", "\r\n.\n", "\n.\r\n"} {
		t.Run(fmt.Sprintf("%q", end), func(t *testing.T) {
			acc := &memAcceptor{}
			_, addr := startServer(t, testListener(), acc, Options{})
			c := dialRaw(t, addr)
			c.hello()
			c.send("MAIL FROM:<a@example.test>\r\nRCPT TO:<b@example.test>\r\nDATA\r\n")
			c.expect(250, "")
			c.expect(250, "")
			c.expect(354, "")
			c.send("Subject: x\r\n\r\nbody" + end + "MAIL FROM:<evil@example.test>\r\nRCPT TO:<victim@example.test>\r\nDATA\r\nsmuggled\r\n.\r\n")
			c.expect(250, "2.0.0")
			c.send("QUIT\r\n")
			c.expect(221, "")
			msgs := acc.messages()
			if len(msgs) != 1 {
				t.Fatalf("got %d messages, want 1", len(msgs))
			}
			if !bytes.Contains(msgs[0].Body, []byte("evil@example.test")) || !bytes.HasSuffix(msgs[0].Body, []byte("smuggled\r\n")) {
				t.Errorf("body %q", msgs[0].Body)
			}
		})
	}
}

// TestBadInput covers a long command line, bad sequence, unknown command and
// that the session survives each.
func TestBadInput(t *testing.T) {
	acc := &memAcceptor{}
	_, addr := startServer(t, testListener(), acc, Options{})
	c := dialRaw(t, addr)
	c.hello()
	c.send("RCPT TO:<b@example.test>\r\n")
	c.expect(503, "5.5.1")
	c.send("NOOP " + strings.Repeat("x", 3000) + "\r\n")
	c.expect(500, "5.5.2")
	c.send("FROB\r\n")
	c.expect(500, "5.5.2")
	c.send("MAIL FROM:<a@example.test>\r\nRCPT TO:<b@example.test>\r\nDATA\r\n")
	c.expect(250, "")
	c.expect(250, "")
	c.expect(354, "")
	c.send("x\r\n.\r\n")
	c.expect(250, "2.0.0")
	if n := len(acc.messages()); n != 1 {
		t.Fatalf("got %d messages", n)
	}
}

// TestTooManyBadCommands checks 421 4.4.2 and close after MaxBadCommands.
func TestTooManyBadCommands(t *testing.T) {
	_, addr := startServer(t, testListener(), &memAcceptor{}, Options{})
	c := dialRaw(t, addr)
	c.hello()
	c.send(strings.Repeat("FROB\r\n", 10))
	for {
		r := c.reply()
		if r.Code == 421 {
			if r.Enhanced != "4.4.2" && r.Enhanced != "4.7.0" {
				t.Errorf("got %q", r.String())
			}
			break
		}
		if r.Code != 500 {
			t.Fatalf("got %q", r.String())
		}
	}
	c.expectClosed()
}

// TestRelayDenied connects from 127.0.0.9, outside relay_hosts
// (127.0.0.1/32): recipients get 554 5.7.1, and nothing is accepted.
func TestRelayDenied(t *testing.T) {
	acc := &memAcceptor{}
	_, addr := startServer(t, testListener(), acc, Options{})
	c := dialRawFrom(t, addr, "127.0.0.9")
	c.hello()
	c.send("MAIL FROM:<a@example.test>\r\n")
	c.expect(250, "")
	c.send("RCPT TO:<b@example.test>\r\n")
	c.expect(554, "5.7.1")
	c.send("DATA\r\n")
	c.expect(503, "5.5.1")
	c.send("QUIT\r\n")
	c.expect(221, "")

	// The same from 127.0.0.1 relays.
	c = dialRawFrom(t, addr, "127.0.0.1")
	c.hello()
	c.send("MAIL FROM:<a@example.test>\r\nRCPT TO:<b@example.test>\r\n")
	c.expect(250, "")
	c.expect(250, "2.1.5")
}

// TestCheckMailRefusal passes the Acceptor's MAIL refusal (queue full) on.
func TestCheckMailRefusal(t *testing.T) {
	acc := &memAcceptor{mailDeny: &smtpwire.ReplyQueueFull}
	_, addr := startServer(t, testListener(), acc, Options{})
	c := dialRaw(t, addr)
	c.hello()
	c.send("MAIL FROM:<a@example.test>\r\n")
	c.expect(452, "4.3.1")
}

// TestAcceptRefusal passes the Acceptor's refusal at the final dot on and
// keeps the session usable.
func TestAcceptRefusal(t *testing.T) {
	r := smtpwire.ReplyQueueFull
	acc := &memAcceptor{reply: &r}
	_, addr := startServer(t, testListener(), acc, Options{})
	c := dialRaw(t, addr)
	c.hello()
	c.send("MAIL FROM:<a@example.test>\r\nRCPT TO:<b@example.test>\r\nDATA\r\n")
	c.expect(250, "")
	c.expect(250, "")
	c.expect(354, "")
	c.send("x\r\n.\r\nNOOP\r\n")
	c.expect(452, "4.3.1")
	c.expect(250, "")
}

// TestMessageTooBig checks 552 5.3.4 for a body over MaxMessageSize.
func TestMessageTooBig(t *testing.T) {
	acc := &memAcceptor{}
	cfg := testListener()
	cfg.MaxMessageSize = 10000
	_, addr := startServer(t, cfg, acc, Options{})
	c := dialRaw(t, addr)
	c.hello()
	c.send("MAIL FROM:<a@example.test>\r\nRCPT TO:<b@example.test>\r\nDATA\r\n")
	c.expect(250, "")
	c.expect(250, "")
	c.expect(354, "")
	line := strings.Repeat("y", 70) + "\r\n"
	c.send(strings.Repeat(line, 300) + ".\r\n")
	c.expect(552, "5.3.4")
	if n := len(acc.messages()); n != 0 {
		t.Fatalf("accepted %d messages", n)
	}
}

// TestConcurrentClients runs 200 connections sending 5 messages each.
func TestConcurrentClients(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	acc := &memAcceptor{}
	cfg := testListener()
	srv, addr := startServer(t, cfg, acc, Options{})
	const conns, perConn = 200, 5
	var wg sync.WaitGroup
	errs := make(chan error, conns)
	for i := 0; i < conns; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			c, err := smtp.Dial(addr)
			if err != nil {
				errs <- err
				return
			}
			defer c.Close()
			for j := 0; j < perConn; j++ {
				if err := c.Mail(fmt.Sprintf("s%d@example.test", i)); err != nil {
					errs <- err
					return
				}
				if err := c.Rcpt(fmt.Sprintf("r%d-%d@example.test", i, j)); err != nil {
					errs <- err
					return
				}
				w, err := c.Data()
				if err != nil {
					errs <- err
					return
				}
				fmt.Fprintf(w, "Subject: %d-%d\r\n\r\nmessage %d of connection %d\r\n", i, j, j, i)
				if err := w.Close(); err != nil {
					errs <- err
					return
				}
			}
			errs <- c.Quit()
		}(i)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	msgs := acc.messages()
	if len(msgs) != conns*perConn {
		t.Fatalf("got %d messages, want %d", len(msgs), conns*perConn)
	}
	seen := make(map[string]bool)
	for _, m := range msgs {
		rcpt := m.Envelope.Rcpts[0].Addr
		var i, j int
		fmt.Sscanf(rcpt, "r%d-%d@", &i, &j)
		want := fmt.Sprintf("Subject: %d-%d\r\n\r\nmessage %d of connection %d\r\n", i, j, j, i)
		if string(m.Body) != want {
			t.Fatalf("body for %s: %q", rcpt, m.Body)
		}
		seen[rcpt] = true
	}
	if len(seen) != conns*perConn {
		t.Fatalf("%d distinct messages", len(seen))
	}
	waitFor(t, 5*time.Second, "connections to close", func() bool { return srv.OpenConnections() == 0 })
}

// TestIdleTimeout: a client that says nothing gets 421 4.4.2 and is closed.
func TestIdleTimeout(t *testing.T) {
	cfg := testListener()
	cfg.IdleTimeout = 200 * time.Millisecond
	srv, addr := startServer(t, cfg, &memAcceptor{}, Options{})
	c := dialRaw(t, addr)
	c.expect(220, "")
	start := time.Now()
	c.expect(421, "4.4.2")
	c.expectClosed()
	if d := time.Since(start); d < 150*time.Millisecond {
		t.Errorf("timed out after %v", d)
	}
	waitFor(t, 2*time.Second, "connection count 0", func() bool { return srv.OpenConnections() == 0 })
}

// TestDataTimeout: a client that stalls inside DATA gets 421 4.4.2, and the
// partial message is not accepted.
func TestDataTimeout(t *testing.T) {
	acc := &memAcceptor{}
	cfg := testListener()
	cfg.DataTimeout = 200 * time.Millisecond
	_, addr := startServer(t, cfg, acc, Options{})
	c := dialRaw(t, addr)
	c.hello()
	c.send("MAIL FROM:<a@example.test>\r\nRCPT TO:<b@example.test>\r\nDATA\r\n")
	c.expect(250, "")
	c.expect(250, "")
	c.expect(354, "")
	c.send("Subject: slow\r\n\r\npart")
	c.expect(421, "4.4.2")
	c.expectClosed()
	if n := len(acc.messages()); n != 0 {
		t.Fatalf("accepted %d", n)
	}
}

// TestClientVanishesMidData: the client closes inside DATA; the server
// survives, nothing is accepted, and the connection count returns to 0.
func TestClientVanishesMidData(t *testing.T) {
	acc := &memAcceptor{}
	srv, addr := startServer(t, testListener(), acc, Options{})
	for i := 0; i < 20; i++ {
		c := dialRaw(t, addr)
		c.hello()
		c.send("MAIL FROM:<a@example.test>\r\nRCPT TO:<b@example.test>\r\nDATA\r\n")
		c.expect(250, "")
		c.expect(250, "")
		c.expect(354, "")
		c.send("Subject: gone\r\n\r\n" + strings.Repeat("z", 5000))
		c.conn.Close()
	}
	waitFor(t, 5*time.Second, "connection count 0", func() bool { return srv.OpenConnections() == 0 })
	if n := len(acc.messages()); n != 0 {
		t.Fatalf("accepted %d", n)
	}
	// Still serving.
	if err := smtp.SendMail(addr, nil, "a@example.test", []string{"b@example.test"}, []byte("x\r\n")); err != nil {
		t.Fatal(err)
	}
}

// TestConnectionLimits: past MaxConnectionsPerIP a new connection gets
// 421 4.3.2 and is closed.
func TestConnectionLimits(t *testing.T) {
	cfg := testListener()
	cfg.MaxConnectionsPerIP = 2
	srv, addr := startServer(t, cfg, &memAcceptor{}, Options{})
	a := dialRaw(t, addr)
	a.expect(220, "")
	b := dialRaw(t, addr)
	b.expect(220, "")
	c := dialRaw(t, addr)
	c.expect(421, "4.3.2")
	c.expectClosed()
	// Another address is not affected.
	d := dialRawFrom(t, addr, "127.0.0.7")
	d.expect(220, "")
	a.conn.Close()
	waitFor(t, 2*time.Second, "3 connections", func() bool { return srv.OpenConnections() == 2 })
	e := dialRaw(t, addr)
	e.expect(220, "")
}

// TestWorkerPoolFull: with one worker busy, the next message gets 451 4.3.2.
func TestWorkerPoolFull(t *testing.T) {
	acc := &memAcceptor{block: make(chan struct{}), entered: make(chan struct{}, 4)}
	_, addr := startServer(t, testListener(), acc, Options{Workers: 1})
	send := func(c *rawClient) {
		c.hello()
		c.send("MAIL FROM:<a@example.test>\r\nRCPT TO:<b@example.test>\r\nDATA\r\n")
		c.expect(250, "")
		c.expect(250, "")
		c.expect(354, "")
		c.send("x\r\n.\r\n")
	}
	a := dialRaw(t, addr)
	send(a)
	<-acc.entered
	b := dialRaw(t, addr)
	send(b)
	b.expect(451, "4.3.2")
	close(acc.block)
	a.expect(250, "2.0.0")
}

// TestStopDrains: Stop lets the message in flight finish (its 250 arrives),
// tells the idle session 421 4.3.2, and returns.
func TestStopDrains(t *testing.T) {
	acc := &memAcceptor{block: make(chan struct{}), entered: make(chan struct{}, 4)}
	s, err := New([]ListenerConfig{testListener()}, acc, Options{EventLoops: 2})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	addr := s.Addrs()[0].String()
	idle := dialRaw(t, addr)
	idle.hello()
	busy := dialRaw(t, addr)
	busy.hello()
	busy.send("MAIL FROM:<a@example.test>\r\nRCPT TO:<b@example.test>\r\nDATA\r\n")
	busy.expect(250, "")
	busy.expect(250, "")
	busy.expect(354, "")
	busy.send("x\r\n.\r\n")
	<-acc.entered
	stopped := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		stopped <- s.Stop(ctx)
	}()
	idle.expect(421, "4.3.2")
	idle.expectClosed()
	select {
	case err := <-stopped:
		t.Fatalf("Stop returned before the message was answered: %v", err)
	case <-time.After(100 * time.Millisecond):
	}
	close(acc.block)
	busy.expect(250, "2.0.0")
	busy.expect(421, "4.3.2")
	busy.expectClosed()
	if err := <-stopped; err != nil {
		t.Fatal(err)
	}
}

// TestSwaks drives the listener with swaks, plain and pipelined.
func TestSwaks(t *testing.T) {
	swaks := needTool(t, "swaks")
	acc := &memAcceptor{}
	_, addr := startServer(t, testListener(), acc, Options{})
	host, port := splitHostPort(t, addr)
	for _, extra := range [][]string{nil, {"--pipeline"}} {
		args := append([]string{"--server", host, "--port", port, "--from", "app@example.test",
			"--to", "user@example.test", "--helo", "client.example.test",
			"--header", "Subject: swaks test", "--body", "Hello from swaks.\n.dot line\n", "--suppress-data"}, extra...)
		out, err := exec.Command(swaks, args...).CombinedOutput()
		if err != nil {
			t.Fatalf("swaks %v: %v\n%s", extra, err, out)
		}
	}
	msgs := acc.messages()
	if len(msgs) != 2 {
		t.Fatalf("got %d messages", len(msgs))
	}
	for _, m := range msgs {
		if !bytes.Contains(m.Body, []byte("\r\nSubject: swaks test\r\n")) || !bytes.Contains(m.Body, []byte("\r\n\r\nHello from swaks.\r\n.dot line\r\n")) {
			t.Errorf("body %q", m.Body)
		}
		if m.Envelope.Helo != "client.example.test" {
			t.Errorf("helo %q", m.Envelope.Helo)
		}
	}
}

// TestPythonSmtplib drives the listener with Python's smtplib.
func TestPythonSmtplib(t *testing.T) {
	py := needTool(t, "/usr/bin/python3")
	acc := &memAcceptor{}
	_, addr := startServer(t, testListener(), acc, Options{})
	host, port := splitHostPort(t, addr)
	script := `
import smtplib, sys
s = smtplib.SMTP(sys.argv[1], int(sys.argv[2]), local_hostname="py.example.test", timeout=10)
s.ehlo()
assert s.has_extn("pipelining") and s.has_extn("size"), s.esmtp_features
body = b"Subject: py\r\n\r\nline one\r\n.line two starts with a dot\r\n\xc3\xa9 8bit\r\n"
r = s.sendmail("py@example.test", ["x@example.test", "y@example.test"], body, mail_options=["BODY=8BITMIME"])
assert r == {}, r
s.quit()
`
	out, err := exec.Command(py, "-c", script, host, port).CombinedOutput()
	if err != nil {
		t.Fatalf("python: %v\n%s", err, out)
	}
	msgs := acc.messages()
	if len(msgs) != 1 {
		t.Fatalf("got %d messages", len(msgs))
	}
	want := "Subject: py\r\n\r\nline one\r\n.line two starts with a dot\r\n\xc3\xa9 8bit\r\n"
	if string(msgs[0].Body) != want {
		t.Errorf("body\n got %q\nwant %q", msgs[0].Body, want)
	}
}

func needTool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is required in CI: %v", name, err)
		}
		t.Skipf("SKIPPING: %s not installed", name)
	}
	return p
}

func splitHostPort(t *testing.T, addr string) (string, string) {
	t.Helper()
	i := strings.LastIndexByte(addr, ':')
	return addr[:i], addr[i+1:]
}

var _ = filepath.Join

// TestMaxConnections: past MaxConnections on the listener, 421 4.3.2.
func TestMaxConnections(t *testing.T) {
	cfg := testListener()
	cfg.MaxConnections = 1
	_, addr := startServer(t, cfg, &memAcceptor{}, Options{})
	a := dialRaw(t, addr)
	a.expect(220, "")
	b := dialRawFrom(t, addr, "127.0.0.3")
	b.expect(421, "4.3.2")
	b.expectClosed()
}

// TestTimeoutFollowsSessionState: the timeout in force is chosen from the
// session's own state (RFC 5321 §4.5.3.2): inside a transaction the long
// command timeout applies, after RSET the short idle timeout does, and in
// the middle of a BDAT chunk the data timeout.
func TestTimeoutFollowsSessionState(t *testing.T) {
	cfg := testListener()
	cfg.IdleTimeout = 300 * time.Millisecond
	cfg.CommandTimeout = 5 * time.Second
	cfg.DataTimeout = 600 * time.Millisecond
	acc := &memAcceptor{}
	_, addr := startServer(t, cfg, acc, Options{})
	c := dialRaw(t, addr)
	c.hello()
	c.send("MAIL FROM:<a@example.test>\r\n")
	c.expect(250, "2.1.0")
	time.Sleep(800 * time.Millisecond) // past the idle timeout: still served
	c.send("RSET\r\n")
	c.expect(250, "2.0.0")
	start := time.Now()
	c.expect(421, "4.4.2")
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("idle timeout after RSET took %v", d)
	}
	c.expectClosed()

	c = dialRaw(t, addr)
	c.hello()
	c.send("MAIL FROM:<a@example.test>\r\nRCPT TO:<b@example.test>\r\nBDAT 10\r\n12345")
	c.expect(250, "")
	c.expect(250, "")
	start = time.Now()
	c.expect(421, "4.4.2")
	if d := time.Since(start); d < 500*time.Millisecond || d > 3*time.Second {
		t.Errorf("data timeout inside a BDAT chunk after %v, want about 600ms", d)
	}
	if len(acc.messages()) != 0 {
		t.Fatal("a partial message was accepted")
	}
}
