package e2e

// Hostile clients against bin/gannet (issue #15), each probed with raw
// sockets on loopback the way the issue found them: replies left unread
// behind a failed AUTH (the process's RSS must stay flat), parallel wrong
// AUTH from one address (no more password checks than
// auth_fail_block_after), a client trickling a byte at a time (each line
// has its own deadline), AUTH timing that would tell which names exist,
// and the default per-address connection limit and session_timeout.

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

const hostileConfig = `# gannet hostile-client e2e test (generated)
http_listener = []

[spool]
path = "DIR/spool"

[log]
path = "DIR/logs"

[resolver]
nameservers = ["127.0.0.1:9"]
timeout = "1s"

[delivery]
relay_to = "127.0.0.1:9"

[[smtp_listener]]
name = "hostile"
listen = "{{HOSTILE}}"
hostname = "hostile.inb.test"
relay_hosts = ["127.0.0.1/32"]
auth_mechanisms = ["PLAIN", "LOGIN"]
auth_require_tls = false
auth_fail_delay = "0s"
max_connections_per_ip = 200
command_timeout = "2s"
data_timeout = "2s"
idle_timeout = "2s"

[[smtp_listener]]
name = "defaults"
listen = "{{DEFAULTS}}"
hostname = "defaults.inb.test"
relay_hosts = ["127.0.0.1/32"]
session_timeout = "4s"

[[smtp_user]]
name = "app1"
password_hash = '{{HASH}}'
`

// rssMiB returns the resident set of process pid.
func rssMiB(pid int) (int, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) > 1 && f[0] == "VmRSS:" {
			kb, err := strconv.Atoi(f[1])
			return kb >> 10, err
		}
	}
	return 0, fmt.Errorf("no VmRSS in /proc/%d/status", pid)
}

// rssPeak samples the resident set of process pid every 20 ms until the
// returned function is called, which reports the highest value seen.
func rssPeak(pid int) (stop func() int) {
	var peak atomic.Int64
	done, sampled := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(sampled)
		for {
			if m, err := rssMiB(pid); err == nil && int64(m) > peak.Load() {
				peak.Store(int64(m))
			}
			select {
			case <-done:
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	}()
	return func() int {
		close(done)
		<-sampled
		return int(peak.Load())
	}
}

// rawSession dials addr from fromIP, reads the greeting and says EHLO; it
// reports failures as errors, so that it may run on any goroutine.
func rawSession(addr, fromIP string) (net.Conn, *bufio.Reader, error) {
	d := net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(fromIP)}}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		return nil, nil, err
	}
	r := bufio.NewReader(c)
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if l, err := rawReply(r); err != nil || !strings.HasPrefix(l, "220") {
		c.Close()
		return nil, nil, fmt.Errorf("greeting %q: %v", l, err)
	}
	if _, err := c.Write([]byte("EHLO raw.inb.test\r\n")); err != nil {
		c.Close()
		return nil, nil, err
	}
	if l, err := rawReply(r); err != nil || !strings.HasPrefix(l, "250") {
		c.Close()
		return nil, nil, fmt.Errorf("EHLO reply %q: %v", l, err)
	}
	return c, r, nil
}

// rawReply reads one reply and returns its last line.
func rawReply(r *bufio.Reader) (string, error) {
	for {
		l, err := r.ReadString('\n')
		if err != nil {
			return l, err
		}
		if len(l) < 4 || l[3] != '-' {
			return strings.TrimRight(l, "\r\n"), nil
		}
	}
}

func plainAuth(user, pass string) string {
	return "AUTH PLAIN " + base64.StdEncoding.EncodeToString([]byte("\x00"+user+"\x00"+pass)) + "\r\n"
}

// TestInboundHostileClients runs the probes of issue #15 against one gannet
// with a bcrypt account.
func TestInboundHostileClients(t *testing.T) {
	dir := t.TempDir()
	hash, err := bcrypt.GenerateFromPassword([]byte("right"), 8)
	if err != nil {
		t.Fatal(err)
	}
	hostile := hostPort("127.0.0.1", freePort(t, false, "127.0.0.1"))
	defaults := hostPort("127.0.0.1", freePort(t, false, "127.0.0.1"))
	cfg := strings.NewReplacer("{{HOSTILE}}", hostile, "{{DEFAULTS}}", defaults, "{{HASH}}", string(hash)).Replace(hostileConfig)
	g := inbStartGannet(t, dir, cfg, hostile)
	pid := g.p.cmd.Process.Pid

	t.Run("unread replies behind a failed AUTH", func(t *testing.T) {
		// 20 clients, each from its own address, send 4 MiB of
		// "EHLO a" (about 100 MB of replies) behind a wrong AUTH PLAIN
		// and read nothing: each is dropped, and the RSS stays flat.
		const clients = 20
		payload := bytes.Repeat([]byte("EHLO a\r\n"), 4<<20/8)
		base, err := rssMiB(pid)
		if err != nil {
			t.Fatal(err)
		}
		stopRSS := rssPeak(pid)
		errs := make([]error, clients)
		var wg sync.WaitGroup
		for i := range clients {
			wg.Add(1)
			go func() {
				defer wg.Done()
				c, _, err := rawSession(hostile, fmt.Sprintf("127.0.4.%d", i+1))
				if err != nil {
					errs[i] = err
					return
				}
				defer c.Close()
				_ = c.SetDeadline(time.Now().Add(30 * time.Second))
				if _, err := c.Write([]byte(plainAuth("app1", "wrong"))); err != nil {
					errs[i] = err
					return
				}
				if _, err := c.Write(payload); err == nil {
					// Everything went out without a read: the server must
					// still drop the client, so reading ends in EOF or a
					// reset, not a timeout.
					_, err = io.Copy(io.Discard, c)
					if ne, ok := err.(net.Error); ok && ne.Timeout() {
						errs[i] = fmt.Errorf("still connected after 30s")
					}
				}
			}()
		}
		wg.Wait()
		peak := stopRSS()
		for i, err := range errs {
			if err != nil {
				t.Errorf("client %d: %v", i, err)
			}
		}
		growth := peak - base
		t.Logf("%d clients x 4 MiB of unread EHLO replies: RSS %d MiB, peak %d MiB (+%d MiB)", clients, base, peak, growth)
		if growth > 64 {
			t.Errorf("RSS grew by %d MiB, more than 64 MiB", growth)
		}
		g.alive(t, hostile)
	})

	t.Run("parallel wrong AUTH from one address", func(t *testing.T) {
		// 100 connections from 127.0.0.9 send a wrong password at once:
		// no more than auth_fail_block_after (10) are checked, and the
		// right password, tried afterwards, is refused at connect.
		const n = 100
		failedBefore := strings.Count(g.p.out.String(), `msg="AUTH failed"`)
		conns := make([]net.Conn, 0, n)
		readers := make([]*bufio.Reader, 0, n)
		for range n {
			c, r, err := rawSession(hostile, "127.0.0.9")
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			conns, readers = append(conns, c), append(readers, r)
		}
		replies := make([]string, n)
		var wg sync.WaitGroup
		for i := range conns {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if _, err := conns[i].Write([]byte(plainAuth("app1", "wrong"))); err != nil {
					replies[i] = err.Error()
					return
				}
				l, err := rawReply(readers[i])
				if err != nil {
					l = err.Error()
				}
				replies[i] = l
			}()
		}
		wg.Wait()
		codes := map[string]int{}
		for _, r := range replies {
			codes[r[:min(9, len(r))]]++
		}
		time.Sleep(200 * time.Millisecond) // the log lines of the last answers
		checks := strings.Count(g.p.out.String(), `msg="AUTH failed"`) - failedBefore
		t.Logf("%d parallel wrong AUTH: %d password checks, replies %v", n, checks, codes)
		if checks != 10 || codes["535 5.7.8"] != 9 || codes["421 4.7.0"] != n-9 {
			t.Errorf("%d password checks (want 10, auth_fail_block_after), replies %v", checks, codes)
		}
		c := inbDial(t, hostile, "127.0.0.9", false)
		c.expect("421 4.7.0")
		c.closed()
	})

	t.Run("a byte at a time", func(t *testing.T) {
		// 2s timeouts, a byte every 400 ms and never a line end: cut off
		// after about 2s, in a command line and in message data.
		for _, data := range []bool{false, true} {
			c := inbDial(t, hostile, "127.0.0.1", false)
			c.expect("220")
			c.cmd("EHLO raw.inb.test", "250")
			if data {
				c.cmd("MAIL FROM:<slow@inb.test>", "250")
				c.cmd("RCPT TO:<user@far.example>", "250")
				c.cmd("DATA", "354")
			}
			start := time.Now()
			go func() {
				for range 40 {
					time.Sleep(400 * time.Millisecond)
					_ = c.c.SetWriteDeadline(time.Now().Add(time.Second))
					if _, err := c.c.Write([]byte("x")); err != nil {
						return
					}
				}
			}()
			c.expect("421 4.4.2")
			c.closed()
			if d := time.Since(start); d > 6*time.Second {
				t.Errorf("data=%v: closed after %v of trickled bytes, timeouts are 2s", data, d)
			}
		}
	})

	t.Run("AUTH time does not tell names", func(t *testing.T) {
		// An unknown name is answered as slowly as a wrong password for
		// the bcrypt account; each try from its own address, so that the
		// AUTH guard does not slow any of them.
		measure := func(user string, i int) time.Duration {
			c, r, err := rawSession(hostile, fmt.Sprintf("127.0.5.%d", i))
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			start := time.Now()
			if _, err := c.Write([]byte(plainAuth(user, "wrong"))); err != nil {
				t.Fatal(err)
			}
			if l, err := rawReply(r); err != nil || !strings.HasPrefix(l, "535") {
				t.Fatalf("AUTH %s: %q %v", user, l, err)
			}
			return time.Since(start)
		}
		var unknown, wrong []time.Duration
		for i := range 9 {
			unknown = append(unknown, measure("nobody", 2*i+1))
			wrong = append(wrong, measure("app1", 2*i+2))
		}
		slices.Sort(unknown)
		slices.Sort(wrong)
		mu, mw := unknown[len(unknown)/2], wrong[len(wrong)/2]
		t.Logf("median AUTH answer: unknown name %v, wrong password %v", mu, mw)
		if mu < mw/2 {
			t.Errorf("unknown name answered in %v, wrong password in %v: the time tells which names exist", mu, mw)
		}
	})

	t.Run("default limits", func(t *testing.T) {
		// max_connections_per_ip defaults to 50: the 51st connection from
		// one address is refused.
		for range 50 {
			inbDial(t, defaults, "127.0.0.1", false).expect("220") // closed at cleanup
		}
		c := inbDial(t, defaults, "127.0.0.1", false)
		c.expect("421 4.3.2")
		c.closed()
		// session_timeout = "4s" ends a session that keeps sending whole
		// commands in time.
		s := inbDial(t, defaults, "127.0.0.2", false)
		s.expect("220")
		start := time.Now()
		for time.Since(start) < 10*time.Second {
			time.Sleep(500 * time.Millisecond)
			s.send("NOOP\r\n")
			if last, _ := s.reply(); strings.HasPrefix(last, "421 4.4.2") {
				if d := time.Since(start); d < 3*time.Second {
					t.Errorf("session ended after %v, session_timeout is 4s", d)
				}
				s.closed()
				return
			}
		}
		t.Error("the session outlived session_timeout")
	})
}
