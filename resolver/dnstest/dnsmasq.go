package dnstest

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// DnsmasqPath is where Debian's dnsmasq-base installs the binary.
const DnsmasqPath = "/usr/sbin/dnsmasq"

// StartDnsmasq runs dnsmasq as a DNS server on 127.0.0.1 at a free port and
// returns its "127.0.0.1:port" address; the test's cleanup stops it. args
// describe the data, for example:
//
//	"--local=/test/",                       // NXDOMAIN, not REFUSED, for unknown names
//	"--mx-host=a.test,mx1.a.test,10",
//	"--host-record=mx1.a.test,127.0.0.2",
//
// dnsmasq reads no configuration file, no /etc/hosts and no resolv.conf,
// forwards nothing and binds only to loopback. When dnsmasq is not installed
// the test is skipped with a loud message, or fails when CI=true.
func StartDnsmasq(tb testing.TB, args ...string) string {
	tb.Helper()
	bin := DnsmasqPath
	if _, err := os.Stat(bin); err != nil {
		p, lerr := exec.LookPath("dnsmasq")
		if lerr != nil {
			msg := "dnstest: dnsmasq is not installed (Debian package dnsmasq-base; run scripts/install-test-peers.sh)"
			if os.Getenv("CI") == "true" {
				tb.Fatal(msg)
			}
			tb.Skip("SKIPPING LOUDLY: " + msg)
		}
		bin = p
	}
	var lastErr error
	for range 5 { // a free port can be taken between the probe and dnsmasq's bind
		addr, err := startDnsmasq(tb, bin, args)
		if err == nil {
			return addr
		}
		lastErr = err
	}
	tb.Fatalf("dnstest: dnsmasq did not start: %v", lastErr)
	return ""
}

// lockedBuffer collects dnsmasq's log output.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.b.Len() > 1<<20 {
		return len(p), nil // bounded: enough to debug a failure
	}
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func startDnsmasq(tb testing.TB, bin string, args []string) (string, error) {
	port, err := freePort()
	if err != nil {
		return "", err
	}
	full := append([]string{
		"--no-daemon",
		"--conf-file=/dev/null", // not /etc/dnsmasq.conf
		"--no-resolv",
		"--no-hosts",
		"--no-poll",
		"--pid-file=", // none
		"--port=" + strconv.Itoa(port),
		"--listen-address=127.0.0.1",
		"--bind-interfaces",
		"--log-facility=-", // stderr
		"--log-queries",
	}, args...)
	if os.Geteuid() == 0 {
		full = append(full, "--user=root") // no privilege drop to a user that may not exist
	}
	cmd := exec.Command(bin, full...)
	var out lockedBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		return "", err
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	stop := func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(3 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
	}

	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	c := dns.Client{Timeout: 200 * time.Millisecond}
	q := new(dns.Msg)
	q.SetQuestion("ready.invalid.", dns.TypeA)
	deadline := time.Now().Add(10 * time.Second)
	for {
		select {
		case err := <-exited:
			return "", fmt.Errorf("dnsmasq exited: %v\n%s", err, out.String())
		default:
		}
		if _, _, err := c.Exchange(q, addr); err == nil {
			break
		}
		if time.Now().After(deadline) {
			stop()
			return "", fmt.Errorf("dnsmasq did not answer within 10s\n%s", out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	tb.Cleanup(func() {
		stop()
		if tb.Failed() {
			tb.Logf("dnsmasq output:\n%s", out.String())
		}
	})
	return addr, nil
}

// freePort finds a port that is free on 127.0.0.1 for both UDP and TCP.
func freePort() (int, error) {
	for range 20 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, err
		}
		port := ln.Addr().(*net.TCPAddr).Port
		pc, err := net.ListenPacket("udp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		ln.Close()
		if err == nil {
			pc.Close()
			return port, nil
		}
	}
	return 0, fmt.Errorf("no port free for both UDP and TCP")
}
