package sink

import (
	"bufio"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"
)

// rawClient is a minimal SMTP client for tests that need to see every reply
// and to pipeline by hand.
type rawClient struct {
	t    *testing.T
	conn net.Conn
	r    *bufio.Reader
}

func dialRaw(t *testing.T, addr string) *rawClient {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	c.SetDeadline(time.Now().Add(10 * time.Second))
	t.Cleanup(func() { c.Close() })
	return &rawClient{t: t, conn: c, r: bufio.NewReader(c)}
}

// send writes raw bytes.
func (c *rawClient) send(s string) {
	c.t.Helper()
	if _, err := c.conn.Write([]byte(s)); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

// reply reads one (possibly multi-line) reply; code 0 means the connection
// ended.
func (c *rawClient) reply() (int, string) {
	c.t.Helper()
	var text []string
	for {
		line, err := c.r.ReadString('\n')
		if err != nil {
			return 0, strings.Join(text, "\n")
		}
		line = strings.TrimRight(line, "\r\n")
		if len(line) < 4 {
			c.t.Fatalf("short reply line %q", line)
		}
		code, err := strconv.Atoi(line[:3])
		if err != nil {
			c.t.Fatalf("bad reply line %q", line)
		}
		text = append(text, line[4:])
		if line[3] == ' ' {
			return code, strings.Join(text, "\n")
		}
	}
}

// expect reads one reply and fails unless its code is want.
func (c *rawClient) expect(want int) string {
	c.t.Helper()
	code, text := c.reply()
	if code != want {
		c.t.Fatalf("got reply %d %q, want %d", code, text, want)
	}
	return text
}

// cmd sends a command line and returns the reply.
func (c *rawClient) cmd(line string) (int, string) {
	c.t.Helper()
	c.send(line + "\r\n")
	return c.reply()
}

// closed reports whether the server has closed the connection: a NOOP gets
// no reply.
func (c *rawClient) closed() bool {
	c.conn.Write([]byte("NOOP\r\n"))
	code, _ := c.reply()
	return code == 0
}

func startSink(t testing.TB, cfg Config) *Sink {
	t.Helper()
	s, err := Start(cfg)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// waitFor polls cond for up to 5 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
