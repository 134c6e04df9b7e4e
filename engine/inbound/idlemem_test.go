package inbound

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestIdleConnectionMemory measures what an idle inbound connection costs
// the server: N clients connect (and, with GANNET_IDLE_TLS=1, finish an
// implicit TLS handshake), get their greeting and then say nothing. The
// clients live in a child process (this test binary re-run as
// TestIdleClientHelper), so the file descriptors and memory of the client
// side are not counted. It reports the Go heap and the RSS growth per
// connection.
//
// It runs only when asked, since it opens thousands of sockets:
//
//	GANNET_IDLE_CONNS=10000 go test ./engine/inbound/ -run TestIdleConnectionMemory -v
//	GANNET_IDLE_CONNS=2000 GANNET_IDLE_TLS=1 go test ./engine/inbound/ -run TestIdleConnectionMemory -v
func TestIdleConnectionMemory(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("GANNET_IDLE_CONNS"))
	if n <= 0 {
		t.Skip("set GANNET_IDLE_CONNS=10000 to measure memory per idle connection")
	}
	useTLS := os.Getenv("GANNET_IDLE_TLS") == "1"
	raiseFileLimit(t, uint64(n)+1024)

	cfg := testListener()
	cfg.IdleTimeout = 10 * time.Minute
	if useTLS {
		cfg.TLSConfig, _ = testCert(t)
		cfg.ImplicitTLS = true
	}
	srv, addr := startServer(t, cfg, nopAcceptor{}, Options{})

	heap0, rss0 := memNow()
	child := exec.Command(os.Args[0], "-test.run=^TestIdleClientHelper$", "-test.v")
	child.Env = append(os.Environ(), "GANNET_IDLE_HELPER_ADDR="+addr, "GANNET_IDLE_HELPER_N="+strconv.Itoa(n))
	if useTLS {
		child.Env = append(child.Env, "GANNET_IDLE_HELPER_TLS=1")
	}
	stdin, err := child.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := child.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	child.Stderr = os.Stderr
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		stdin.Close()
		done := make(chan struct{})
		go func() { child.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			child.Process.Kill()
			<-done
		}
	})
	lines := bufio.NewScanner(stdout)
	ready := false
	for lines.Scan() {
		if strings.HasPrefix(lines.Text(), "READY") {
			ready = true
			break
		}
		if strings.HasPrefix(lines.Text(), "FAIL") {
			t.Fatalf("client helper: %s", lines.Text())
		}
	}
	if !ready {
		t.Fatal("client helper ended before READY")
	}
	go io.Copy(io.Discard, stdout)
	waitFor(t, 60*time.Second, fmt.Sprintf("%d open connections", n), func() bool { return srv.OpenConnections() >= n })
	time.Sleep(200 * time.Millisecond)
	heap1, rss1 := memNow()
	dHeap, dRSS := int64(heap1)-int64(heap0), int64(rss1)-int64(rss0)
	heapKB := float64(dHeap) / float64(n) / 1024
	rssKB := float64(dRSS) / float64(n) / 1024
	kind := "plaintext"
	if useTLS {
		kind = "implicit TLS"
	}
	t.Logf("%d idle %s connections: Go heap %.1f KB/conn, RSS %.1f KB/conn (heap +%d MiB, RSS +%d MiB)",
		n, kind, heapKB, rssKB, dHeap>>20, dRSS>>20)
	if limit := 64.0; heapKB > limit {
		t.Errorf("idle connections cost %.1f KB of heap each, more than %.0f KB", heapKB, limit)
	}
}

// TestIdleClientHelper is the client side of TestIdleConnectionMemory, run
// in a child process: it opens the connections, reads each greeting, prints
// READY and holds them until its stdin closes.
func TestIdleClientHelper(t *testing.T) {
	addr := os.Getenv("GANNET_IDLE_HELPER_ADDR")
	n, _ := strconv.Atoi(os.Getenv("GANNET_IDLE_HELPER_N"))
	if addr == "" || n <= 0 {
		t.Skip("helper process of TestIdleConnectionMemory")
	}
	useTLS := os.Getenv("GANNET_IDLE_HELPER_TLS") == "1"
	raiseFileLimit(t, uint64(n)+1024)
	conns := make([]net.Conn, 0, n)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	buf := make([]byte, 512)
	for i := 0; i < n; i++ {
		c, err := net.DialTimeout("tcp", addr, 10*time.Second)
		if err != nil {
			fmt.Printf("FAIL dial %d: %v\n", i, err)
			return
		}
		if useTLS {
			c = tls.Client(c, &tls.Config{InsecureSkipVerify: true})
		}
		_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
		if _, err := c.Read(buf); err != nil {
			fmt.Printf("FAIL greeting %d: %v\n", i, err)
			return
		}
		conns = append(conns, c)
	}
	fmt.Printf("READY %d\n", len(conns))
	_, _ = io.Copy(io.Discard, os.Stdin)
}

// raiseFileLimit lifts RLIMIT_NOFILE to at least n (up to the hard limit).
func raiseFileLimit(t *testing.T, n uint64) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	if lim.Cur >= n {
		return
	}
	lim.Cur = min(n, lim.Max)
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	if lim.Cur < n {
		t.Skipf("RLIMIT_NOFILE hard limit %d is below the %d descriptors needed", lim.Max, n)
	}
}

// memNow returns the live Go heap after a collection and the process RSS.
func memNow() (heap, rss uint64) {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	heap = ms.HeapAlloc
	if b, err := os.ReadFile("/proc/self/statm"); err == nil {
		f := strings.Fields(string(b))
		if len(f) > 1 {
			pages, _ := strconv.ParseUint(f[1], 10, 64)
			rss = pages * uint64(os.Getpagesize())
		}
	}
	return heap, rss
}
