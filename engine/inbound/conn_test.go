package inbound

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"gannet/smtpwire"
)

// holdingAuth refuses every AUTH, each answer held until release is closed:
// the held reply behind which a hostile client pipelines.
type holdingAuth struct {
	release chan struct{}
	calls   atomic.Int64
}

func (a *holdingAuth) Authenticate(ctx context.Context, cred smtpwire.AuthCredentials) (string, string, bool) {
	a.calls.Add(1)
	<-a.release
	return "", "", false
}

// heapGrowth samples the Go heap in use until the returned function is
// called, which reports the most it grew over what it was at the start
// (after a collection).
func heapGrowth() (stop func() int64) {
	var ms runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms)
	base := ms.HeapInuse
	var peak atomic.Uint64
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		var ms runtime.MemStats
		for {
			runtime.ReadMemStats(&ms)
			if ms.HeapInuse > peak.Load() {
				peak.Store(ms.HeapInuse)
			}
			select {
			case <-done:
				return
			case <-time.After(5 * time.Millisecond):
			}
		}
	}()
	return func() int64 {
		close(done)
		wg.Wait()
		return int64(peak.Load()) - int64(base)
	}
}

// pipelineUnread connects from a loopback address of its own, says EHLO,
// sends AUTH PLAIN with a wrong password and then payload, and never reads
// a reply. It returns the connection, left open.
func pipelineUnread(t *testing.T, addr, from string, payload []byte) net.Conn {
	t.Helper()
	c := dialRawFrom(t, addr, from)
	c.hello()
	c.send(authPlain("app1", "wrong"))
	_ = c.conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
	for p := payload; len(p) > 0; {
		n, err := c.conn.Write(p[:min(len(p), 64<<10)])
		if err != nil {
			break // the server closed the connection
		}
		p = p[n:]
	}
	return c.conn
}

// TestUnreadRepliesBounded is the reply amplification of issue #15: clients
// pipeline "EHLO a" (each answered with about 24 times its size) behind an
// AUTH whose failure a worker holds, and never read a reply. The server
// drops every one of them, and its heap does not grow by the replies: what
// a client pipelines behind AUTH is bounded (extraInbound), and the
// replies are made a bounded piece at a time (EventFlush) and dropped with
// the client once it leaves maxOutbound unread.
func TestUnreadRepliesBounded(t *testing.T) {
	cfg := testListener()
	cfg.AuthMechs = []string{"PLAIN"}
	cfg.AuthFailWindow = -1 // the AUTH guard is tested elsewhere
	for _, tc := range []struct {
		name string
		size int  // bytes of "EHLO a" behind the AUTH
		hold bool // the AUTH answer waits until every client has written
	}{
		{"held", 1 << 20, true},
		{"answered at once", 4 << 20, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			auth := &holdingAuth{release: make(chan struct{})}
			if !tc.hold {
				close(auth.release)
			}
			srv, addr := startServer(t, cfg, &memAcceptor{}, Options{Authenticator: auth})
			payload := bytes.Repeat([]byte("EHLO a\r\n"), tc.size/8)
			stop := heapGrowth()
			const clients = 6
			conns := make([]net.Conn, clients)
			var wg sync.WaitGroup
			for i := range conns {
				wg.Add(1)
				go func() {
					defer wg.Done()
					conns[i] = pipelineUnread(t, addr, fmt.Sprintf("127.0.0.%d", 20+i), payload)
				}()
			}
			wg.Wait()
			if tc.hold {
				waitFor(t, 5*time.Second, "AUTH checks", func() bool { return auth.calls.Load() == clients })
				close(auth.release)
			}
			waitFor(t, 10*time.Second, "the server to drop the clients that do not read", func() bool {
				return srv.OpenConnections() == 0
			})
			growth := stop()
			t.Logf("%d clients, %d KiB each: heap in use grew by at most %d MiB", clients, tc.size>>10, growth>>20)
			if growth > 64<<20 {
				t.Errorf("heap grew by %d MiB while %d clients did not read their replies", growth>>20, clients)
			}
		})
	}
}

// TestLongPipelinedBatch: a client that pipelines a long batch and reads
// the replies afterwards gets every one, in order, although the session
// yields many times while answering it.
func TestLongPipelinedBatch(t *testing.T) {
	_, addr := startServer(t, testListener(), &memAcceptor{}, Options{})
	c := dialRaw(t, addr)
	c.hello()
	const n = 5000 // about 70 KB of replies, past smtpwire.DefaultMaxOutput
	var batch strings.Builder
	for i := 0; i < n; i++ {
		batch.WriteString("NOOP\r\n")
	}
	batch.WriteString("QUIT\r\n")
	c.send(batch.String())
	for i := 0; i < n; i++ {
		c.expect(250, "2.0.0")
	}
	c.expect(221, "2.0.0")
	c.expectClosed()
}

// TestBDATPipelinedBehindMessage: behind a message a worker holds, the next
// message may follow whole in BDAT chunks (RFC 3030 §4.2), up to the
// message size limit: that is not running ahead.
func TestBDATPipelinedBehindMessage(t *testing.T) {
	acc := &memAcceptor{block: make(chan struct{}), entered: make(chan struct{}, 4)}
	cfg := testListener()
	_, addr := startServer(t, cfg, acc, Options{})
	c := dialRaw(t, addr)
	c.hello()
	body := bytes.Repeat([]byte("0123456789abcdef"), int(cfg.MaxMessageSize)*7/8/16)
	c.send("MAIL FROM:<a@example.test>\r\nRCPT TO:<b@example.test>\r\nBDAT 5 LAST\r\nfirst")
	c.expect(250, "2.1.0")
	c.expect(250, "2.1.5")
	<-acc.entered
	c.send(fmt.Sprintf("MAIL FROM:<a@example.test>\r\nRCPT TO:<b@example.test>\r\nBDAT %d LAST\r\n%s", len(body), body))
	time.Sleep(100 * time.Millisecond) // let the server read it all while the worker holds the first
	close(acc.block)
	c.expect(250, "2.0.0")
	c.expect(250, "2.1.0")
	c.expect(250, "2.1.5")
	<-acc.entered
	c.expect(250, "2.0.0")
	if msgs := acc.messages(); len(msgs) != 2 || !bytes.Equal(msgs[1].Body, body) {
		t.Fatalf("got %d messages", len(msgs))
	}
}

// lineTimeouts is testListener with command, data and idle timeouts of d.
func lineTimeouts(d time.Duration) ListenerConfig {
	cfg := testListener()
	cfg.CommandTimeout, cfg.DataTimeout, cfg.IdleTimeout = d, d, d
	return cfg
}

// trickle writes one byte of s every interval until s is used up or the
// server closes the connection; it never sends a line end unless s has one.
func trickle(c *rawClient, s string, interval time.Duration) {
	for i := 0; i < len(s); i++ {
		time.Sleep(interval)
		_ = c.conn.SetWriteDeadline(time.Now().Add(time.Second))
		if _, err := c.conn.Write([]byte{s[i]}); err != nil {
			return
		}
	}
}

// TestTrickledLineTimesOut is the slowloris of issue #15: a client sends a
// byte every 150 ms and never ends its line, with 600 ms timeouts. Each
// line must be complete within its timeout (RFC 5321 §4.5.3.2, a deadline
// per line as Postfix's per-record deadline), so the bytes do not keep the
// connection: 421 4.4.2 and close, in a command line and in message data.
func TestTrickledLineTimesOut(t *testing.T) {
	acc := &memAcceptor{}
	_, addr := startServer(t, lineTimeouts(600*time.Millisecond), acc, Options{})
	for _, tc := range []struct{ name, before string }{
		{"command", ""},
		{"message data", "MAIL FROM:<a@example.test>\r\nRCPT TO:<b@example.test>\r\nDATA\r\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := dialRaw(t, addr)
			c.hello()
			if tc.before != "" {
				c.send(tc.before)
				c.expect(250, "")
				c.expect(250, "")
				c.expect(354, "")
			}
			go trickle(c, strings.Repeat("x", 60), 150*time.Millisecond) // 9 s of bytes
			start := time.Now()
			c.expect(421, "4.4.2")
			c.expectClosed()
			if d := time.Since(start); d > 3*time.Second {
				t.Errorf("closed after %v of trickled bytes, timeouts are 600ms", d)
			}
		})
	}
	if n := len(acc.messages()); n != 0 {
		t.Fatalf("%d messages accepted", n)
	}
}

// TestLinesInTimeKeepTheSession: a client slow per byte but finishing each
// line within the timeout is served, line after line; only SessionTimeout
// ends a session that stays busy that way.
func TestLinesInTimeKeepTheSession(t *testing.T) {
	cfg := lineTimeouts(700 * time.Millisecond)
	cfg.SessionTimeout = 3 * time.Second
	acc := &memAcceptor{}
	_, addr := startServer(t, cfg, acc, Options{})
	c := dialRaw(t, addr)
	start := time.Now()
	c.hello()
	c.send("MAIL FROM:<a@example.test>\r\nRCPT TO:<b@example.test>\r\nDATA\r\n")
	c.expect(250, "")
	c.expect(250, "")
	c.expect(354, "")
	// Four data lines, each trickled over about 400 ms: 1.6 s in all, more
	// than twice the data timeout, but every line in time.
	for i := 0; i < 4; i++ {
		trickle(c, fmt.Sprintf("l%d\r\n", i), 100*time.Millisecond)
	}
	c.send(".\r\n")
	c.expect(250, "2.0.0")
	// Then NOOPs, each line in time, until the session's own limit.
	for time.Since(start) < 5*time.Second {
		trickle(c, "NOOP\r\n", 50*time.Millisecond)
		r := c.reply()
		if r.Code == 421 {
			if d := time.Since(start); d < 2500*time.Millisecond {
				t.Errorf("session ended after %v, SessionTimeout is 3s", d)
			}
			c.expectClosed()
			if n := len(acc.messages()); n != 1 {
				t.Errorf("%d messages accepted, want 1", n)
			}
			return
		}
		if r.Code != 250 {
			t.Fatalf("NOOP: %s", r.String())
		}
	}
	t.Fatal("the session outlived SessionTimeout")
}

// fuzzListener is the listener FuzzConnection drives: small limits, so that
// sizes, recipient counts and the replies' bound are reached with small
// inputs; STARTTLS and AUTH on offer; the AUTH guard off, so that one
// input's failures do not shut out the next.
func fuzzListener(t testing.TB) ListenerConfig {
	cfg := testListener()
	cfg.MaxMessageSize = 64 << 10
	cfg.MaxRecipients = 5
	cfg.MaxBadCommands = 1000
	cfg.AuthMechs = []string{"PLAIN", "LOGIN", "CRAM-MD5"}
	cfg.AuthFailWindow = -1
	cfg.TLSConfig, _ = testCert(t)
	return cfg
}

// FuzzConnection drives a real listener over loopback with the session,
// the workers and the reply path together: the input, repeated 1 + seed%32
// times (so that the replies to it can pass what a connection may leave
// unread), is written in pieces cut at points drawn from the seed (up to
// 4 KiB each), and no reply is read
// until the client has sent everything and shut its side. Then the replies
// it got must be well-formed SMTP (a cut-off last one only if the server
// dropped the client), the server must have forgotten the connection, and
// the next input must be greeted.
func FuzzConnection(f *testing.F) {
	srv, addr := startServer(f, fuzzListener(f), nopAcceptor{}, Options{Authenticator: &fakeAuth{}})
	for _, s := range []string{
		"EHLO x\r\nMAIL FROM:<a@b.example>\r\nRCPT TO:<c@d.example>\r\nDATA\r\nhi\r\n.\r\nQUIT\r\n",
		"EHLO x\r\nMAIL FROM:<a@b.example>\r\nRCPT TO:<c@d.example>\r\nBDAT 3\r\nabcBDAT 2 LAST\r\nde",
		authPlain("app1", "wrong") + strings.Repeat("EHLO a\r\n", 2000),
		"EHLO x\r\nAUTH LOGIN\r\nYXBwMQ==\r\nc2VjcmV0\r\nMAIL FROM:<a@b.example>\r\n",
		"EHLO x\r\nSTARTTLS\r\nMAIL FROM:<injected@b.example>\r\n",
		"EHLO x\r\nMAIL FROM:<a@b.example> SIZE=99999999\r\nRCPT TO:<c@d.example>\r\nBDAT 70000 LAST\r\n",
		"HELO x\n" + strings.Repeat("x", 5000) + "\nNOOP\n",
	} {
		f.Add([]byte(s), uint64(len(s)))
	}
	f.Fuzz(func(t *testing.T, data []byte, seed uint64) {
		if len(data) > 16<<10 {
			data = data[:16<<10]
		}
		in := bytes.Repeat(data, 1+int(seed%32))
		rng := rand.New(rand.NewPCG(seed, 15))
		c := dialRaw(t, addr)
		c.expect(220, "")
		_ = c.conn.SetDeadline(time.Now().Add(10 * time.Second))
		for len(in) > 0 {
			n := 1 + rng.IntN(min(len(in), 4096))
			if _, err := c.conn.Write(in[:n]); err != nil {
				break // dropped: it did not read its replies, or it was refused
			}
			in = in[n:]
		}
		_ = c.conn.(*net.TCPConn).CloseWrite()
		out, err := io.ReadAll(c.r)
		if err := checkReplies(out, err != nil); err != nil {
			t.Fatalf("%v\nreplies:\n%.2000q", err, out)
		}
		c.conn.Close()
		waitFor(t, 5*time.Second, "the server to forget the connection", func() bool { return srv.OpenConnections() == 0 })
	})
}

// checkReplies checks that out is a series of well-formed SMTP replies; the
// last may be cut off when the connection was reset.
func checkReplies(out []byte, reset bool) error {
	for len(out) > 0 {
		_, n, err := smtpwire.ParseReply(out)
		if errors.Is(err, smtpwire.ErrIncomplete) && reset {
			return nil
		}
		if err != nil {
			return fmt.Errorf("reply %.200q: %v", out, err)
		}
		out = out[n:]
	}
	return nil
}
