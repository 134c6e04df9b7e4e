package engine

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gannet/engine/admin"
	"gannet/engine/config"
)

// freeAddr returns a loopback address with a port nobody listens on.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// smtpClient is a line-at-a-time SMTP client for the reload tests.
type smtpClient struct {
	t *testing.T
	c net.Conn
	r *bufio.Reader
}

func dialSMTP(t *testing.T, addr string) *smtpClient {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	s := &smtpClient{t: t, c: c, r: bufio.NewReader(c)}
	if got := s.reply(); !strings.HasPrefix(got, "220") {
		t.Fatalf("greeting %q", got)
	}
	return s
}

// reply reads one reply, every line of it.
func (s *smtpClient) reply() string {
	s.t.Helper()
	_ = s.c.SetReadDeadline(time.Now().Add(10 * time.Second))
	var all []string
	for {
		line, err := s.r.ReadString('\n')
		if err != nil {
			s.t.Fatalf("read: %v (so far %q)", err, all)
		}
		all = append(all, strings.TrimRight(line, "\r\n"))
		if len(line) < 4 || line[3] != '-' {
			return strings.Join(all, "\n")
		}
	}
}

// cmd sends a line and returns the reply.
func (s *smtpClient) cmd(line string) string {
	s.t.Helper()
	if _, err := fmt.Fprintf(s.c, "%s\r\n", line); err != nil {
		s.t.Fatal(err)
	}
	return s.reply()
}

// expect sends a line and fails unless the reply starts with code.
func (s *smtpClient) expect(line, code string) string {
	s.t.Helper()
	got := s.cmd(line)
	if !strings.HasPrefix(got, code) {
		s.t.Fatalf("%s: got %q, want %s", line, got, code)
	}
	return got
}

// listenerConfigText is a config with one SMTP listener per name=address
// pair, each with max_message_size size.
func listenerConfigText(dir, spool, size string, listeners ...string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "http_listener = []\n[spool]\npath = %q\n[log]\npath = %q\n[delivery]\nrelay_to = \"127.0.0.1:1\"\n",
		filepath.Join(dir, spool), filepath.Join(dir, "logs"))
	if len(listeners) == 0 {
		b.WriteString("smtp_listener = []\n")
	}
	for _, l := range listeners {
		name, addr, _ := strings.Cut(l, "=")
		fmt.Fprintf(&b, "[[smtp_listener]]\nname = %q\nlisten = %q\nhostname = \"mx.reload.test\"\nmax_message_size = %q\n", name, addr, size)
	}
	return b.String()
}

// TestReloadListeners: a reload starts a new SMTP listener, drains a
// removed one (a session in its transaction finishes it, then gets 421;
// the socket then closes), applies changed settings to new connections
// on the same socket, and refuses a file that changes [spool] whole.
func TestReloadListeners(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "gannet.toml")
	write := func(s string) {
		t.Helper()
		if err := os.WriteFile(file, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	addrA, addrB, addrC := freeAddr(t), freeAddr(t), freeAddr(t)
	write(listenerConfigText(dir, "spool", "10MiB", "a="+addrA))
	cfg, err := config.Load(file)
	if err != nil {
		t.Fatal(err)
	}
	logs := new(syncBuffer)
	e := startLogged(t, cfg, logs)

	// The same file again: the listener is left alone.
	if res := e.Reload(); len(res.Errors) > 0 || strings.Contains(strings.Join(res.Applied, "\n"), "smtp_listener") {
		t.Errorf("reload of the same file: applied %q, errors %q; want no listener change", res.Applied, res.Errors)
	}

	// A session on a, in the middle of its transaction when a goes.
	old := dialSMTP(t, addrA)
	old.expect("EHLO client.test", "250")
	old.expect("MAIL FROM:<a@src.test>", "250")
	old.expect("RCPT TO:<b@dst.test>", "250")
	old.expect("DATA", "354")

	write(listenerConfigText(dir, "spool", "10MiB", "b="+addrB))
	res := e.Reload()
	if len(res.Errors) > 0 {
		t.Fatalf("reload errors: %q", res.Errors)
	}
	applied := strings.Join(res.Applied, "\n")
	for _, want := range []string{`smtp_listener "b" added`, `smtp_listener "a" removed`} {
		if !strings.Contains(applied, want) {
			t.Errorf("applied %q, want %q", res.Applied, want)
		}
	}
	if got := e.SMTPAddrs(); len(got) != 1 || got[0].String() != addrB {
		t.Errorf("SMTP listeners after the reload: %v, want only %s", got, addrB)
	}
	// b takes mail at once.
	nb := dialSMTP(t, addrB)
	nb.expect("EHLO client.test", "250")
	nb.expect("MAIL FROM:<a@src.test>", "250")
	nb.expect("RCPT TO:<b@dst.test>", "250")
	nb.expect("DATA", "354")
	nb.expect("Subject: b\r\n\r\nvia b\r\n.", "250")
	// A new connection to a is refused, by the socket or by 421.
	if c, err := net.DialTimeout("tcp", addrA, time.Second); err == nil {
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		line, _ := bufio.NewReader(c).ReadString('\n')
		if line != "" && !strings.HasPrefix(line, "421") {
			t.Errorf("a new connection to the removed listener got %q", line)
		}
		c.Close()
	}
	// The session in progress finishes its message, then is told 421.
	old.expect("Subject: a\r\n\r\nvia a\r\n.", "250")
	if got := old.reply(); !strings.HasPrefix(got, "421") {
		t.Errorf("after its transaction, the drained session got %q, want 421", got)
	}
	// Then a's socket closes.
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addrA, time.Second)
		if err != nil {
			break
		}
		c.Close()
		if time.Now().After(deadline) {
			t.Fatal("the removed listener still listens")
		}
		time.Sleep(20 * time.Millisecond)
	}

	// Changed settings on the same address: new connections see them, the
	// open one drains after its transaction.
	write(listenerConfigText(dir, "spool", "20MiB", "b="+addrB))
	res = e.Reload()
	if !strings.Contains(strings.Join(res.Applied, "\n"), `smtp_listener "b" changed`) {
		t.Errorf("applied %q, want b changed", res.Applied)
	}
	if got := nb.cmd("RSET"); !strings.HasPrefix(got, "250") && !strings.HasPrefix(got, "421") {
		t.Errorf("RSET on the changed listener's old session: %q", got)
	}
	nc := dialSMTP(t, addrB)
	if got := nc.expect("EHLO client.test", "250"); !strings.Contains(got, "SIZE 20971520") {
		t.Errorf("EHLO after the change: %q, want SIZE 20971520", got)
	}

	// A new spool: the whole file is refused; c is not started.
	write(listenerConfigText(dir, "spool2", "20MiB", "b="+addrB, "c="+addrC))
	res = e.Reload()
	if len(res.Errors) == 0 || !strings.Contains(res.Errors[0], "[spool]") || len(res.Applied) != 0 {
		t.Errorf("a changed spool: errors %q applied %q, want refused", res.Errors, res.Applied)
	}
	if c, err := net.DialTimeout("tcp", addrC, time.Second); err == nil {
		c.Close()
		t.Error("a refused reload started a listener")
	}

	// A listen address in use: refused, nothing applied.
	busy, err := net.Listen("tcp", addrC)
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	write(listenerConfigText(dir, "spool", "30MiB", "b="+addrB, "c="+addrC))
	res = e.Reload()
	if len(res.Errors) == 0 || !strings.Contains(strings.Join(res.Errors, "\n"), "already in use") {
		t.Errorf("a busy address: errors %q, want it named", res.Errors)
	}
	if got := dialSMTP(t, addrB).expect("EHLO client.test", "250"); !strings.Contains(got, "SIZE 20971520") {
		t.Errorf("a refused reload changed b: %q", got)
	}
	if e.conf().SMTPListeners[0].MaxMessageSize.Bytes() != 20<<20 {
		t.Error("a refused reload changed the configuration in force")
	}
}

// TestReloadHTTPListeners: a reload asked over the admin API of the HTTP
// listener it removes answers, the new listener serves at once and the old
// one closes; changed services apply on the same socket.
func TestReloadHTTPListeners(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "gannet.toml")
	h1, h2 := freeAddr(t), freeAddr(t)
	write := func(addr, services string) {
		t.Helper()
		s := fmt.Sprintf("smtp_listener = []\n[spool]\npath = %q\n[log]\npath = %q\n[delivery]\nrelay_to = \"127.0.0.1:1\"\n"+
			"[[http_listener]]\nlisten = %q\ntrusted_hosts = [\"127.0.0.1/32\"]\nservices = [%s]\n",
			filepath.Join(dir, "spool"), filepath.Join(dir, "logs"), addr, services)
		if err := os.WriteFile(file, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(h1, `"admin", "metrics"`)
	cfg, err := config.Load(file)
	if err != nil {
		t.Fatal(err)
	}
	startLogged(t, cfg, new(syncBuffer))
	reload := func(addr string) (int, admin.ReloadResponse) {
		t.Helper()
		resp, err := http.Post("http://"+addr+admin.PathReload, "application/json", nil)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var r admin.ReloadResponse
		if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, r
	}
	get := func(url string) int {
		t.Helper()
		resp, err := http.Get(url)
		if err != nil {
			return -1
		}
		resp.Body.Close()
		return resp.StatusCode
	}

	write(h2, `"admin", "metrics"`)
	st, r := reload(h1)
	if st != 200 || !strings.Contains(strings.Join(r.Applied, "\n"), "http_listener "+h2+" added") ||
		!strings.Contains(strings.Join(r.Applied, "\n"), "http_listener "+h1+" removed") {
		t.Fatalf("reload over the removed listener: %d %+v", st, r)
	}
	if got := get("http://" + h2 + "/metrics"); got != 200 {
		t.Errorf("GET /metrics on the new listener: %d", got)
	}
	deadline := time.Now().Add(10 * time.Second)
	for get("http://"+h1+"/metrics") != -1 {
		if time.Now().After(deadline) {
			t.Fatal("the removed HTTP listener still answers")
		}
		time.Sleep(20 * time.Millisecond)
	}

	write(h2, `"admin"`)
	if st, r := reload(h2); st != 200 || !strings.Contains(strings.Join(r.Applied, "\n"), "http_listener "+h2+" changed") {
		t.Fatalf("reload of changed services: %d %+v", st, r)
	}
	if got := get("http://" + h2 + "/metrics"); got != 404 {
		t.Errorf("GET /metrics after metrics was taken off the listener: %d, want 404", got)
	}
}

// TestReloadResolver: a changed [resolver] builds a new resolver that
// delivery, MTA-STS and DANE use from then on.
func TestReloadResolver(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "gannet.toml")
	write := func(ns string) {
		t.Helper()
		s := fmt.Sprintf("smtp_listener = []\nhttp_listener = []\n[spool]\npath = %q\n[log]\npath = %q\n[resolver]\nnameservers = [%q]\ntimeout = \"1s\"\n",
			filepath.Join(dir, "spool"), filepath.Join(dir, "logs"), ns)
		if err := os.WriteFile(file, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("127.0.0.1:1")
	cfg, err := config.Load(file)
	if err != nil {
		t.Fatal(err)
	}
	e := startLogged(t, cfg, new(syncBuffer))
	before := e.resolver.cur.Load()
	write("127.0.0.1:2")
	res := e.Reload()
	if len(res.Errors) > 0 || !strings.Contains(strings.Join(res.Applied, "\n"), "[resolver]") {
		t.Errorf("reload of a new nameserver: %+v", res)
	}
	if e.resolver.cur.Load() == before || strings.Join(e.resolver.Nameservers(), ",") != "127.0.0.1:2" {
		t.Errorf("nameservers after the reload: %q, want 127.0.0.1:2 in a new resolver", e.resolver.Nameservers())
	}
	same := e.resolver.cur.Load()
	if res := e.Reload(); strings.Contains(strings.Join(res.Applied, "\n"), "[resolver]") || e.resolver.cur.Load() != same {
		t.Errorf("an unchanged [resolver] was rebuilt: %+v", res)
	}
}

// TestReloadLog: [log] rotation is applied; a new [log] path needs a
// restart (reported, the rest applied).
func TestReloadLog(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "gannet.toml")
	write := func(logDir, size, rate string) {
		t.Helper()
		s := fmt.Sprintf("smtp_listener = []\nhttp_listener = []\n[spool]\npath = %q\n[log]\npath = %q\nmax_file_size = %q\n"+
			"[delivery]\nrelay_to = \"127.0.0.1:1\"\n[[tenant]]\nname = \"acme\"\nmax_message_rate = %q\n",
			filepath.Join(dir, "spool"), filepath.Join(dir, logDir), size, rate)
		if err := os.WriteFile(file, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("logs", "256MiB", "6/m")
	cfg, err := config.Load(file)
	if err != nil {
		t.Fatal(err)
	}
	e := startLogged(t, cfg, new(syncBuffer))
	write("logs", "1MiB", "6/m")
	res := e.Reload()
	if !strings.Contains(strings.Join(res.Applied, "\n"), "[log]") || len(res.NeedsRestart) != 0 {
		t.Errorf("a new max_file_size: %+v, want [log] applied", res)
	}
	write("logs2", "1MiB", "12/m")
	res = e.Reload()
	if len(res.NeedsRestart) != 1 || res.NeedsRestart[0] != "[log] path" || len(res.Errors) != 0 {
		t.Errorf("a new [log] path: %+v, want it to need a restart", res)
	}
	if r := e.tenantRate("acme"); r != 0.2 {
		t.Errorf("tenant rate %v after a reload with a new [log] path, want the rest applied (0.2/s)", r)
	}
}

// TestReloadAuthAccounts: the first [[smtp_user]] makes the listeners
// offer AUTH to new connections, and the account logs in; removing it
// takes AUTH away again.
func TestReloadAuthAccounts(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "gannet.toml")
	addr := freeAddr(t)
	write := func(users string) {
		t.Helper()
		s := listenerConfigText(dir, "spool", "10MiB", "in="+addr) + "auth_require_tls = false\n" + users
		if err := os.WriteFile(file, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("")
	cfg, err := config.Load(file)
	if err != nil {
		t.Fatal(err)
	}
	e := startLogged(t, cfg, new(syncBuffer))
	if got := dialSMTP(t, addr).expect("EHLO client.test", "250"); strings.Contains(got, "AUTH") {
		t.Fatalf("AUTH offered without accounts: %q", got)
	}
	write("[[smtp_user]]\nname = \"app1\"\npassword = \"s3cret\"\n")
	if res := e.Reload(); len(res.Errors) > 0 || !strings.Contains(strings.Join(res.Applied, "\n"), "[[smtp_user]]") {
		t.Fatalf("reload adding an account: %+v", res)
	}
	c := dialSMTP(t, addr)
	if got := c.expect("EHLO client.test", "250"); !strings.Contains(got, "AUTH") {
		t.Errorf("AUTH not offered after an account was added: %q", got)
	}
	c.expect("AUTH PLAIN AGFwcDEAczNjcmV0", "235") // \0app1\0s3cret
	write("")
	e.Reload()
	if got := dialSMTP(t, addr).expect("EHLO client.test", "250"); strings.Contains(got, "AUTH") {
		t.Errorf("AUTH still offered after the account was removed: %q", got)
	}
}
