package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net"
	"net/textproto"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// clientTimeout bounds one client run.
const clientTimeout = 90 * time.Second

// acceptedRE matches gannet's reply to the final "." (contract.md, SMTP).
var acceptedRE = regexp.MustCompile(`^250 2\.0\.0 OK id=(\S+)`)

// acceptedID returns the message id in a "250 2.0.0 OK id=<ID>" reply, or
// fails the test.
func acceptedID(t testing.TB, reply string) string {
	t.Helper()
	m := acceptedRE.FindStringSubmatch(reply)
	if m == nil {
		t.Fatalf("reply to the final dot = %q, want \"250 2.0.0 OK id=<ID>\"", reply)
	}
	return m[1]
}

// runClient runs a client program with a time limit and returns its output.
func runClient(t testing.TB, stdin []byte, name string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), clientTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if err != nil {
		err = fmt.Errorf("%s: %w\nstderr:\n%s", name, err, tail(stderr.String(), 4000))
	}
	return stdout.String(), err
}

// ---- swaks ----

// swaksSend sends msg (complete, CRLF lines, ending in CRLF) with swaks and
// PIPELINING and returns the server's reply to the final dot ("" when the
// transaction ended earlier). swaks sends the file's content and then
// CRLF.CRLF, so the file holds msg without its last CRLF and the server
// receives msg exactly.
func swaksSend(t testing.TB, server, from string, to []string, msg []byte, extra ...string) string {
	t.Helper()
	bin := needExecutable(t, "swaks", "swaks")
	if !bytes.HasSuffix(msg, []byte("\r\n")) {
		t.Fatal("swaksSend: msg must end in CRLF")
	}
	f := filepath.Join(t.TempDir(), "swaks.eml")
	if err := os.WriteFile(f, msg[:len(msg)-2], 0o600); err != nil {
		t.Fatal(err)
	}
	args := append([]string{"--server", server, "--from", from, "--to", strings.Join(to, ","),
		"--helo", "swaks.e2e.test", "--data", "@" + f, "--pipeline", "--timeout", "60"}, extra...)
	out, _ := runClient(t, nil, bin, args...)
	return swaksFinalReply(out)
}

// swaksFinalReply finds, in swaks' transcript, the server's reply to the
// final dot: swaks marks client lines " -> " (" ~> " under TLS) and server
// lines "<-  " or "<** " ("<~  ", "<~* " under TLS).
func swaksFinalReply(transcript string) string {
	afterDot := false
	for _, l := range strings.Split(transcript, "\n") {
		l = strings.TrimRight(l, "\r")
		switch {
		case l == " -> ." || l == " ~> .":
			afterDot = true
		case afterDot && len(l) > 4 && l[0] == '<':
			return strings.TrimLeft(l[1:], "-~* ")
		}
	}
	return ""
}

// swaksRelay sends msg through gannet with swaks and returns the message id
// from the "250 2.0.0 OK id=<ID>" reply.
func swaksRelay(t testing.TB, server, from string, to []string, msg []byte) string {
	t.Helper()
	return acceptedID(t, swaksSend(t, server, from, to, msg))
}

// ---- Python smtplib ----

// pyMessage is one message for testdata/smtplib_send.py.
type pyMessage struct {
	From        string   `json:"from"`
	To          []string `json:"to"`
	MailOptions []string `json:"mail_options,omitempty"`
	Data        []byte   `json:"-"`
	DataB64     string   `json:"data_b64"`
}

// pyResult holds the replies smtplib got for one message.
type pyResult struct {
	Mail string   `json:"mail"`
	Rcpt []string `json:"rcpt"`
	Data string   `json:"data"`
}

// smtplibSend sends msgs over one connection with Python's smtplib.
func smtplibSend(t testing.TB, server string, msgs []pyMessage) []pyResult {
	t.Helper()
	py := needExecutable(t, "/usr/bin/python3", "python3")
	script, err := filepath.Abs("testdata/smtplib_send.py")
	if err != nil {
		t.Fatal(err)
	}
	for i := range msgs {
		msgs[i].DataB64 = base64.StdEncoding.EncodeToString(msgs[i].Data)
	}
	spec, _ := json.Marshal(map[string]any{"server": server, "messages": msgs})
	out, err := runClient(t, spec, py, script)
	if err != nil {
		t.Fatalf("smtplib: %v\n%s", err, out)
	}
	var res []pyResult
	if err := json.Unmarshal([]byte(out), &res); err != nil || len(res) != len(msgs) {
		t.Fatalf("smtplib output (%v): %s", err, out)
	}
	return res
}

// ---- Postfix smtp-source ----

// smtpSource runs smtp-source: messages messages over sessions parallel
// connections (-d keeps each connection for many messages).
func smtpSource(t testing.TB, server string, sessions, messages int, from, to string) string {
	t.Helper()
	bin := needExecutable(t, "/usr/sbin/smtp-source", "postfix")
	out, err := runClient(t, nil, bin, "-d", "-s", fmt.Sprint(sessions), "-m", fmt.Sprint(messages),
		"-M", "smtp-source.e2e.test", "-f", from, "-t", to, "-S", "e2e smtp-source", "-l", "2000", server)
	if err != nil {
		t.Fatalf("smtp-source: %v\n%s", err, out)
	}
	return out
}

// ---- Go client (net/textproto) ----

// goSMTP is a minimal SMTP client that returns every reply as text, so a test
// can check codes and the id; it can bind a chosen local address.
type goSMTP struct {
	t    testing.TB
	conn net.Conn
	tp   *textproto.Conn
}

// dialSMTP connects from localIP ("" for any) to server and reads the greeting
// and the EHLO reply.
func dialSMTP(t testing.TB, localIP, server string) *goSMTP {
	t.Helper()
	d := net.Dialer{Timeout: 5 * time.Second}
	if localIP != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(localIP)}
	}
	conn, err := d.Dial("tcp", server)
	if err != nil {
		t.Fatalf("dial %s from %q: %v", server, localIP, err)
	}
	t.Cleanup(func() { conn.Close() })
	conn.SetDeadline(time.Now().Add(clientTimeout))
	c := &goSMTP{t: t, conn: conn, tp: textproto.NewConn(conn)}
	if r := c.read(); !strings.HasPrefix(r, "220") {
		t.Fatalf("greeting %q", r)
	}
	if r := c.Cmd("EHLO go.e2e.test"); !strings.HasPrefix(r, "250") {
		t.Fatalf("EHLO: %q", r)
	}
	return c
}

// read reads one (multi-line) reply and returns it as "CODE text" with the
// lines joined by "\n".
func (c *goSMTP) read() string {
	c.t.Helper()
	var lines []string
	for {
		l, err := c.tp.ReadLine()
		if err != nil {
			c.t.Fatalf("read reply: %v (so far %q)", err, lines)
		}
		lines = append(lines, l)
		if len(l) < 4 || l[3] != '-' {
			break
		}
	}
	return strings.Join(lines, "\n")
}

// Cmd sends one command line and returns its reply.
func (c *goSMTP) Cmd(line string) string {
	c.t.Helper()
	if err := c.tp.PrintfLine("%s", line); err != nil {
		c.t.Fatalf("send %q: %v", line, err)
	}
	return c.read()
}

// Data sends DATA, then msg dot-stuffed (textproto's DotWriter), and returns
// the reply to the final dot. msg must have CRLF line ends.
func (c *goSMTP) Data(msg []byte) string {
	c.t.Helper()
	if r := c.Cmd("DATA"); !strings.HasPrefix(r, "354") {
		c.t.Fatalf("DATA: %q", r)
	}
	w := c.tp.DotWriter()
	bw := bufio.NewWriterSize(w, 64<<10)
	if _, err := bw.Write(msg); err != nil {
		c.t.Fatal(err)
	}
	if err := bw.Flush(); err != nil {
		c.t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		c.t.Fatal(err)
	}
	return c.read()
}

// Send runs one whole transaction and returns the reply to the final dot; it
// fails the test if MAIL or a RCPT is refused.
func (c *goSMTP) Send(from string, to []string, msg []byte) string {
	c.t.Helper()
	if r := c.Cmd("MAIL FROM:<" + from + ">"); !strings.HasPrefix(r, "250") {
		c.t.Fatalf("MAIL: %q", r)
	}
	for _, rcpt := range to {
		if r := c.Cmd("RCPT TO:<" + rcpt + ">"); !strings.HasPrefix(r, "250") {
			c.t.Fatalf("RCPT %s: %q", rcpt, r)
		}
	}
	return c.Data(msg)
}

// Quit ends the session.
func (c *goSMTP) Quit() {
	c.tp.PrintfLine("QUIT")
	c.read()
	c.conn.Close()
}
