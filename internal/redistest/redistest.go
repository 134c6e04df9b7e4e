// Package redistest runs a private redis-server (Debian's) for the tests of
// the cluster code (engine/cluster's and e2e's): on a free loopback port,
// in a temporary directory, without persistence, stopped by the test that
// started it. A test can kill it and start it again on the same port to
// see how Gannet copes with Redis going away.
package redistest

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Server is one redis-server process (or none, between Kill and Restart).
type Server struct {
	bin  string
	dir  string
	port int

	mu  sync.Mutex
	cmd *exec.Cmd
}

// InCI reports whether the tests run in CI (CI=true), where a missing
// redis-server fails them instead of skipping them.
func InCI() bool {
	v := strings.ToLower(os.Getenv("CI"))
	return v == "true" || v == "1"
}

// Start starts a redis-server in a new temporary directory on a free
// loopback port and waits until it answers PING. A missing redis-server
// is an error naming the Debian package.
func Start() (*Server, error) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return nil, errors.New("redis-server not found (Debian package redis-server; `make peers` installs it)")
	}
	dir, err := os.MkdirTemp("", "gannet-redis-")
	if err != nil {
		return nil, err
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	s := &Server{bin: bin, dir: dir, port: port}
	if err := s.Restart(); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	return s, nil
}

// Need starts a server for one test and stops it at the test's end; a
// missing redis-server fails the test in CI and skips it loudly elsewhere.
func Need(t testing.TB) *Server {
	t.Helper()
	s, err := Start()
	if err != nil {
		Missing(t, err)
	}
	t.Cleanup(s.Stop)
	return s
}

// Missing fails t in CI and skips it loudly elsewhere, for a server that
// could not be started (err from Start).
func Missing(t testing.TB, err error) {
	t.Helper()
	msg := "PEER MISSING: " + err.Error()
	if InCI() {
		t.Fatal(msg)
	}
	t.Skip("!!! " + msg)
}

// Addr is the server's "127.0.0.1:PORT".
func (s *Server) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port)) }

// URL is the server's redis:// URL (database db).
func (s *Server) URL(db int) string { return fmt.Sprintf("redis://%s/%d", s.Addr(), db) }

// Restart starts the server again (after Kill) on the same port, with an
// empty data set, and waits until it answers.
func (s *Server) Restart() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		return errors.New("redis-server is running")
	}
	cmd := exec.Command(s.bin, "--port", strconv.Itoa(s.port), "--bind", "127.0.0.1",
		"--dir", s.dir, "--save", "", "--appendonly", "no", "--daemonize", "no", "--loglevel", "warning")
	cmd.Stdout, cmd.Stderr = nil, nil
	if err := cmd.Start(); err != nil {
		return err
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		if ping(s.Addr()) == nil {
			s.cmd = cmd
			return nil
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			cmd.Wait()
			return fmt.Errorf("redis-server on port %d did not answer PING within 10s", s.port)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Kill stops the server abruptly (SIGKILL), as a crash would.
func (s *Server) Kill() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return
	}
	s.cmd.Process.Kill()
	s.cmd.Wait()
	s.cmd = nil
}

// Stop kills the server and removes its directory.
func (s *Server) Stop() {
	s.Kill()
	os.RemoveAll(s.dir)
}

// ping sends PING in the inline protocol and expects +PONG.
func ping(addr string) error {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(time.Second))
	if _, err := c.Write([]byte("PING\r\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	if !strings.HasPrefix(line, "+PONG") {
		return fmt.Errorf("PING answered %q", line)
	}
	return nil
}

// Time is the server's clock (TIME), to time what a test measures by the
// clock the limits in Redis run on.
func (s *Server) Time() (time.Time, error) {
	c, err := net.DialTimeout("tcp", s.Addr(), time.Second)
	if err != nil {
		return time.Time{}, err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(time.Second))
	if _, err := c.Write([]byte("TIME\r\n")); err != nil {
		return time.Time{}, err
	}
	// *2 $N seconds $N microseconds
	r := bufio.NewReader(c)
	var f []int64
	for len(f) < 2 {
		line, err := r.ReadString('\n')
		if err != nil {
			return time.Time{}, err
		}
		if line = strings.TrimSpace(line); line == "" || line[0] == '*' || line[0] == '$' {
			continue
		}
		n, err := strconv.ParseInt(line, 10, 64)
		if err != nil {
			return time.Time{}, fmt.Errorf("TIME answered %q", line)
		}
		f = append(f, n)
	}
	return time.Unix(f[0], f[1]*1000), nil
}
