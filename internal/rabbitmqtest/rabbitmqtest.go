// Package rabbitmqtest runs a private rabbitmq-server (Debian's) for the
// tests of event shipping (engine/events' and e2e's): as the rabbitmq user
// (the server refuses to run as root), in a temporary directory of its own
// (data, logs, config, feature flags, Erlang cookie), on free loopback
// ports (AMQP, distribution, and its own epmd), stopped by the test binary
// that started it. It takes seconds to start, so a test binary starts it
// once; a test may stop the broker and start it again on the same data to
// see how Gannet copes with a broker restart.
package rabbitmqtest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// server is the broker's start script; epmd Erlang's port mapper.
const (
	server = "/usr/lib/rabbitmq/bin/rabbitmq-server"
	epmd   = "/usr/lib/erlang/bin/epmd"
)

// Server is one broker (running or, between StopBroker and Restart, not)
// and its epmd.
type Server struct {
	dir  string
	port int
	env  []string
	cred *syscall.Credential
	epmd *exec.Cmd

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{} // closed when cmd has exited
}

// InCI reports whether the tests run in CI (CI=true), where a missing
// rabbitmq-server fails them instead of skipping them.
func InCI() bool {
	v := strings.ToLower(os.Getenv("CI"))
	return v == "true" || v == "1"
}

// Missing fails t in CI and skips it loudly elsewhere, for a broker that
// could not be started (err from Start).
func Missing(t testing.TB, err error) {
	t.Helper()
	msg := "PEER MISSING: " + err.Error()
	if InCI() {
		t.Fatal(msg)
	}
	t.Skip("!!! " + msg)
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// Start starts epmd and a broker in a new temporary directory and waits
// until the broker takes AMQP connections (about 5 s here).
func Start() (*Server, error) {
	if _, err := os.Stat(server); err != nil {
		return nil, errors.New("rabbitmq-server not found (Debian package rabbitmq-server; scripts/install-test-peers.sh installs it)")
	}
	u, err := user.Lookup("rabbitmq")
	if err != nil {
		return nil, fmt.Errorf("rabbitmq user: %w", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	dir, err := os.MkdirTemp("", "gannet-rabbitmq-")
	if err != nil {
		return nil, err
	}
	var ports [3]int
	for i := range ports {
		if ports[i], err = freePort(); err != nil {
			os.RemoveAll(dir)
			return nil, err
		}
	}
	s := &Server{dir: dir, port: ports[0], cred: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}}
	files := map[string]string{
		"enabled_plugins": "[].\n",
		// Loopback only; the guest account works from loopback.
		"rabbitmq.conf": fmt.Sprintf("listeners.tcp.1 = 127.0.0.1:%d\n", s.port),
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			os.RemoveAll(dir)
			return nil, err
		}
	}
	// The server writes its data, logs and cookie as the rabbitmq user.
	err = filepath.Walk(dir, func(p string, _ os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		return os.Chown(p, uid, gid)
	})
	if err == nil {
		err = os.Chmod(dir, 0o755)
	}
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	s.env = []string{
		"PATH=/usr/bin:/bin:/usr/sbin:/sbin",
		"HOME=" + dir,
		"LANG=C.UTF-8",
		"RABBITMQ_NODE_IP_ADDRESS=127.0.0.1",
		"RABBITMQ_NODE_PORT=" + strconv.Itoa(s.port),
		"RABBITMQ_DIST_PORT=" + strconv.Itoa(ports[1]),
		"ERL_EPMD_PORT=" + strconv.Itoa(ports[2]),
		"ERL_EPMD_ADDRESS=127.0.0.1",
		"RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS=-kernel inet_dist_use_interface {127,0,0,1}",
		"RABBITMQ_NODENAME=gannet-test-" + strconv.Itoa(ports[0]) + "@localhost",
		"RABBITMQ_MNESIA_BASE=" + filepath.Join(dir, "mnesia"),
		"RABBITMQ_LOG_BASE=" + filepath.Join(dir, "log"),
		"RABBITMQ_ENABLED_PLUGINS_FILE=" + filepath.Join(dir, "enabled_plugins"),
		"RABBITMQ_FEATURE_FLAGS_FILE=" + filepath.Join(dir, "feature_flags"),
		"RABBITMQ_PID_FILE=" + filepath.Join(dir, "rabbit.pid"),
		"RABBITMQ_CONFIG_FILE=" + filepath.Join(dir, "rabbitmq"),
	}
	// Its own epmd in the foreground (not the shared one on port 4369),
	// so that Stop can end it.
	bin := epmd
	if _, err := os.Stat(bin); err != nil {
		bin = "epmd"
	}
	s.epmd = exec.Command(bin, "-port", strconv.Itoa(ports[2]), "-address", "127.0.0.1")
	s.epmd.Env = s.env
	s.epmd.SysProcAttr = &syscall.SysProcAttr{Credential: s.cred, Setpgid: true}
	if err := s.epmd.Start(); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("epmd: %w", err)
	}
	if err := s.Restart(); err != nil {
		s.Stop()
		return nil, err
	}
	return s, nil
}

// URL is the broker's amqp:// URL (the guest account).
func (s *Server) URL() string { return fmt.Sprintf("amqp://guest:guest@127.0.0.1:%d/", s.port) }

// Restart starts the broker (again, after StopBroker, on the same data)
// and waits until it takes AMQP connections.
func (s *Server) Restart() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		return errors.New("rabbitmq-server is running")
	}
	outPath := filepath.Join(s.dir, "server.out")
	out, err := os.OpenFile(outPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer out.Close()
	cmd := exec.Command(server)
	cmd.Dir, cmd.Env = s.dir, s.env
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: s.cred, Setpgid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("rabbitmq-server: %w", err)
	}
	done := make(chan struct{})
	var waitErr error
	go func() {
		waitErr = cmd.Wait()
		close(done)
	}()
	s.cmd, s.done = cmd, done
	deadline := time.Now().Add(90 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-done:
			s.cmd = nil
			return fmt.Errorf("rabbitmq-server exited (%v):\n%s", waitErr, tail(outPath))
		default:
		}
		if c, err := amqp.Dial(s.URL()); err == nil {
			c.Close()
			return nil
		}
		time.Sleep(200 * time.Millisecond)
	}
	s.stopLocked()
	return fmt.Errorf("rabbitmq-server did not take connections within 90s:\n%s", tail(outPath))
}

func tail(path string) string {
	b, _ := os.ReadFile(path)
	if len(b) > 3000 {
		b = b[len(b)-3000:]
	}
	return string(b)
}

// StopBroker stops the broker (SIGTERM to its process group, SIGKILL
// after 30 s) and waits until it is gone; its data stays for Restart.
func (s *Server) StopBroker() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stopLocked()
}

func (s *Server) stopLocked() {
	if s.cmd == nil {
		return
	}
	pgid := s.cmd.Process.Pid
	syscall.Kill(-pgid, syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(30 * time.Second):
		syscall.Kill(-pgid, syscall.SIGKILL)
		<-s.done
	}
	// The Erlang VM may outlive the script that started it: wait for the
	// whole group.
	for i := 0; i < 300 && syscall.Kill(-pgid, 0) == nil; i++ {
		time.Sleep(100 * time.Millisecond)
	}
	syscall.Kill(-pgid, syscall.SIGKILL)
	s.cmd = nil
}

// Stop stops the broker and its epmd and removes the directory.
func (s *Server) Stop() {
	s.StopBroker()
	if s.epmd != nil && s.epmd.Process != nil {
		syscall.Kill(-s.epmd.Process.Pid, syscall.SIGTERM)
		s.epmd.Wait()
		s.epmd = nil
	}
	os.RemoveAll(s.dir)
}

// Declare makes a durable topic exchange and a durable queue bound to it
// with the binding key "#".
func (s *Server) Declare(exchange, queue string) error {
	conn, err := amqp.Dial(s.URL())
	if err != nil {
		return err
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		return err
	}
	if err := ch.ExchangeDeclare(exchange, "topic", true, false, false, false, nil); err != nil {
		return err
	}
	if _, err := ch.QueueDeclare(queue, true, false, false, false, nil); err != nil {
		return err
	}
	return ch.QueueBind(queue, "#", exchange, false, nil)
}

// Message is one message taken from a queue.
type Message struct {
	ID         string // message id
	Type       string
	RoutingKey string
	Persistent bool // delivery mode 2
	Body       []byte
}

// Drain takes (and acks) every message now in queue.
func (s *Server) Drain(ctx context.Context, queue string) ([]Message, error) {
	conn, err := amqp.Dial(s.URL())
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		return nil, err
	}
	var out []Message
	for ctx.Err() == nil {
		d, ok, err := ch.Get(queue, false)
		if err != nil {
			return out, err
		}
		if !ok {
			return out, nil
		}
		out = append(out, Message{ID: d.MessageId, Type: d.Type, RoutingKey: d.RoutingKey,
			Persistent: d.DeliveryMode == amqp.Persistent, Body: d.Body})
		if err := d.Ack(false); err != nil {
			return out, err
		}
	}
	return out, ctx.Err()
}
