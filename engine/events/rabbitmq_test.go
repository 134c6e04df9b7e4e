package events

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
	"sync"
	"syscall"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// The AMQP tests run one real rabbitmq-server (Debian's), started by the
// first test that needs it and stopped by TestMain: it takes seconds to
// start. It runs as the rabbitmq user in a temporary directory of its own,
// on loopback ports of its own, with its own epmd.
var broker struct {
	once sync.Once
	b    *rabbit
	err  error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if broker.b != nil {
		broker.b.stop()
	}
	os.Exit(code)
}

// startBroker returns the test binary's broker, starting it on first use.
// Without rabbitmq-server the test is skipped, or fails under CI=true.
func startBroker(t testing.TB) *rabbit {
	t.Helper()
	const server = "/usr/lib/rabbitmq/bin/rabbitmq-server"
	if _, err := os.Stat(server); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("rabbitmq-server is not installed (%v): run scripts/install-test-peers.sh", err)
		}
		t.Skipf("SKIPPING: rabbitmq-server is not installed (%v); scripts/install-test-peers.sh installs it", err)
	}
	broker.once.Do(func() { broker.b, broker.err = newRabbit(server) })
	if broker.err != nil {
		t.Fatal(broker.err)
	}
	return broker.b
}

type rabbit struct {
	server   string
	dir      string
	port     int
	env      []string
	cred     *syscall.Credential
	epmd     *exec.Cmd
	cmd      *exec.Cmd
	done     chan struct{} // closed when cmd has exited
	out      *os.File
	ownedDir bool
}

func freeTCPPort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

func newRabbit(server string) (*rabbit, error) {
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
		if ports[i], err = freeTCPPort(); err != nil {
			return nil, err
		}
	}
	r := &rabbit{server: server, dir: dir, port: ports[0], cred: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, ownedDir: true}
	files := map[string]string{
		"enabled_plugins": "[].\n",
		// Loopback only; the guest account works from loopback.
		"rabbitmq.conf": fmt.Sprintf("listeners.tcp.1 = 127.0.0.1:%d\n", r.port),
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			return nil, err
		}
	}
	if err := filepath.Walk(dir, func(p string, _ os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		return os.Chown(p, uid, gid)
	}); err != nil {
		return nil, err
	}
	os.Chmod(dir, 0o755)
	r.env = []string{
		"PATH=/usr/bin:/bin:/usr/sbin:/sbin",
		"HOME=" + dir,
		"LANG=C.UTF-8",
		"RABBITMQ_NODE_IP_ADDRESS=127.0.0.1",
		"RABBITMQ_NODE_PORT=" + strconv.Itoa(r.port),
		"RABBITMQ_DIST_PORT=" + strconv.Itoa(ports[1]),
		"ERL_EPMD_PORT=" + strconv.Itoa(ports[2]),
		"ERL_EPMD_ADDRESS=127.0.0.1",
		"RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS=-kernel inet_dist_use_interface {127,0,0,1}",
		"RABBITMQ_NODENAME=gannet-events-" + strconv.Itoa(os.Getpid()) + "@localhost",
		"RABBITMQ_MNESIA_BASE=" + filepath.Join(dir, "mnesia"),
		"RABBITMQ_LOG_BASE=" + filepath.Join(dir, "log"),
		"RABBITMQ_ENABLED_PLUGINS_FILE=" + filepath.Join(dir, "enabled_plugins"),
		"RABBITMQ_FEATURE_FLAGS_FILE=" + filepath.Join(dir, "feature_flags"),
		"RABBITMQ_PID_FILE=" + filepath.Join(dir, "rabbit.pid"),
		"RABBITMQ_CONFIG_FILE=" + filepath.Join(dir, "rabbitmq"),
	}
	// Our own epmd, in the foreground, so that we can stop it.
	r.epmd = exec.Command("/usr/lib/erlang/bin/epmd", "-port", strconv.Itoa(ports[2]), "-address", "127.0.0.1")
	if _, err := os.Stat(r.epmd.Path); err != nil {
		r.epmd = exec.Command("epmd", "-port", strconv.Itoa(ports[2]), "-address", "127.0.0.1")
	}
	r.epmd.Env = r.env
	r.epmd.SysProcAttr = &syscall.SysProcAttr{Credential: r.cred, Setpgid: true}
	if err := r.epmd.Start(); err != nil {
		return nil, fmt.Errorf("epmd: %w", err)
	}
	if err := r.start(); err != nil {
		r.stop()
		return nil, err
	}
	return r, nil
}

// URL is the broker's amqp:// URL.
func (r *rabbit) URL() string { return fmt.Sprintf("amqp://guest:guest@127.0.0.1:%d/", r.port) }

// start starts the broker and waits until it takes AMQP connections.
func (r *rabbit) start() error {
	out, err := os.OpenFile(filepath.Join(r.dir, "server.out"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	r.out = out
	r.cmd = exec.Command(r.server)
	r.cmd.Dir = r.dir
	r.cmd.Env = r.env
	r.cmd.Stdout, r.cmd.Stderr = out, out
	r.cmd.SysProcAttr = &syscall.SysProcAttr{Credential: r.cred, Setpgid: true}
	if err := r.cmd.Start(); err != nil {
		return fmt.Errorf("rabbitmq-server: %w", err)
	}
	cmd, exited, done := r.cmd, make(chan error, 1), make(chan struct{})
	r.done = done
	go func() {
		err := cmd.Wait()
		close(done)
		exited <- err
	}()
	deadline := time.Now().Add(90 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-exited:
			b, _ := os.ReadFile(out.Name())
			r.cmd = nil
			return fmt.Errorf("rabbitmq-server exited (%v):\n%s", err, tail(b))
		default:
		}
		if c, err := amqp.Dial(r.URL()); err == nil {
			c.Close()
			return nil
		}
		time.Sleep(200 * time.Millisecond)
	}
	b, _ := os.ReadFile(out.Name())
	return fmt.Errorf("rabbitmq-server did not take connections within 90s:\n%s", tail(b))
}

func tail(b []byte) string {
	if len(b) > 3000 {
		b = b[len(b)-3000:]
	}
	return string(b)
}

// stopServer stops the broker (its process group) and waits for it to
// exit; the data directory stays for a restart.
func (r *rabbit) stopServer() {
	if r.cmd == nil || r.cmd.Process == nil {
		return
	}
	pgid := r.cmd.Process.Pid
	syscall.Kill(-pgid, syscall.SIGTERM)
	select {
	case <-r.done:
	case <-time.After(30 * time.Second):
		syscall.Kill(-pgid, syscall.SIGKILL)
		<-r.done
	}
	// The beam may outlive the script that started it: wait for the group.
	for i := 0; i < 300 && syscall.Kill(-pgid, 0) == nil; i++ {
		time.Sleep(100 * time.Millisecond)
	}
	syscall.Kill(-pgid, syscall.SIGKILL)
	r.cmd = nil
	r.out.Close()
}

func (r *rabbit) stop() {
	r.stopServer()
	if r.epmd != nil && r.epmd.Process != nil {
		syscall.Kill(-r.epmd.Process.Pid, syscall.SIGTERM)
		r.epmd.Wait()
	}
	if r.ownedDir {
		os.RemoveAll(r.dir)
	}
}

// declare makes a topic exchange and a durable queue bound to it with
// binding key "#", both named after the test.
func (r *rabbit) declare(t testing.TB, exchange, queue string) {
	t.Helper()
	conn, err := amqp.Dial(r.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	if err := ch.ExchangeDeclare(exchange, "topic", true, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := ch.QueueDeclare(queue, true, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	if err := ch.QueueBind(queue, "#", exchange, false, nil); err != nil {
		t.Fatal(err)
	}
}

// consumed is what drain took from a queue.
type consumed struct {
	byUUID     map[string]int
	keys       map[string]string // uuid → routing key
	persistent bool              // every message had delivery mode 2
}

// drain takes every message now in queue (basic.get until empty), acking
// each.
func (r *rabbit) drain(ctx context.Context, queue string, into *consumed) error {
	conn, err := amqp.Dial(r.URL())
	if err != nil {
		return err
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		return err
	}
	for ctx.Err() == nil {
		d, ok, err := ch.Get(queue, false)
		if err != nil {
			return err
		}
		if !ok {
			return nil
		}
		into.byUUID[d.MessageId]++
		into.keys[d.MessageId] = d.RoutingKey
		if d.DeliveryMode != amqp.Persistent {
			into.persistent = false
		}
		if err := d.Ack(false); err != nil {
			return err
		}
	}
	return errors.New("drain: cancelled")
}
