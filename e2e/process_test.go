package e2e

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// stopTimeout is how long a process gets after SIGTERM before SIGKILL.
const stopTimeout = 10 * time.Second

// proc is one peer or gannet process started by a test. Its stdout and stderr
// are kept (the last outputLimit bytes) and shown in the test log when the
// test fails.
type proc struct {
	name string
	cmd  *exec.Cmd
	out  *tailBuffer
	done chan struct{} // closed when the process has exited
	err  error         // Wait's result, valid after done
}

// startProc starts name with args and registers its stop with t.Cleanup.
func startProc(t testing.TB, name string, args ...string) *proc {
	t.Helper()
	p := &proc{name: name, out: &tailBuffer{}, done: make(chan struct{})}
	p.cmd = exec.Command(name, args...)
	p.cmd.Stdout = p.out
	p.cmd.Stderr = p.out
	// The process gets its own group (a terminal's ^C goes to go test, which
	// stops it) and dies with the test binary if the test binary is killed.
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		if !p.stop() {
			t.Logf("%s did not exit within %v of SIGTERM; killed it", name, stopTimeout)
		}
		if t.Failed() {
			t.Logf("--- output of %s %s:\n%s", name, strings.Join(args, " "), p.out.String())
		}
	})
	return p
}

// exited reports whether the process has ended.
func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// pid is the process id (for /proc/PID).
func (p *proc) pid() int { return p.cmd.Process.Pid }

// rss returns the process's resident set size in bytes (VmRSS of
// /proc/PID/status).
func (p *proc) rss() (int64, error) {
	path := fmt.Sprintf("/proc/%d/status", p.pid())
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			if f := strings.Fields(v); len(f) == 2 && f[1] == "kB" {
				kb, err := strconv.ParseInt(f[0], 10, 64)
				return kb << 10, err
			}
		}
	}
	return 0, fmt.Errorf("no VmRSS in %s", path)
}

// stop sends SIGTERM, waits up to stopTimeout, then SIGKILLs. It reports
// whether the process ended on SIGTERM (or had ended already).
func (p *proc) stop() bool {
	if p.exited() {
		return true
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		return true
	case <-time.After(stopTimeout):
	}
	p.kill9()
	return false
}

// kill9 kills the process with SIGKILL and waits for it.
func (p *proc) kill9() {
	if p.exited() {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

// tailBuffer is an io.Writer that keeps the last outputLimit bytes written.
type tailBuffer struct {
	mu  sync.Mutex
	buf []byte
}

const outputLimit = 64 << 10

func (b *tailBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf = append(b.buf, p...)
	if len(b.buf) > outputLimit {
		b.buf = append(b.buf[:0], b.buf[len(b.buf)-outputLimit/2:]...)
	}
	return len(p), nil
}

func (b *tailBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return string(b.buf)
}

// freePort returns a TCP port that is free on every address in ips (and, with
// udp, also free for UDP on the first address). The port is released before
// returning, so a peer can bind it; the race with other programs is accepted.
func freePort(t testing.TB, udp bool, ips ...string) int {
	t.Helper()
	for range 100 {
		l, err := net.Listen("tcp", net.JoinHostPort(ips[0], "0"))
		if err != nil {
			t.Fatalf("listen on %s: %v", ips[0], err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		closers := []func() error{l.Close}
		ok := true
		for _, ip := range ips[1:] {
			l2, err := net.Listen("tcp", net.JoinHostPort(ip, strconv.Itoa(port)))
			if err != nil {
				ok = false
				break
			}
			closers = append(closers, l2.Close)
		}
		if ok && udp {
			pc, err := net.ListenPacket("udp", net.JoinHostPort(ips[0], strconv.Itoa(port)))
			if err != nil {
				ok = false
			} else {
				closers = append(closers, pc.Close)
			}
		}
		for _, c := range closers {
			c()
		}
		if ok {
			return port
		}
	}
	t.Fatalf("no free port on %v", ips)
	return 0
}

// hostPort joins an IP and a port.
func hostPort(ip string, port int) string { return net.JoinHostPort(ip, strconv.Itoa(port)) }

// waitBanner waits until addr answers with a 220 greeting, failing early if p
// (when not nil) exits.
func waitBanner(t testing.TB, addr string, p *proc, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var last error
	for time.Now().Before(deadline) {
		if p != nil && p.exited() {
			t.Fatalf("%s exited before answering on %s: %v\n%s", p.name, addr, p.err, tail(p.out.String(), 4000))
		}
		line, err := readBanner(addr)
		if err == nil && strings.HasPrefix(line, "220") {
			return
		}
		if err == nil {
			err = fmt.Errorf("greeting %q", line)
		}
		last = err
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("no 220 greeting on %s within %v: %v", addr, timeout, last)
}

// readBanner connects to addr, reads the (possibly multi-line) greeting, sends
// QUIT and returns the last greeting line.
func readBanner(addr string) (string, error) {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(2 * time.Second))
	r := bufio.NewReader(c)
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return "", err
		}
		line = strings.TrimRight(line, "\r\n")
		if len(line) < 4 || line[3] != '-' {
			c.Write([]byte("QUIT\r\n"))
			r.ReadString('\n')
			return line, nil
		}
	}
}

// waitFor polls cond every 50ms until it holds or timeout passes; then it
// fails the test with what and cond's last explanation.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var detail string
	for {
		var ok bool
		ok, detail = cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("timed out after %v waiting for %s: %s", timeout, what, detail)
}
