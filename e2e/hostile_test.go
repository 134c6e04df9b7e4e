package e2e

// Hostile clients against bin/gannet (issue #15): each probe an attacker
// would try, run against the real process on loopback, with the bound that
// must hold asserted from outside — the replies, when the server hangs up,
// what arrives at the receiver, and the process's resident memory
// (/proc/PID/status). Probes that share a config share one gannet.
//
//	TestHostileReplyAmplification  wrong AUTH + 4 MiB of pipelined EHLO, replies never read
//	TestHostileSMTPGuards          AUTH lockout race, user enumeration by timing,
//	                               slowloris in a command and in DATA, default per-address limit
//	TestHostileSessionTimeout      [[smtp_listener]] session_timeout caps a busy session
//	TestHostileClassics            long lines, 10,000 RCPT, smuggling, STARTTLS injection,
//	                               CRLF in every HTTP field, 1 GiB Content-Length, bad JSON, no key
//
// Every loop is bounded in count and time; the bounds are generous (a shared
// 2-core machine) and the only speed comparison is relative (enumeration).

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
	"golang.org/x/sys/unix"
)

const (
	// hostileRSSBound is how much a probe may grow gannet's resident memory.
	hostileRSSBound = 64 << 20
	// hostileRSSKill is where a probe stops a gannet whose memory runs away,
	// so that a regression cannot exhaust the shared machine.
	hostileRSSKill = 256 << 20
	// hostileUser and hostilePass are the AUTH account of the probes.
	hostileUser = "app1"
	hostilePass = "right-password"
)

// hostileHash is a bcrypt hash of hostilePass at bcrypt's default cost, so
// that a password check takes tens of milliseconds.
func hostileHash(t *testing.T) string {
	t.Helper()
	h, err := bcrypt.GenerateFromPassword([]byte(hostilePass), bcrypt.DefaultCost)
	if err != nil {
		t.Fatal(err)
	}
	return string(h)
}

// hostileStart fills the {{NAME}} placeholders of cfg (DEAD: a loopback port
// nothing listens on, for relay_to) and starts gannet, waiting for the
// greeting on the listener named by greet.
func hostileStart(t *testing.T, cfg string, addrs map[string]string, greet string) *inbGannet {
	t.Helper()
	pairs := []string{"{{DEAD}}", hostPort("127.0.0.1", freePort(t, false, "127.0.0.1"))}
	for k, v := range addrs {
		pairs = append(pairs, "{{"+k+"}}", v)
	}
	return inbStartGannet(t, t.TempDir(), strings.NewReplacer(pairs...).Replace(cfg), addrs[greet])
}

// freeAddr is a free TCP address on 127.0.0.1.
func freeAddr(t *testing.T) string { return hostPort("127.0.0.1", freePort(t, false, "127.0.0.1")) }

// rssWatch samples a process's resident memory every 50 ms and keeps the
// peak growth over what it was when the watch began.
type rssWatch struct {
	base      int64
	peak      atomic.Int64
	stop      chan struct{}
	done      chan struct{}
	closeOnce sync.Once
}

// watchRSS starts watching p. When the growth passes killAt, kill runs once
// (nil: nothing).
func watchRSS(t *testing.T, p *proc, killAt int64, kill func(growth int64)) *rssWatch {
	t.Helper()
	base, err := p.rss()
	if err != nil {
		t.Fatalf("RSS of %s: %v", p.name, err)
	}
	w := &rssWatch{base: base, stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-w.stop:
				return
			case <-tick.C:
			}
			rss, err := p.rss()
			if err != nil {
				return // the process has ended
			}
			if g := rss - base; g > w.peak.Load() {
				w.peak.Store(g)
				if kill != nil && g > killAt {
					kill(g)
					kill = nil
				}
			}
		}
	}()
	t.Cleanup(func() { w.end() })
	return w
}

// end stops the watch and returns the peak growth in bytes.
func (w *rssWatch) end() int64 {
	w.closeOnce.Do(func() { close(w.stop) })
	<-w.done
	return w.peak.Load()
}

func mib(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }

// tcpState is the kernel's state of the connection (1: established).
func tcpState(c *net.TCPConn) (uint8, error) {
	rc, err := c.SyscallConn()
	if err != nil {
		return 0, err
	}
	var info *unix.TCPInfo
	var ierr error
	if err := rc.Control(func(fd uintptr) {
		info, ierr = unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO)
	}); err != nil {
		return 0, err
	}
	if ierr != nil {
		return 0, ierr
	}
	return info.State, nil
}

const tcpEstablished = 1

// closedByPeer waits until the server has closed c, without reading from it
// (a client that never reads its replies), until deadline: a reset or a FIN
// shows in the kernel's TCP state. A close whose FIN waits behind replies
// the client never read cannot show there; so at the deadline the replies
// are read and thrown away, for at most 3 s, looking for the end.
func closedByPeer(c *net.TCPConn, deadline time.Time) (bool, string) {
	for time.Now().Before(deadline) {
		st, err := tcpState(c)
		if err != nil {
			return true, "TCP_INFO: " + err.Error()
		}
		if st != tcpEstablished {
			return true, fmt.Sprintf("TCP state %d", st)
		}
		time.Sleep(100 * time.Millisecond)
	}
	_ = c.SetReadDeadline(time.Now().Add(3 * time.Second))
	buf := make([]byte, 64<<10)
	n := 0
	for {
		k, err := c.Read(buf)
		n += k
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				return false, fmt.Sprintf("still open; read %d bytes of replies in 3s", n)
			}
			return true, fmt.Sprintf("after %d bytes of replies: %v", n, err)
		}
	}
}

// hostileUserConfig is the AUTH account of the probes, a bcrypt hash ({{HASH}}).
const hostileUserConfig = `
[[smtp_user]]
name = "` + hostileUser + `"
password_hash = "{{HASH}}"
`

// hostileListener is an [[smtp_listener]] table named name that listens on
// {{NAME}} and relays for 127.0.0.1 only, with the keys in extra.
func hostileListener(name, extra string) string {
	return fmt.Sprintf("\n[[smtp_listener]]\nname = %q\nlisten = \"{{%s}}\"\nhostname = \"%s.hostile.test\"\nrelay_hosts = [\"127.0.0.1/32\"]\n%s",
		name, strings.ToUpper(name), name, extra)
}

// hostilePlainAuth offers AUTH PLAIN without TLS.
const hostilePlainAuth = "auth_mechanisms = [\"PLAIN\"]\nauth_require_tls = false\n"

// hostileTimeouts sets a listener's three timeouts to d.
func hostileTimeouts(d string) string {
	return fmt.Sprintf("command_timeout = %q\ndata_timeout = %q\nidle_timeout = %q\n", d, d, d)
}

// ---------------------------------------------------------------------------
// Probe 1: reply amplification.

var hostileAmpConfig = "# gannet hostile e2e: reply amplification (generated)\n" + inbDeadRelayConfig +
	hostileListener("amp", hostilePlainAuth+hostileTimeouts("5s")) + hostileUserConfig

// TestHostileReplyAmplification: 16 clients outside relay_hosts (each from
// its own address, so the AUTH guard stays out of it) send EHLO and a wrong
// AUTH PLAIN followed at once by 4 MiB of pipelined "EHLO a" (about 500,000 commands,
// each worth a 200-byte reply) and never read a reply. The password is a
// bcrypt hash, so the EHLOs pile up while it is checked. Bound: gannet's RSS
// grows less than 64 MiB, the server closes every such client, and gannet
// then still takes mail from a normal client.
func TestHostileReplyAmplification(t *testing.T) {
	t.Parallel()
	addr := freeAddr(t)
	g := hostileStart(t, hostileAmpConfig, map[string]string{"AMP": addr, "HASH": hostileHash(t)}, "AMP")

	const clients = 16
	payload := "EHLO amp.hostile.test\r\n" + authPlainLine(hostileUser, "wrong") + strings.Repeat("EHLO a\r\n", 4<<20/8)
	var killed atomic.Int64
	w := watchRSS(t, g.p, hostileRSSKill, func(growth int64) {
		killed.Store(growth)
		g.p.kill9()
	})
	type outcome struct {
		written       int
		writeErr, how string
		closed        bool
	}
	res := make([]outcome, clients)
	start := time.Now()
	var wg sync.WaitGroup
	for i := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			o := &res[i]
			d := net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(fmt.Sprintf("127.0.1.%d", i+1))}}
			nc, err := d.Dial("tcp", addr)
			if err != nil {
				o.writeErr = "dial: " + err.Error()
				return
			}
			defer nc.Close()
			c := nc.(*net.TCPConn)
			// A server that stops reading makes the writes wait: 15 s.
			_ = c.SetWriteDeadline(time.Now().Add(15 * time.Second))
			for o.written < len(payload) {
				n, err := c.Write([]byte(payload[o.written:min(len(payload), o.written+64<<10)]))
				o.written += n
				if err != nil {
					o.writeErr = err.Error()
					var ne net.Error
					if !errors.As(err, &ne) || !ne.Timeout() {
						o.closed, o.how = true, "write: "+err.Error()
						return
					}
					break
				}
			}
			o.closed, o.how = closedByPeer(c, time.Now().Add(20*time.Second))
		}()
	}
	wg.Wait()
	growth := w.end()
	closed := 0
	for _, o := range res {
		if o.closed {
			closed++
		}
	}
	t.Logf("amplification: %d clients for %v; RSS %s at start, peak growth %s; %d clients closed by the server (client 0 wrote %d of %d bytes: %s; %s)",
		clients, time.Since(start).Round(time.Millisecond), mib(w.base), mib(growth), closed, res[0].written, len(payload), cmpOr(res[0].writeErr, "no write error"), res[0].how)
	if k := killed.Load(); k > 0 {
		t.Fatalf("gannet's RSS grew by %s (bound %s): stopped it with SIGKILL", mib(k), mib(hostileRSSBound))
	}
	if growth >= hostileRSSBound {
		t.Errorf("gannet's RSS grew by %s, bound %s", mib(growth), mib(hostileRSSBound))
	}
	for i, o := range res {
		if !o.closed {
			t.Errorf("client %d never reads its replies and was not closed by the server: wrote %d of %d bytes (%s); %s",
				i, o.written, len(payload), cmpOr(o.writeErr, "no write error"), o.how)
		}
	}
	g.alive(t, addr)
	c := inbDial(t, addr, "127.0.0.1", false)
	c.expect("220")
	c.cmd("EHLO normal.hostile.test", "250")
	hostileSendTo(c, "after-amplification@far.example")
	c.cmd("QUIT", "221")
}

// ---------------------------------------------------------------------------
// Probes 2 and 3: the AUTH guard, timing and slow clients.

var hostileGuardConfig = "# gannet hostile e2e: AUTH guard and slow clients (generated)\n" + inbDeadRelayConfig +
	// The lockout race: 10 failures block an address, no delay before that.
	hostileListener("auth", hostilePlainAuth+`max_connections_per_ip = 1000
auth_fail_delay_after = 0
auth_fail_block_after = 10
auth_fail_window = "5m"
`) +
	// Timing: the guard is off, so that 30 failures are all answered alike.
	hostileListener("timing", hostilePlainAuth+"auth_fail_delay_after = 0\nauth_fail_block_after = 0\n") +
	// Slow clients: 3 s timeouts and no max_connections_per_ip (the default).
	hostileListener("slow", hostileTimeouts("3s")) + hostileUserConfig

// TestHostileSMTPGuards runs one gannet with three listeners: "auth" (AUTH
// guard blocking after 10 failures), "timing" (guard off) and "slow" (3 s
// timeouts, default connection limits). The slow-client probes run first
// (side by side), then the AUTH lockout race, then the AUTH timing probe.
func TestHostileSMTPGuards(t *testing.T) {
	t.Parallel()
	addrs := map[string]string{"AUTH": freeAddr(t), "TIMING": freeAddr(t), "SLOW": freeAddr(t), "HASH": hostileHash(t)}
	g := hostileStart(t, hostileGuardConfig, addrs, "AUTH")

	t.Run("slow clients", func(t *testing.T) {
		t.Run("slowloris", func(t *testing.T) {
			t.Parallel()
			// Two slow clients at once: one inside a command line (after
			// EHLO), one inside a DATA body. Each starts dripping as soon as
			// it is in place.
			var inCmd, inData dripEnd
			var wg sync.WaitGroup
			wg.Add(2)
			cmd := inbDial(t, addrs["SLOW"], "127.0.0.1", false)
			cmd.expect("220")
			cmd.cmd("EHLO slow.hostile.test", "250")
			go func() { defer wg.Done(); inCmd = hostileDrip(cmd, "NOOP slowloris never ends this line") }()
			data := inbDial(t, addrs["SLOW"], "127.0.0.1", false)
			data.expect("220")
			data.cmd("EHLO slow.hostile.test", "250")
			data.cmd("MAIL FROM:<app@hostile.test>", "250")
			data.cmd("RCPT TO:<slow-data@far.example>", "250")
			data.cmd("DATA", "354")
			go func() { defer wg.Done(); inData = hostileDrip(data, "Subject: slowloris never ends this line") }()
			wg.Wait()
			inCmd.check(t, "in a command")
			inData.check(t, "in DATA")
		})
		t.Run("default connection limit per address", func(t *testing.T) {
			t.Parallel()
			// No max_connections_per_ip in the config: the default is 50.
			for i := range 50 {
				c := inbDial(t, addrs["SLOW"], "127.0.0.31", false)
				if last, all := c.reply(); !strings.HasPrefix(last, "220") {
					t.Fatalf("connection %d from 127.0.0.31: %q", i+1, all)
				}
			}
			c := inbDial(t, addrs["SLOW"], "127.0.0.31", false)
			if last, all := c.reply(); !strings.HasPrefix(last, "421 4.3.2") {
				t.Errorf("51st connection from one address: %q, want 421 4.3.2", all)
			} else {
				c.closed()
			}
			// Another address is not affected.
			o := inbDial(t, addrs["SLOW"], "127.0.0.32", false)
			o.expect("220")
			o.cmd("QUIT", "221")
		})
	})
	// The AUTH probes come after the slow clients: a server that checks
	// every password of the race keeps both cores busy for a while, which
	// would starve the slow clients' probes.
	t.Run("AUTH", func(t *testing.T) {
		// The timing probe runs after the race, so that the race's
		// password checks do not land in its samples.
		hostileLockoutRace(t, g, addrs["AUTH"])
		hostileEnumerationTiming(t, addrs["TIMING"])
	})
	t.Cleanup(func() { g.alive(t, addrs["AUTH"]) })
}

// hostileLockoutRace: 201 connections from one address outside relay_hosts
// each send one AUTH at about the same time — 15 wrong passwords, then the
// right one, then 185 wrong ones — to a listener that blocks an address
// after 10 failures. Bound: the right password is refused (it comes after
// more than 10 attempts), at most 10 attempts are answered 535 (checked and
// failed), every other one gets 421 4.7.0, and the address is then refused
// at connect.
func hostileLockoutRace(t *testing.T, g *inbGannet, addr string) {
	const n, right = 201, 15
	const ip = "127.0.0.21"
	conns := make([]*inbConn, n)
	for i := range conns {
		c := inbDial(t, addr, ip, false)
		c.expect("220")
		c.cmd("EHLO race.hostile.test", "250")
		conns[i] = c
	}
	wrong := authPlainLine(hostileUser, "wrong-password")
	start := time.Now()
	for i := range right {
		conns[i].send(wrong)
	}
	// The right password comes once the wrong ones have blocked the
	// address: the block must hold for it. (Sent while the wrong ones still
	// wait for their checks, it may be among the first ten checked — the
	// waiting checks are woken together and take the free slots in any
	// order — and then it is rightly accepted.) The race itself is the 185
	// wrong ones sent behind it: at most ten checks in all.
	waitFor(t, 60*time.Second, "the address blocked after ten failed checks", func() (bool, string) {
		return strings.Count(g.p.out.String(), `msg="AUTH failed"`) >= 10, g.p.out.String()
	})
	conns[right].send(authPlainLine(hostileUser, hostilePass))
	for _, c := range conns[right+1:] {
		c.send(wrong)
	}
	counts := map[string]int{}
	var rightReply string
	// A server that checks every password runs 200 bcrypt checks on two
	// shared cores: allow two minutes for all the answers to start (reply
	// allows 15 s for each).
	answersBy := time.Now().Add(2 * time.Minute)
	for i, c := range conns {
		_ = c.c.SetReadDeadline(answersBy)
		_, _ = c.r.Peek(1)
		last, all := c.reply()
		if i == right {
			rightReply = all
			continue
		}
		k := replyKind(last, "535 5.7.8", "421 4.7.0")
		counts[k]++
		if k == last {
			t.Errorf("wrong password %d: %q, want 535 5.7.8 or 421 4.7.0", i, all)
		}
	}
	checks := strings.Count(g.p.out.String(), `msg="AUTH failed"`)
	t.Logf("lockout race: %d wrong passwords answered in %v: %d × 535, %d × 421 4.7.0, %d other; the right password (attempt %d): %q; \"AUTH failed\" lines in gannet's log (failed password checks): %d",
		n-1, time.Since(start).Round(time.Millisecond), counts["535 5.7.8"], counts["421 4.7.0"], n-1-counts["535 5.7.8"]-counts["421 4.7.0"], right+1, rightReply, checks)
	if !strings.HasPrefix(rightReply, "421 4.7.0") {
		t.Errorf("the right password, sent after %d wrong ones blocked the address (auth_fail_block_after = 10), got %q: want 421 4.7.0 (the block must hold)", right, rightReply)
	}
	// Every failed password check is logged "AUTH failed": the count is the
	// number of checks the race got, whatever the answers said.
	if checks > 10 {
		t.Errorf("%d password checks for one address, want at most auth_fail_block_after = 10", checks)
	}
	if counts["535 5.7.8"] > 10 {
		t.Errorf("%d wrong passwords were answered 535 (checked), want at most auth_fail_block_after = 10", counts["535 5.7.8"])
	}
	c := inbDial(t, addr, ip, false)
	c.expect("421 4.7.0")
	c.closed()
}

// hostileEnumerationTiming: 15 AUTHs with an unknown user and 15 with the
// known (bcrypt) user and a wrong password, alternating, each on a fresh
// connection. Bound: the unknown user's median answer time is at least half
// the known user's, so that timing does not tell which users exist.
func hostileEnumerationTiming(t *testing.T, addr string) {
	const rounds = 15
	var unknown, known []time.Duration
	try := func(user string) time.Duration {
		c := inbDial(t, addr, "127.0.0.22", false)
		c.expect("220")
		c.cmd("EHLO timing.hostile.test", "250")
		start := time.Now()
		last := c.authPlain(user, "wrong-password")
		d := time.Since(start)
		if !strings.HasPrefix(last, "535 5.7.8") {
			t.Fatalf("AUTH as %q: %q, want 535 5.7.8", user, last)
		}
		c.raw.Close()
		return d
	}
	for i := range rounds {
		if i%2 == 0 {
			unknown = append(unknown, try("nobody-"+fmt.Sprint(i)))
			known = append(known, try(hostileUser))
		} else {
			known = append(known, try(hostileUser))
			unknown = append(unknown, try("nobody-"+fmt.Sprint(i)))
		}
	}
	mu, mk := median(unknown), median(known)
	t.Logf("AUTH answer times: unknown user median %v, known user (bcrypt, wrong password) median %v", mu, mk)
	if mu*2 < mk {
		t.Errorf("an unknown user is answered in %v (median), a known one in %v: the difference tells which users exist (want unknown ≥ 0.5 × known)", mu, mk)
	}
}

// replyKind is the first of prefixes that reply starts with, or reply.
func replyKind(reply string, prefixes ...string) string {
	for _, p := range prefixes {
		if strings.HasPrefix(reply, p) {
			return p
		}
	}
	return reply
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}

// dripEnd is how a slow client's connection ended.
type dripEnd struct {
	sent  int           // bytes sent
	after time.Duration // from the first byte to the end
	lines []string      // what the server said meanwhile
	err   error         // the read error that ended it (a timeout: still open)
}

const (
	dripWithin = 8 * time.Second  // bound: closed by then (timeouts are 3 s)
	dripLimit  = 20 * time.Second // the probe gives up then
)

// hostileDrip sends drip one byte every 1.5 s (the first at once), never a
// line end, until the server closes c or dripLimit passes. It makes no test
// calls (it runs on its own goroutine).
func hostileDrip(c *inbConn, drip string) dripEnd {
	start := time.Now()
	ended := make(chan dripEnd, 1)
	go func() {
		_ = c.c.SetReadDeadline(start.Add(dripLimit))
		var e dripEnd
		for {
			l, err := c.r.ReadString('\n')
			if l != "" {
				e.lines = append(e.lines, strings.TrimRight(l, "\r\n"))
			}
			if err != nil {
				e.after, e.err = time.Since(start), err
				ended <- e
				return
			}
		}
	}()
	sent := 0
	for {
		if sent < len(drip) {
			_ = c.c.SetWriteDeadline(time.Now().Add(time.Second))
			if n, _ := c.c.Write([]byte{drip[sent]}); n == 1 { // fails once the server has closed
				sent++
			}
		}
		select {
		case e := <-ended:
			e.sent = sent
			return e
		case <-time.After(1500 * time.Millisecond):
		}
	}
}

// check asserts the bound: 421 4.4.2 and closed within dripWithin.
func (e dripEnd) check(t *testing.T, where string) {
	t.Helper()
	var ne net.Error
	if errors.As(e.err, &ne) && ne.Timeout() {
		t.Errorf("slowloris %s: a client sending a byte every 1.5 s was still connected after %v (got %q); want 421 4.4.2 and close within %v", where, dripLimit, e.lines, dripWithin)
		return
	}
	t.Logf("slowloris %s: closed after %v and %d bytes with %q (%v)", where, e.after.Round(time.Millisecond), e.sent, e.lines, e.err)
	if e.sent < 2 {
		t.Errorf("slowloris %s: closed after %d bytes, before the slow client could hold it: the probe proves nothing", where, e.sent)
	}
	if e.after > dripWithin {
		t.Errorf("slowloris %s: closed after %v, want within %v", where, e.after.Round(time.Millisecond), dripWithin)
	}
	if len(e.lines) == 0 || !strings.HasPrefix(e.lines[len(e.lines)-1], "421 4.4.2") {
		t.Errorf("slowloris %s: last reply %q, want 421 4.4.2", where, e.lines)
	}
}

// ---------------------------------------------------------------------------
// Probe 3, continued: session_timeout.

var hostileSessionConfig = "# gannet hostile e2e: session_timeout (generated)\n" + inbDeadRelayConfig +
	hostileListener("session", `session_timeout = "5s"`+"\n")

// TestHostileSessionTimeout: a client that completes a NOOP every second
// never trips a per-command timeout; session_timeout = "5s" on the listener
// caps the whole session. Bound: 421 4.4.2 and close between 4 s and 10 s
// after connecting.
func TestHostileSessionTimeout(t *testing.T) {
	t.Parallel()
	addr := freeAddr(t)
	g := hostileStart(t, hostileSessionConfig, map[string]string{"SESSION": addr}, "SESSION")
	start := time.Now()
	c := inbDial(t, addr, "127.0.0.1", false)
	c.expect("220")
	c.cmd("EHLO busy.hostile.test", "250")
	var last string
	for i := 0; i < 20; i++ {
		time.Sleep(time.Second)
		_ = c.c.SetWriteDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.c.Write([]byte("NOOP\r\n")); err != nil {
			break
		}
		_ = c.c.SetReadDeadline(time.Now().Add(5 * time.Second))
		l, err := c.r.ReadString('\n')
		if err != nil {
			break
		}
		last = strings.TrimRight(l, "\r\n")
		if !strings.HasPrefix(last, "250") {
			break
		}
	}
	d := time.Since(start)
	t.Logf("busy session ended after %v with %q", d.Round(time.Millisecond), last)
	if !strings.HasPrefix(last, "421 4.4.2") {
		t.Errorf("busy session: last reply %q after %v, want 421 4.4.2 after session_timeout = 5s", last, d.Round(time.Millisecond))
	} else {
		c.closed()
	}
	if d < 4*time.Second || d > 10*time.Second {
		t.Errorf("busy session ended after %v, want about 5s (4s to 10s)", d.Round(time.Millisecond))
	}
	g.alive(t, addr)
}

// ---------------------------------------------------------------------------
// Classic probes (they passed before issue #15; they must keep passing).

// TestHostileClassics runs one gannet (the harness config: max_recipients
// 1000, STARTTLS with a generated certificate, HTTP trusting 127.0.0.1 only,
// the admin tests' API keys) delivering d1.test to bin/smtpsink.
func TestHostileClassics(t *testing.T) {
	t.Parallel()
	w := newRelayWorld(t)
	sink := startGoSink(t, hostPort(mxIP1, w.port))
	g := w.gannet(t, gannetConfig{Extra: adminExtra})

	t.Run("long command lines", func(t *testing.T) {
		t.Parallel()
		// smtpwire.MaxCommandLine is 2048 octets (RFC 5321's 512 is too
		// tight for real clients); past it: 500 5.5.2, the session goes on.
		c := inbDial(t, g.SMTPAddr, "127.0.0.1", false)
		c.expect("220")
		c.cmd("EHLO long.hostile.test", "250")
		for _, n := range []int{2100, 64 << 10, 1 << 20} {
			c.cmd("NOOP "+strings.Repeat("x", n), "500 5.5.2")
			c.cmd("NOOP", "250")
		}
		c.cmd("MAIL FROM:<"+strings.Repeat("m", 3000)+"@src.test>", "500 5.5.2")
		c.cmd("MAIL FROM:<"+senderAddr+">", "250")
		c.cmd("RCPT TO:<"+strings.Repeat("r", 3000)+"@d1.test>", "500 5.5.2")
		c.cmd("RCPT TO:<long-cmd@d1.test>", "250")
		c.cmd("DATA", "354")
		msg := simpleMessage(senderAddr, "long-cmd@d1.test", "after long commands", "still here\n")
		c.send(string(msg) + ".\r\n")
		c.expect("250 2.0.0")
		c.cmd("QUIT", "221")
		assertRelayedExactly(t, "after long commands", hostileArrival(t, sink, "long-cmd@d1.test").Data, msg)
	})

	t.Run("long data lines", func(t *testing.T) {
		t.Parallel()
		// There is no DATA line limit (smtpwire.DotDecoder): lines of 999,
		// 1001, 5000 and 100,000 octets are taken and relayed unchanged.
		var body strings.Builder
		for _, n := range []int{999, 1001, 5000, 100000} {
			body.WriteString(strings.Repeat(string(rune('a'+n%26)), n) + "\n")
		}
		msg := simpleMessage(senderAddr, "long-data@d1.test", "long data lines", body.String())
		c := inbDial(t, g.SMTPAddr, "127.0.0.1", false)
		c.expect("220")
		c.cmd("EHLO long.hostile.test", "250")
		hostileSend(c, "long-data@d1.test", msg)
		c.cmd("NOOP", "250")
		c.cmd("QUIT", "221")
		assertRelayedExactly(t, "long data lines", hostileArrival(t, sink, "long-data@d1.test").Data, msg)
	})

	t.Run("10000 RCPT", func(t *testing.T) {
		t.Parallel()
		rss := watchRSS(t, g.p, 0, nil)
		c := inbDial(t, g.SMTPAddr, "127.0.0.1", false)
		c.expect("220")
		c.cmd("EHLO many.hostile.test", "250")
		c.cmd("MAIL FROM:<"+senderAddr+">", "250")
		const n = 10000
		// Written while the replies are read: a server that stops reading
		// while its replies wait must not deadlock the probe.
		werr := make(chan error, 1)
		go func() {
			var b strings.Builder
			for i := range n {
				fmt.Fprintf(&b, "RCPT TO:<many-%d@d1.test>\r\n", i)
			}
			_ = c.c.SetWriteDeadline(time.Now().Add(60 * time.Second))
			_, err := c.c.Write([]byte(b.String()))
			werr <- err
		}()
		counts := map[string]int{}
		for range n {
			last, _ := c.reply()
			counts[replyKind(last, "250", "452 4.5.3")]++
		}
		if err := <-werr; err != nil {
			t.Fatalf("writing %d RCPT: %v", n, err)
		}
		if counts["250"] != 1000 || counts["452 4.5.3"] != n-1000 || len(counts) != 2 {
			t.Errorf("%d RCPT with max_recipients = 1000: replies %v, want 1000 × 250 and %d × 452 4.5.3", n, counts, n-1000)
		}
		c.cmd("NOOP", "250")
		c.cmd("RSET", "250")
		hostileSendTo(c, "after-many@d1.test")
		c.cmd("QUIT", "221")
		growth := rss.end()
		t.Logf("10000 RCPT: RSS grew by %s", mib(growth))
		if growth >= hostileRSSBound {
			t.Errorf("10000 RCPT: gannet's RSS grew by %s, bound %s", mib(growth), mib(hostileRSSBound))
		}
		hostileArrival(t, sink, "after-many@d1.test")
	})

	t.Run("smuggling", func(t *testing.T) {
		t.Parallel()
		// Only CRLF.CRLF ends DATA: each variant below is content, the
		// smuggled transaction behind it is message text, and the one
		// message arrives with it (bare CR and LF normalized to CRLF).
		variants := []struct{ name, sep string }{
			{"LF.LF", "\n.\n"}, {"CR.CR", "\r.\r"}, {"LF.CRLF", "\n.\r\n"},
			{"CRLF.LF", "\r\n.\n"}, {"CR.CRLF", "\r.\r\n"},
		}
		c := inbDial(t, g.SMTPAddr, "127.0.0.1", false)
		c.expect("220")
		c.cmd("EHLO smuggle.hostile.test", "250")
		sent := map[string][]byte{}
		for i, v := range variants {
			carrier := fmt.Sprintf("carrier-%d@d1.test", i)
			smuggled := fmt.Sprintf("smuggled-%d@d1.test", i)
			msg := append(simpleMessage(senderAddr, carrier, "smuggle "+v.name, "before"),
				v.sep+"MAIL FROM:<evil@src.test>\r\nRCPT TO:<"+smuggled+">\r\nDATA\r\nSubject: smuggled\r\n\r\nevil\r\n"...)
			hostileSend(c, carrier, msg)
			c.cmd("NOOP", "250 2.0.0") // no reply to a smuggled command is queued
			sent[carrier] = msg
		}
		c.cmd("QUIT", "221")
		for i, v := range variants {
			carrier := fmt.Sprintf("carrier-%d@d1.test", i)
			a := hostileArrival(t, sink, carrier)
			assertRelayedExactly(t, "smuggling "+v.name, a.Data, normalizeLineEnds(sent[carrier]))
		}
		time.Sleep(settleTime)
		for _, a := range sink.arrivals(t) {
			for _, r := range a.Rcpts {
				if strings.HasPrefix(r, "smuggled-") {
					t.Errorf("a smuggled message arrived on its own: %v", a.Rcpts)
				}
			}
		}
		for _, r := range g.Records() {
			for _, rcpt := range r.Recipients() {
				if strings.HasPrefix(rcpt, "smuggled-") {
					t.Errorf("a smuggled message was stored: %s", r.Raw)
				}
			}
		}
	})

	t.Run("STARTTLS injection", func(t *testing.T) {
		t.Parallel()
		// A whole transaction pipelined behind STARTTLS, in the same
		// packet: discarded (RFC 3207 §4.2, CVE-2011-0411).
		c := inbDial(t, g.SMTPAddr, "127.0.0.1", false)
		c.expect("220")
		c.cmd("EHLO tls.hostile.test", "250")
		c.send("STARTTLS\r\nMAIL FROM:<evil@src.test>\r\nRCPT TO:<injected@d1.test>\r\nDATA\r\n" +
			string(simpleMessage("evil@src.test", "injected@d1.test", "injected", "evil\n")) + ".\r\n")
		c.expect("220 2.0.0")
		c.handshake(&tls.Config{InsecureSkipVerify: true})
		c.cmd("EHLO tls.hostile.test", "250")
		c.cmd("RCPT TO:<injected@d1.test>", "503 5.5.1") // no MAIL survived
		c.cmd("DATA", "503 5.5.1")
		hostileSendTo(c, "after-starttls@d1.test")
		c.cmd("QUIT", "221")
		hostileArrival(t, sink, "after-starttls@d1.test")
		for _, r := range g.Records() {
			if r.HasRecipient("injected@d1.test") {
				t.Errorf("the command injected before the TLS handshake was executed: %s", r.Raw)
			}
		}
	})

	t.Run("HTTP CRLF injection", func(t *testing.T) {
		t.Parallel()
		hostileHTTPInjection(t, g, sink)
	})

	t.Run("HTTP 1 GiB Content-Length", func(t *testing.T) {
		t.Parallel()
		rss := watchRSS(t, g.p, 0, nil)
		for _, path := range []string{"/v1/message", "/api/inject/v1"} {
			status, body := hostileRawHTTP(t, g.HTTPAddr, "POST "+path+" HTTP/1.1\r\nHost: relay.e2e.test\r\n"+
				"Content-Type: application/json\r\nContent-Length: 1073741824\r\n\r\n{\"from\": \"app@src.test\"")
			curlResult{status: status, body: body}.want(t, path+" with Content-Length: 1073741824", 413)
		}
		time.Sleep(500 * time.Millisecond) // let an allocation show in RSS
		growth := rss.end()
		t.Logf("1 GiB Content-Length: RSS grew by %s", mib(growth))
		if growth >= hostileRSSBound {
			t.Errorf("1 GiB Content-Length: gannet's RSS grew by %s, bound %s", mib(growth), mib(hostileRSSBound))
		}
	})

	t.Run("HTTP bad JSON and keys", func(t *testing.T) {
		t.Parallel()
		for _, path := range []string{"/v1/message", "/api/inject/v1"} {
			adminCurl(t, g, "POST", path, `{"from": "app@src.test", "to": [`).want(t, "bad JSON to "+path, 400)
			adminCurl(t, g, "POST", path, `["not", "an", "object"]`).want(t, "a JSON array to "+path, 400)
		}
		req := `{"from":"app@src.test","to":["keyed@d1.test"],"subject":"keyed","text":"x\n","tenant":"acme"}`
		from2 := []string{"--interface", "127.0.0.2"} // outside trusted_hosts (127.0.0.1/32)
		adminCurl(t, g, "POST", "/v1/message", req, from2...).want(t, "no key from 127.0.0.2", 401)
		adminCurl(t, g, "GET", "/api/admin/queue-summary/v1", "", from2...).want(t, "admin, no key from 127.0.0.2", 401)
		adminCurl(t, g, "POST", "/v1/message", req, append(from2, "-H", "Authorization: Bearer wrong-key")...).want(t, "wrong key from 127.0.0.2", 401)
		adminCurl(t, g, "POST", "/v1/message", req, append(from2, "-H", "Authorization: Bearer "+acmeKey)...).want(t, "right key from 127.0.0.2", 202)
		hostileArrival(t, sink, "keyed@d1.test")
	})

	t.Cleanup(func() {
		if g.p.exited() {
			t.Errorf("gannet exited: %v", g.p.err)
		} else if line, err := readBanner(g.SMTPAddr); err != nil || !strings.HasPrefix(line, "220") {
			t.Errorf("gannet does not greet after the probes: %q %v", line, err)
		}
	})
}

// hostileSend runs one transaction from senderAddr to rcpt on c with msg
// (CRLF lines, sent as it is) and checks the 250 to the final dot.
func hostileSend(c *inbConn, rcpt string, msg []byte) {
	c.t.Helper()
	c.cmd("MAIL FROM:<"+senderAddr+">", "250")
	c.cmd("RCPT TO:<"+rcpt+">", "250")
	c.cmd("DATA", "354")
	c.send(string(msg) + ".\r\n")
	c.expect("250 2.0.0")
}

// hostileSendTo sends one small message from senderAddr to rcpt on c.
func hostileSendTo(c *inbConn, rcpt string) {
	c.t.Helper()
	hostileSend(c, rcpt, simpleMessage(senderAddr, rcpt, "hostile "+rcpt, "x\n"))
}

// hostileArrival waits for the one transaction at r that names rcpt.
func hostileArrival(t *testing.T, r receiver, rcpt string) arrival {
	t.Helper()
	var a *arrival
	waitFor(t, deliveryMax, rcpt+" at "+r.addr(), func() (bool, string) {
		a = findArrival(r.arrivals(t), rcpt)
		return a != nil, ""
	})
	return *a
}

// normalizeLineEnds turns bare CR and bare LF into CRLF, as the listener's
// bare_lf = "normalize" does.
func normalizeLineEnds(b []byte) []byte {
	var out []byte
	for i := 0; i < len(b); i++ {
		switch {
		case b[i] == '\r' && i+1 < len(b) && b[i+1] == '\n':
			out = append(out, '\r', '\n')
			i++
		case b[i] == '\r' || b[i] == '\n':
			out = append(out, '\r', '\n')
		default:
			out = append(out, b[i])
		}
	}
	return out
}

// hostileRawHTTP sends req as it is from 127.0.0.1 and reads the answer
// (10 s at most); it returns the status and the body.
func hostileRawHTTP(t *testing.T, addr, req string) (int, string) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Write([]byte(req)); err != nil {
		t.Fatalf("write: %v", err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("no HTTP answer within 10s: %v", err)
	}
	defer resp.Body.Close()
	var body bytes.Buffer
	_, _ = body.ReadFrom(resp.Body)
	return resp.StatusCode, body.String()
}

// evilHeader finds a header line the probes tried to inject.
var evilHeader = regexp.MustCompile(`(?im)^X-Evil`)

// hostileHTTPInjection puts CR LF (and a bare LF) with a header behind it
// into every field of POST /v1/message and POST /api/inject/v1. Bound: the
// request is refused with 400 or 422 and a JSON error, or the message is
// taken and arrives with no injected header line anywhere in it.
func hostileHTTPInjection(t *testing.T, g *gannet, sink receiver) {
	type httpCase struct {
		name, path string
		req        map[string]any
	}
	simple := func(tag string) map[string]any {
		return map[string]any{
			"from": "App <app@src.test>", "to": []string{tag + "@d1.test"}, "subject": "simple " + tag,
			"text": "body\n", "headers": map[string]string{"X-Ok": "fine"}, "tenant": "acme", "campaign": "spring",
			"attachments": []map[string]string{{"filename": "a.txt", "content_type": "text/plain", "content": "aGVsbG8=", "content_id": "part1"}},
		}
	}
	kumo := func(tag string) map[string]any {
		return map[string]any{
			"envelope_sender": "app@src.test",
			"recipients": []map[string]any{{"email": tag + "@d1.test", "name": "Rcpt",
				"substitutions": map[string]any{"who": "you"}}},
			"content": map[string]any{
				"from": map[string]any{"email": "app@src.test", "name": "App"}, "reply_to": map[string]any{"email": "reply@src.test", "name": "Reply"},
				"subject": "kumo {{ v }}", "text_body": "hello {{ who }}", "headers": map[string]string{"X-Ok": "fine {{ who }}"},
				"attachments": []map[string]any{{"data": "hello", "content_type": "text/plain", "file_name": "a.txt"}},
			},
			"substitutions": map[string]any{"v": "ok"}, "tenant": "acme", "campaign": "spring",
		}
	}
	sub := func(m map[string]any, k string) map[string]any { return m[k].(map[string]any) }
	var cases []httpCase
	for _, nl := range []struct{ name, s string }{{"CRLF", "\r\n"}, {"LF", "\n"}} {
		evil := nl.s + "X-Evil: injected"
		add := func(path, field string, base func(string) map[string]any, set func(m map[string]any)) {
			api := map[string]string{"/v1/message": "v1", "/api/inject/v1": "kumo"}[path]
			tag := strings.ReplaceAll(strings.ToLower("crlf-"+nl.name+"-"+api+"-"+field), " ", "-")
			m := base(tag)
			set(m)
			cases = append(cases, httpCase{nl.name + " " + path + " " + field, path, m})
		}
		const v1, ki = "/v1/message", "/api/inject/v1"
		add(v1, "from", simple, func(m map[string]any) { m["from"] = "app@src.test" + evil })
		add(v1, "from name", simple, func(m map[string]any) { m["from"] = "App" + evil + " <app@src.test>" })
		add(v1, "to", simple, func(m map[string]any) { m["to"] = []string{m["to"].([]string)[0] + evil} })
		add(v1, "cc", simple, func(m map[string]any) { m["cc"] = []string{"cc@d1.test" + evil} })
		add(v1, "bcc", simple, func(m map[string]any) { m["bcc"] = []string{"bcc@d1.test" + evil} })
		add(v1, "subject", simple, func(m map[string]any) { m["subject"] = "s" + evil })
		add(v1, "header name", simple, func(m map[string]any) { m["headers"] = map[string]string{"X-Ok" + evil: "v"} })
		add(v1, "header value", simple, func(m map[string]any) { m["headers"] = map[string]string{"X-Ok": "v" + evil} })
		add(v1, "tenant", simple, func(m map[string]any) { m["tenant"] = "acme" + evil })
		add(v1, "campaign", simple, func(m map[string]any) { m["campaign"] = "spring" + evil })
		for _, f := range []string{"filename", "content_type", "content_id"} {
			add(v1, "attachment "+f, simple, func(m map[string]any) {
				m["attachments"].([]map[string]string)[0][f] += evil
			})
		}
		add(ki, "envelope_sender", kumo, func(m map[string]any) { m["envelope_sender"] = "app@src.test" + evil })
		add(ki, "recipient email", kumo, func(m map[string]any) {
			r := m["recipients"].([]map[string]any)[0]
			r["email"] = r["email"].(string) + evil
		})
		add(ki, "recipient name", kumo, func(m map[string]any) { m["recipients"].([]map[string]any)[0]["name"] = "R" + evil })
		add(ki, "recipient substitution", kumo, func(m map[string]any) {
			m["recipients"].([]map[string]any)[0]["substitutions"] = map[string]any{"who": "you" + evil}
		})
		add(ki, "global substitution", kumo, func(m map[string]any) { m["substitutions"] = map[string]any{"v": "ok" + evil} })
		add(ki, "from email", kumo, func(m map[string]any) { sub(sub(m, "content"), "from")["email"] = "app@src.test" + evil })
		add(ki, "from name", kumo, func(m map[string]any) { sub(sub(m, "content"), "from")["name"] = "App" + evil })
		add(ki, "reply_to email", kumo, func(m map[string]any) { sub(sub(m, "content"), "reply_to")["email"] = "reply@src.test" + evil })
		add(ki, "reply_to name", kumo, func(m map[string]any) { sub(sub(m, "content"), "reply_to")["name"] = "Reply" + evil })
		add(ki, "subject", kumo, func(m map[string]any) { sub(m, "content")["subject"] = "s" + evil })
		add(ki, "header name", kumo, func(m map[string]any) { sub(m, "content")["headers"] = map[string]string{"X-Ok" + evil: "v"} })
		add(ki, "header value", kumo, func(m map[string]any) { sub(m, "content")["headers"] = map[string]string{"X-Ok": "v" + evil} })
		for _, f := range []string{"file_name", "content_type"} {
			add(ki, "attachment "+f, kumo, func(m map[string]any) {
				a := sub(m, "content")["attachments"].([]map[string]any)[0]
				a[f] = a[f].(string) + evil
			})
		}
		add(ki, "tenant", kumo, func(m map[string]any) { m["tenant"] = "acme" + evil })
		add(ki, "campaign", kumo, func(m map[string]any) { m["campaign"] = "spring" + evil })
	}

	// tags of the taken requests: their messages must arrive clean.
	taken := map[string]string{}
	refused := map[int]int{}
	for _, c := range cases {
		b, err := json.Marshal(c.req)
		if err != nil {
			t.Fatal(err)
		}
		r := adminCurl(t, g, "POST", c.path, string(b))
		tag := hostileTag(c.req)
		switch {
		case r.status == 400 || r.status == 422:
			r.want(t, c.name, r.status) // a JSON {"error"}
			refused[r.status]++
		case r.status == 202:
			taken[tag] = c.name
		case r.status == 200:
			var ans struct {
				SuccessCount int `json:"success_count"`
			}
			r.decode(t, &ans)
			if ans.SuccessCount > 0 {
				taken[tag] = c.name
			} else {
				refused[r.status]++ // every recipient failed
			}
		default:
			t.Errorf("%s: HTTP %d %s, want 400/422 with a JSON error, or the message taken", c.name, r.status, r.body)
		}
	}
	t.Logf("CR/LF in %d fields: refused by HTTP status %v; taken, checked at the sink: %v", len(cases), refused, slices.Sorted(maps.Values(taken)))
	for tag, name := range taken {
		var a arrival
		waitFor(t, deliveryMax, name+": the taken message at the sink", func() (bool, string) {
			for _, x := range sink.arrivals(t) {
				for _, r := range x.Rcpts {
					if strings.Contains(r, tag) {
						a = x
						return true, ""
					}
				}
			}
			return false, ""
		})
		if evilHeader.Match(a.Data) {
			t.Errorf("%s: a header was injected into the delivered message:\n%s", name, a.Data)
		}
		for _, r := range a.Rcpts {
			if strings.ContainsAny(r, "\r\n") {
				t.Errorf("%s: CR or LF in the envelope recipient %q", name, r)
			}
		}
	}
}

// hostileTag is the local part that names a case, from its first recipient.
func hostileTag(req map[string]any) string {
	var rcpt string
	if to, ok := req["to"].([]string); ok {
		rcpt = to[0]
	} else {
		rcpt = req["recipients"].([]map[string]any)[0]["email"].(string)
	}
	tag, _, _ := strings.Cut(rcpt, "@")
	return tag
}
