package e2e

// Inbound SMTP for production, end to end against bin/gannet: TLS (STARTTLS,
// implicit, self-signed, tls_min_version, reload on SIGHUP), AUTH against
// [[smtp_user]] with the tenant carried into the log records, the per-address
// AUTH failure guard, relay control, limits, timeouts, SMTP smuggling, BDAT,
// queue full — each driven by a real client (swaks, curl, Python, msmtp,
// Postfix) or a raw socket, checking the reply code, the enhanced code, that
// the session or process survives, and that nothing refused was stored.

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"encoding/base64"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// inbGannet is one gannet process started from a config text.
type inbGannet struct {
	dir, cfgPath, logDir string
	p                    *proc
}

// inbStartGannet writes cfg (with DIR replaced by the data dir) and starts
// `gannet serve`, waiting for the 220 greeting on greetAddr.
func inbStartGannet(t *testing.T, dir, cfg, greetAddr string) *inbGannet {
	t.Helper()
	bin := gannetBinary(t)
	g := &inbGannet{dir: dir, cfgPath: filepath.Join(dir, "gannet.toml"), logDir: filepath.Join(dir, "logs")}
	cfg = strings.ReplaceAll(cfg, "DIR", dir)
	if err := os.WriteFile(g.cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("--- gannet config:\n%s", cfg)
			if recs, err := readLogRecords(g.logDir); err == nil {
				t.Logf("--- gannet log records:\n%s", summarize(recs))
			}
		}
	})
	g.p = startProc(t, bin, "serve", "-config", g.cfgPath)
	waitBanner(t, greetAddr, g.p, gannetStartMax)
	return g
}

func (g *inbGannet) records(t *testing.T) []logRecord {
	t.Helper()
	recs, err := readLogRecords(g.logDir)
	if err != nil {
		t.Fatal(err)
	}
	return recs
}

// reception waits for the Reception record of message id.
func (g *inbGannet) reception(t *testing.T, id string) logRecord {
	t.Helper()
	var rec logRecord
	waitFor(t, 10*time.Second, "Reception record of "+id, func() (bool, string) {
		r := selectRecords(g.records(t), recordFilter{Type: "Reception", ID: id})
		if len(r) == 0 {
			return false, summarize(g.records(t))
		}
		rec = r[0]
		return true, ""
	})
	return rec
}

// alive checks that the process still runs and greets.
func (g *inbGannet) alive(t *testing.T, addr string) {
	t.Helper()
	if g.p.exited() {
		t.Fatalf("gannet exited: %v\n%s", g.p.err, tail(g.p.out.String(), 4000))
	}
	if line, err := readBanner(addr); err != nil || !strings.HasPrefix(line, "220") {
		t.Fatalf("gannet does not greet on %s: %q %v", addr, line, err)
	}
}

// inbConn is a raw SMTP client over TCP, optionally TLS, from a chosen
// loopback address.
type inbConn struct {
	t   *testing.T
	raw net.Conn
	c   net.Conn
	r   *bufio.Reader
}

func inbDial(t *testing.T, addr, fromIP string, implicitTLS bool) *inbConn {
	t.Helper()
	d := net.Dialer{Timeout: 5 * time.Second}
	if fromIP != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(fromIP)}
	}
	raw, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("dial %s from %s: %v", addr, fromIP, err)
	}
	t.Cleanup(func() { raw.Close() })
	c := &inbConn{t: t, raw: raw, c: raw, r: bufio.NewReader(raw)}
	if implicitTLS {
		c.handshake(&tls.Config{InsecureSkipVerify: true})
	}
	return c
}

func (c *inbConn) handshake(cfg *tls.Config) *tls.Conn {
	c.t.Helper()
	tc := tls.Client(c.raw, cfg)
	_ = tc.SetDeadline(time.Now().Add(10 * time.Second))
	if err := tc.Handshake(); err != nil {
		c.t.Fatalf("TLS handshake: %v", err)
	}
	c.c, c.r = tc, bufio.NewReader(tc)
	return tc
}

func (c *inbConn) send(s string) {
	c.t.Helper()
	_ = c.c.SetWriteDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.c.Write([]byte(s)); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

// reply reads one reply and returns its last line ("250 2.1.0 Sender OK");
// all lines are joined with "\n" in the second result.
func (c *inbConn) reply() (string, string) {
	c.t.Helper()
	_ = c.c.SetReadDeadline(time.Now().Add(15 * time.Second))
	var all []string
	for {
		l, err := c.r.ReadString('\n')
		if err != nil {
			c.t.Fatalf("read reply: %v (have %q)", err, all)
		}
		l = strings.TrimRight(l, "\r\n")
		all = append(all, l)
		if len(l) < 4 || l[3] != '-' {
			return l, strings.Join(all, "\n")
		}
	}
}

// expect reads one reply and checks that it starts with prefix ("250 2.1.0").
func (c *inbConn) expect(prefix string) string {
	c.t.Helper()
	last, all := c.reply()
	if !strings.HasPrefix(last, prefix) {
		c.t.Fatalf("reply %q, want %q", all, prefix)
	}
	return all
}

// cmd sends one line and checks the reply.
func (c *inbConn) cmd(line, prefix string) string {
	c.t.Helper()
	c.send(line + "\r\n")
	return c.expect(prefix)
}

// closed checks that the server closed the connection.
func (c *inbConn) closed() {
	c.t.Helper()
	_ = c.c.SetReadDeadline(time.Now().Add(10 * time.Second))
	b, err := c.r.ReadByte()
	if err == nil {
		c.t.Fatalf("connection still open: read %q", b)
	}
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		c.t.Fatal("connection still open after 10s")
	}
}

// startTLS greets, says EHLO, STARTTLS, handshakes and says EHLO again.
func (c *inbConn) startTLS() *tls.Conn {
	c.t.Helper()
	c.expect("220")
	c.cmd("EHLO raw.inb.test", "250")
	c.cmd("STARTTLS", "220 2.0.0")
	tc := c.handshake(&tls.Config{InsecureSkipVerify: true})
	c.cmd("EHLO raw.inb.test", "250")
	return tc
}

func (c *inbConn) authPlain(user, pass string) string {
	c.t.Helper()
	c.send(authPlainLine(user, pass))
	last, _ := c.reply()
	return last
}

// authPlainLine is the AUTH PLAIN command line (CRLF included) for user/pass.
func authPlainLine(user, pass string) string {
	return "AUTH PLAIN " + base64.StdEncoding.EncodeToString([]byte("\x00"+user+"\x00"+pass)) + "\r\n"
}

// inbMessage is a small message whose Subject names the case.
func inbMessage(subject string) string {
	return "From: app@inb.test\r\nTo: user@far.example\r\nSubject: " + subject + "\r\n\r\nbody of " + subject + "\r\n"
}

// inbWriteCert replaces certFile/keyFile with a new self-signed pair for host
// (written to temporary names and renamed, as an operator's tool would).
func inbWriteCert(t *testing.T, certFile, keyFile, host string) {
	t.Helper()
	c, k := selfSignedCert(t, host)
	for _, p := range [][2]string{{c, certFile}, {k, keyFile}} {
		b, err := os.ReadFile(p[0])
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p[1]+".new", b, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(p[1]+".new", p[1]); err != nil {
			t.Fatal(err)
		}
	}
}

// inbCertCN returns the common name of the certificate served over STARTTLS.
func inbCertCN(t *testing.T, addr string) string {
	t.Helper()
	c := inbDial(t, addr, "127.0.0.1", false)
	tc := c.startTLS()
	c.cmd("QUIT", "221")
	return tc.ConnectionState().PeerCertificates[0].Subject.CommonName
}

const inbConfig = `# gannet inbound e2e test (generated)
http_listener = []

[spool]
path = "DIR/spool"

[log]
path = "DIR/logs"

[delivery]
relay_to = "{{SINK}}"

[queue]
retry_interval = "2s"

[[smtp_listener]]
name = "submit"
listen = "{{SUBMIT}}"
hostname = "submit.inb.test"
relay_hosts = ["127.0.0.2/32"]
tls_cert = "{{CERT}}"
tls_key = "{{KEY}}"
auth_mechanisms = ["PLAIN", "LOGIN", "CRAM-MD5"]
auth_require_tls = true
max_message_size = "64KiB"
max_recipients = 3
max_bad_commands = 4
max_connections = 6
max_connections_per_ip = 3
auth_fail_delay_after = 2
auth_fail_delay = "700ms"
auth_fail_block_after = 4
auth_fail_window = "1m"

[[smtp_listener]]
name = "smtps"
listen = "{{SMTPS}}"
hostname = "smtps.inb.test"
relay_hosts = ["127.0.0.1/32"]
implicit_tls = true
tls_min_version = "1.3"
auth_mechanisms = []
bare_lf = "reject"
idle_timeout = "2s"
command_timeout = "2s"
data_timeout = "2s"

[[smtp_user]]
name = "app1"
password = "secret1"
tenant = "acme"

[[smtp_user]]
name = "app2"
password_hash = "{{HASH}}"
tenant = "globex"

[[tenant]]
name = "acme"

[[tenant]]
name = "globex"
`

// TestInboundProduction runs one gannet with two listeners of different
// settings — "submit" (STARTTLS, AUTH required from outside 127.0.0.2,
// auth_require_tls, 64 KiB, 3 recipients, connection limits, a fast AUTH
// guard) and "smtps" (implicit TLS 1.3 only with a generated self-signed
// certificate, no AUTH, relay for 127.0.0.1 only, bare_lf = reject, 2 s
// timeouts) — relaying to smtp-sink, and drives it with real clients.
func TestInboundProduction(t *testing.T) {
	sinkAddr := hostPort("127.0.0.1", freePort(t, false, "127.0.0.1"))
	sink := startSmtpSink(t, sinkAddr)
	dir := t.TempDir()
	certFile, keyFile := selfSignedCert(t, "submit.inb.test")
	hash, err := bcrypt.GenerateFromPassword([]byte("secret2"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	submit := hostPort("127.0.0.1", freePort(t, false, "127.0.0.1"))
	smtps := hostPort("127.0.0.1", freePort(t, false, "127.0.0.1"))
	cfg := strings.NewReplacer("{{SINK}}", sinkAddr, "{{SUBMIT}}", submit, "{{SMTPS}}", smtps,
		"{{CERT}}", certFile, "{{KEY}}", keyFile, "{{HASH}}", string(hash)).Replace(inbConfig)
	g := inbStartGannet(t, dir, cfg, submit)
	submitHost, submitPort, _ := net.SplitHostPort(submit)
	smtpsHost, smtpsPort, _ := net.SplitHostPort(smtps)

	// accepted collects the ids of accepted messages with their expected
	// tenant; each must have a Reception record and reach the sink.
	type accepted struct{ id, tenant, rcpt string }
	var acc []accepted
	accept := func(reply, tenant, rcpt string) {
		t.Helper()
		acc = append(acc, accepted{acceptedID(t, reply), tenant, rcpt})
	}

	t.Run("two listeners", func(t *testing.T) {
		c := inbDial(t, submit, "127.0.0.1", false)
		c.expect("220 submit.inb.test")
		ehlo := c.cmd("EHLO raw.inb.test", "250")
		for _, want := range []string{"250-SIZE 65536", "250-STARTTLS", "250-PIPELINING", "250 CHUNKING"} {
			if !strings.Contains(ehlo, want) {
				t.Errorf("submit EHLO lacks %q:\n%s", want, ehlo)
			}
		}
		if strings.Contains(ehlo, "AUTH") {
			t.Errorf("submit offers AUTH before TLS:\n%s", ehlo)
		}
		s := inbDial(t, smtps, "127.0.0.1", true)
		s.expect("220 smtps.inb.test")
		ehlo = s.cmd("EHLO raw.inb.test", "250")
		if !strings.Contains(ehlo, "250-SIZE 20971520") || strings.Contains(ehlo, "STARTTLS") || strings.Contains(ehlo, "AUTH") {
			t.Errorf("smtps EHLO:\n%s", ehlo)
		}
		if v := s.c.(*tls.Conn).ConnectionState().Version; v != tls.VersionTLS13 {
			t.Errorf("smtps TLS version %x", v)
		}
		// tls_min_version = "1.3": a TLS 1.2 client is refused.
		raw, err := net.Dial("tcp", smtps)
		if err != nil {
			t.Fatal(err)
		}
		defer raw.Close()
		tc := tls.Client(raw, &tls.Config{InsecureSkipVerify: true, MaxVersion: tls.VersionTLS12})
		_ = tc.SetDeadline(time.Now().Add(5 * time.Second))
		if err := tc.Handshake(); err == nil {
			t.Error("TLS 1.2 handshake accepted on a tls_min_version = 1.3 listener")
		}
		// No tls_cert: a self-signed certificate was generated in the data dir.
		if _, err := os.Stat(filepath.Join(dir, "tls", "selfsigned-cert.pem")); err != nil {
			t.Errorf("self-signed certificate: %v", err)
		}
		// submit serves the configured certificate.
		if cn := s.c.(*tls.Conn).ConnectionState().PeerCertificates[0].Subject.CommonName; cn == "submit.inb.test" {
			t.Errorf("smtps serves the submit certificate")
		}
		if cn := inbCertCN(t, submit); cn != "submit.inb.test" {
			t.Errorf("submit certificate CN %q", cn)
		}
	})

	t.Run("swaks", func(t *testing.T) {
		msg := []byte(inbMessage("swaks"))
		for _, tc := range []struct{ mech, user, pass, tenant string }{
			{"PLAIN", "app1", "secret1", "acme"},
			{"LOGIN", "app2", "secret2", "globex"}, // bcrypt password_hash
			{"CRAM-MD5", "app1", "secret1", "acme"},
		} {
			rcpt := "swaks-" + strings.ToLower(tc.mech) + "@far.example"
			r := swaksSend(t, submit, "app@inb.test", []string{rcpt}, msg, "-tls", "-a", tc.mech, "-au", tc.user, "-ap", tc.pass)
			accept(r, tc.tenant, rcpt)
		}
		// Implicit TLS (--tlsc), from a relay host, pipelined.
		r := swaksSend(t, smtps, "app@inb.test", []string{"swaks-tlsc@far.example"}, msg, "--tlsc")
		accept(r, "", "swaks-tlsc@far.example")
		// Wrong password: 535 5.7.8 (from its own address, so that the AUTH
		// guard of 127.0.0.1 stays clean).
		out, _ := runClient(t, nil, needExecutable(t, "swaks", "swaks"), "--server", submit, "--local-interface", "127.0.0.3",
			"-tls", "-a", "PLAIN", "-au", "app1", "-ap", "wrong", "--from", "app@inb.test", "--to", "refused-swaks@far.example")
		if !strings.Contains(out, "<~* 535 5.7.8") {
			t.Errorf("wrong password: swaks transcript lacks 535 5.7.8:\n%s", out)
		}
	})

	t.Run("curl", func(t *testing.T) {
		curl := needExecutable(t, "curl", "curl")
		file := filepath.Join(t.TempDir(), "msg.eml")
		os.WriteFile(file, []byte(inbMessage("curl")), 0o600)
		// STARTTLS required, AUTH PLAIN (curl would pick CRAM-MD5, which a
		// bcrypt-only account cannot do), and the certificate verified
		// against the configured one.
		out, err := runClient(t, nil, curl, "-sS", "-v", "--url", "smtp://submit.inb.test:"+submitPort,
			"--connect-to", "submit.inb.test:"+submitPort+":"+submitHost+":"+submitPort,
			"--ssl-reqd", "--cacert", certFile, "--user", "app2:secret2", "--login-options", "AUTH=PLAIN",
			"--mail-from", "app@inb.test", "--mail-rcpt", "curl-starttls@far.example", "--upload-file", file)
		if err != nil {
			t.Fatalf("curl smtp:// --ssl-reqd: %v\n%s", err, out)
		}
		// curl -v prints the server's lines on stderr, which runClient keeps
		// only on failure: find the id through the log records instead.
		recs := g.records(t)
		r := selectRecords(recs, recordFilter{Type: "Reception", Recipient: "curl-starttls@far.example"})
		if len(r) != 1 {
			waitFor(t, 5*time.Second, "curl's Reception", func() (bool, string) {
				r = selectRecords(g.records(t), recordFilter{Type: "Reception", Recipient: "curl-starttls@far.example"})
				return len(r) == 1, ""
			})
		}
		acc = append(acc, accepted{r[0].ID, "globex", "curl-starttls@far.example"})
		// The Reception record names the TLS the session negotiated.
		if v := r[0].TLSProtocolVersion; v != "TLSv1.2" && v != "TLSv1.3" || !strings.HasPrefix(r[0].TLSCipher, "TLS_") {
			t.Errorf("STARTTLS Reception: tls_protocol_version %q tls_cipher %q", v, r[0].TLSCipher)
		}

		out, err = runClient(t, nil, curl, "-sS", "-k", "--url", "smtps://"+smtpsHost+":"+smtpsPort,
			"--mail-from", "app@inb.test", "--mail-rcpt", "curl-smtps@far.example", "--upload-file", file)
		if err != nil {
			t.Fatalf("curl smtps://: %v\n%s", err, out)
		}
		waitFor(t, 5*time.Second, "curl smtps Reception", func() (bool, string) {
			r = selectRecords(g.records(t), recordFilter{Type: "Reception", Recipient: "curl-smtps@far.example"})
			return len(r) == 1, ""
		})
		acc = append(acc, accepted{r[0].ID, "", "curl-smtps@far.example"})
		// Implicit TLS on a tls_min_version = "1.3" listener.
		if r[0].TLSProtocolVersion != "TLSv1.3" || !strings.HasPrefix(r[0].TLSCipher, "TLS_") {
			t.Errorf("smtps Reception: tls_protocol_version %q tls_cipher %q", r[0].TLSProtocolVersion, r[0].TLSCipher)
		}
		// Without --user, the submit listener refuses MAIL: 530 5.7.0.
		out, err = runClient(t, nil, curl, "-sS", "-v", "-k", "--url", "smtp://"+submit, "--ssl-reqd",
			"--mail-from", "app@inb.test", "--mail-rcpt", "refused-curl@far.example", "--upload-file", file)
		if err == nil || !strings.Contains(err.Error(), "530") {
			t.Errorf("curl without AUTH: %v\n%s", err, out)
		}
	})

	t.Run("smtplib and BDAT", func(t *testing.T) {
		py := needExecutable(t, "/usr/bin/python3", "python3")
		script := `
import smtplib, ssl, socket, sys
host, port, sport = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
# smtplib: STARTTLS, AUTH (smtplib prefers CRAM-MD5), one message.
s = smtplib.SMTP(host, port, local_hostname="py.inb.test", timeout=20)
s.starttls(context=ctx)
s.login("app1", "secret1")
r = s.sendmail("app@inb.test", ["py-smtplib@far.example"], b"Subject: smtplib\r\n\r\nfrom python\r\n")
print("SMTPLIB", "ok" if r == {} else r)
s.quit()
# BDAT with raw sockets over implicit TLS (RFC 3030).
c = ctx.wrap_socket(socket.create_connection((host, sport), timeout=20))
f = c.makefile("rb")
def reply():
    while True:
        l = f.readline().decode()
        if l[3:4] != "-":
            return l.strip()
def cmd(b, n=1):
    c.sendall(b)
    return " | ".join(reply() for _ in range(n))
print("GREETING", reply())
print("EHLO", cmd(b"EHLO py.inb.test\r\n"))
print("BDAT-NOMAIL", cmd(b"BDAT 5\r\nhello"))
# Two chunks and BDAT 0 LAST, all pipelined in one write.
c1, c2 = b"Subject: bdat\r\n\r\nchunk\r\n", b".\r\nend\r\n"
print("BDAT-CHUNKS", cmd(b"MAIL FROM:<app@inb.test>\r\nRCPT TO:<py-bdat@far.example>\r\n" +
    b"BDAT %d\r\n" % len(c1) + c1 + b"BDAT %d\r\n" % len(c2) + c2 + b"BDAT 0 LAST\r\n", 5))
print("BDAT-THEN-DATA", cmd(b"MAIL FROM:<app@inb.test>\r\nRCPT TO:<refused-bdatmix@far.example>\r\nBDAT 4\r\nabcdDATA\r\nRSET\r\n", 5))
print("BINARYMIME-DATA", cmd(b"MAIL FROM:<app@inb.test> BODY=BINARYMIME\r\nRCPT TO:<py-binary@far.example>\r\nDATA\r\n", 3))
binary = b"Subject: bin\r\n\r\n\x00\x01\xff\r\n"
print("BINARYMIME-BDAT", cmd(b"BDAT %d LAST\r\n" % len(binary) + binary))
print("QUIT", cmd(b"QUIT\r\n"))
`
		out, err := runClient(t, nil, py, "-c", script, submitHost, submitPort, smtpsPort)
		if err != nil {
			t.Fatalf("python: %v\n%s", err, out)
		}
		want := map[string]string{
			"SMTPLIB":         "ok",
			"GREETING":        "220 smtps.inb.test",
			"EHLO":            "250 CHUNKING",
			"BDAT-NOMAIL":     "503 5.5.1",
			"BDAT-CHUNKS":     "250 2.1.0 Sender OK | 250 2.1.5 Recipient OK | 250 2.0.0 24 octets received | 250 2.0.0 32 octets received | 250 2.0.0 OK id=",
			"BDAT-THEN-DATA":  "250 2.1.0 Sender OK | 250 2.1.5 Recipient OK | 250 2.0.0 4 octets received | 503 5.5.1 DATA not allowed in this transaction, use BDAT | 250 2.0.0 OK",
			"BINARYMIME-DATA": "250 2.1.0 Sender OK | 250 2.1.5 Recipient OK | 503 5.5.1 DATA not allowed",
			"BINARYMIME-BDAT": "250 2.0.0 OK id=",
			"QUIT":            "221",
		}
		got := map[string]string{}
		for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
			k, v, _ := strings.Cut(l, " ")
			got[k] = v
		}
		for k, w := range want {
			if !strings.HasPrefix(got[k], w) {
				t.Errorf("%s: %q, want prefix %q", k, got[k], w)
			}
		}
		if v := got["BDAT-CHUNKS"]; strings.Contains(v, "OK id=") {
			acc = append(acc, accepted{strings.Fields(v[strings.LastIndex(v, "OK id=")+6:])[0], "", "py-bdat@far.example"})
		}
		// The BINARYMIME message is stored (the sink may not take binary).
		if v := got["BINARYMIME-BDAT"]; strings.Contains(v, "OK id=") {
			g.reception(t, strings.Fields(v[strings.LastIndex(v, "OK id=")+6:])[0])
		}
		waitFor(t, 5*time.Second, "smtplib's Reception", func() (bool, string) {
			r := selectRecords(g.records(t), recordFilter{Type: "Reception", Recipient: "py-smtplib@far.example"})
			if len(r) == 1 {
				acc = append(acc, accepted{r[0].ID, "acme", "py-smtplib@far.example"})
			}
			return len(r) == 1, ""
		})
		// The chunks arrive as one message.
		waitFor(t, 20*time.Second, "the BDAT message at the sink", func() (bool, string) {
			a := findArrival(sink.arrivals(t), "py-bdat@far.example")
			if a == nil {
				return false, "not yet"
			}
			return bytes.Contains(a.Data, []byte("Subject: bdat\r\n")) && bytes.HasSuffix(a.Data, []byte("\r\nchunk\r\n.\r\nend\r\n")), fmt.Sprintf("%q", a.Data)
		})
	})

	t.Run("msmtp", func(t *testing.T) {
		msmtp := needExecutable(t, "msmtp", "msmtp")
		conf := filepath.Join(t.TempDir(), "msmtprc")
		os.WriteFile(conf, []byte(fmt.Sprintf(`defaults
tls on
tls_starttls on
tls_trust_file %s
tls_host_override submit.inb.test
auth login
account inb
host %s
port %s
from app@inb.test
user app2
password secret2
account default : inb
`, certFile, submitHost, submitPort)), 0o600)
		out, err := runClient(t, []byte(inbMessage("msmtp")), msmtp, "-C", conf, "msmtp-user@far.example")
		if err != nil {
			t.Fatalf("msmtp: %v\n%s", err, out)
		}
		waitFor(t, 5*time.Second, "msmtp's Reception", func() (bool, string) {
			r := selectRecords(g.records(t), recordFilter{Type: "Reception", Recipient: "msmtp-user@far.example"})
			if len(r) == 1 {
				acc = append(acc, accepted{r[0].ID, "globex", "msmtp-user@far.example"})
			}
			return len(r) == 1, ""
		})
	})

	t.Run("postfix relayhost", func(t *testing.T) {
		pf := inbStartPostfix(t, submit, "app1", "secret1")
		msg := []byte(inbMessage("via postfix"))
		r := swaksSend(t, pf, "app@pf.inb.test", []string{"postfix-user@far.example"}, msg)
		if !strings.HasPrefix(r, "250") {
			t.Fatalf("postfix smtpd: %q", r)
		}
		waitFor(t, 30*time.Second, "Postfix's message at gannet", func() (bool, string) {
			r := selectRecords(g.records(t), recordFilter{Type: "Reception", Recipient: "postfix-user@far.example"})
			if len(r) == 1 {
				acc = append(acc, accepted{r[0].ID, "acme", "postfix-user@far.example"})
			}
			return len(r) == 1, summarize(g.records(t))
		})
	})

	t.Run("refusals", func(t *testing.T) {
		// Before TLS on submit: AUTH 538 5.7.11, MAIL 530 5.7.0.
		c := inbDial(t, submit, "127.0.0.1", false)
		c.expect("220")
		c.cmd("EHLO raw.inb.test", "250")
		if r := c.authPlain("app1", "secret1"); !strings.HasPrefix(r, "538 5.7.11") {
			t.Errorf("AUTH before TLS: %q", r)
		}
		c.cmd("MAIL FROM:<app@inb.test>", "530 5.7.0")
		c.cmd("NOOP", "250")
		c.cmd("QUIT", "221")

		// Under TLS and AUTH: size, recipients, line length, smuggling.
		c = inbDial(t, submit, "127.0.0.1", false)
		c.startTLS()
		if r := c.authPlain("app1", "secret1"); !strings.HasPrefix(r, "235 2.7.0") {
			t.Fatalf("AUTH: %q", r)
		}
		c.cmd("MAIL FROM:<app@inb.test> SIZE=70000", "552 5.3.4")
		c.cmd("NOOP", "250")
		c.cmd("MAIL FROM:<app@inb.test>", "250")
		c.cmd("RCPT TO:<refused-big@far.example>", "250")
		c.cmd("DATA", "354")
		c.send("Subject: big\r\n\r\n" + strings.Repeat(strings.Repeat("b", 78)+"\r\n", 1000) + ".\r\n")
		c.expect("552 5.3.4")
		c.cmd("NOOP", "250")
		c.cmd("MAIL FROM:<app@inb.test>", "250")
		for i := 1; i <= 3; i++ {
			c.cmd(fmt.Sprintf("RCPT TO:<limit-%d@far.example>", i), "250")
		}
		c.cmd("RCPT TO:<refused-rcpt4@far.example>", "452 4.5.3")
		c.cmd("DATA", "354")
		// A 5000-byte body line is accepted as is (no DATA line limit: see
		// smtpwire's DotDecoder); only the command line has one.
		c.send("Subject: limits\r\n\r\n" + strings.Repeat("L", 5000) + "\r\n.\r\n")
		accept(c.expect("250 2.0.0"), "acme", "limit-3@far.example")
		c.cmd("NOOP "+strings.Repeat("x", 3000), "500 5.5.2")
		c.cmd("NOOP", "250")
		// SMTP smuggling: "\n.\n" does not end the message; the smuggled
		// transaction is message text, and only one reply comes.
		c.cmd("MAIL FROM:<app@inb.test>", "250")
		c.cmd("RCPT TO:<smuggle-carrier@far.example>", "250")
		c.cmd("DATA", "354")
		c.send("Subject: smuggle\r\n\r\nhello\n.\nMAIL FROM:<evil@inb.test>\nRCPT TO:<refused-smuggled@far.example>\nDATA\nevil\n.\r\n.\r\n")
		accept(c.expect("250 2.0.0"), "acme", "smuggle-carrier@far.example")
		c.cmd("NOOP", "250 2.0.0") // no stray replies were queued
		c.cmd("QUIT", "221")

		// STARTTLS with commands pipelined behind it: discarded (RFC 3207).
		c = inbDial(t, submit, "127.0.0.1", false)
		c.expect("220")
		c.cmd("EHLO raw.inb.test", "250")
		c.send("STARTTLS\r\nAUTH PLAIN " + base64.StdEncoding.EncodeToString([]byte("\x00app1\x00secret1")) +
			"\r\nMAIL FROM:<evil@inb.test>\r\nRCPT TO:<refused-injected@far.example>\r\n")
		c.expect("220 2.0.0")
		c.handshake(&tls.Config{InsecureSkipVerify: true})
		c.cmd("EHLO raw.inb.test", "250")
		c.cmd("RCPT TO:<refused-injected@far.example>", "503 5.5.1") // no MAIL, no AUTH survived
		c.cmd("MAIL FROM:<app@inb.test>", "530 5.7.0")
		c.cmd("QUIT", "221")

		// Too many bad commands: 421 4.4.2 and the connection closes.
		c = inbDial(t, submit, "127.0.0.1", false)
		c.expect("220")
		for i := 0; i < 4; i++ {
			c.cmd("BOGUS", "500 5.5.2")
		}
		c.expect("421 4.4.2") // the fourth (max_bad_commands) ends the session
		c.closed()

		// Relay denied on smtps (no AUTH there) from outside relay_hosts.
		s := inbDial(t, smtps, "127.0.0.5", true)
		s.expect("220")
		s.cmd("EHLO raw.inb.test", "250")
		s.cmd("MAIL FROM:<app@inb.test>", "250")
		s.cmd("RCPT TO:<refused-relay@far.example>", "554 5.7.1")
		s.cmd("QUIT", "221")

		// Bare LF on smtps (bare_lf = reject): 550 5.6.0 after the end.
		s = inbDial(t, smtps, "127.0.0.1", true)
		s.expect("220")
		s.cmd("EHLO raw.inb.test", "250")
		s.cmd("MAIL FROM:<app@inb.test>", "250")
		s.cmd("RCPT TO:<refused-barelf@far.example>", "250")
		s.cmd("DATA", "354")
		s.send("Subject: bare\n\nbare LF lines\n.\r\n.\r\n")
		s.expect("550 5.6.0")
		s.cmd("NOOP", "250")
		s.cmd("QUIT", "221")

		// Connection limits on submit: 3 per address, 6 in all.
		var held []*inbConn
		for i := 0; i < 3; i++ {
			h := inbDial(t, submit, "127.0.0.6", false)
			h.expect("220")
			held = append(held, h)
		}
		x := inbDial(t, submit, "127.0.0.6", false)
		x.expect("421 4.3.2")
		x.closed()
		var refused string
	fill:
		for _, ip := range []string{"127.0.0.7", "127.0.0.8", "127.0.0.10", "127.0.0.11"} {
			for i := 0; i < 3; i++ {
				h := inbDial(t, submit, ip, false)
				last, _ := h.reply()
				if !strings.HasPrefix(last, "220") {
					refused = last
					break fill
				}
				held = append(held, h)
			}
		}
		if !strings.HasPrefix(refused, "421 4.3.2") || !strings.Contains(refused, "Too many connections") || len(held) < 4 || len(held) > 6 {
			t.Errorf("max_connections: refused with %q after %d connections", refused, len(held))
		}
		for _, h := range held {
			h.raw.Close()
		}
		g.alive(t, submit)
	})

	t.Run("AUTH guard", func(t *testing.T) {
		// From 127.0.0.9: two failures answered at once, the third after
		// auth_fail_delay, the fourth 421 4.7.0 and hang-up; then 421 4.7.0
		// at connect.
		for i := 1; i <= 4; i++ {
			c := inbDial(t, submit, "127.0.0.9", false)
			c.startTLS()
			start := time.Now()
			r := c.authPlain("app1", "wrong")
			d := time.Since(start)
			switch i {
			case 1, 2:
				if !strings.HasPrefix(r, "535 5.7.8") || d >= 700*time.Millisecond {
					t.Errorf("failure %d: %q after %v", i, r, d)
				}
				c.cmd("QUIT", "221")
			case 3:
				if !strings.HasPrefix(r, "535 5.7.8") || d < 650*time.Millisecond {
					t.Errorf("failure 3: %q after %v, want 535 after >= 700ms", r, d)
				}
				c.cmd("QUIT", "221")
			case 4:
				if !strings.HasPrefix(r, "421 4.7.0") {
					t.Errorf("failure 4: %q, want 421 4.7.0", r)
				}
				c.closed()
			}
		}
		c := inbDial(t, submit, "127.0.0.9", false)
		c.expect("421 4.7.0")
		c.closed()
		// Other addresses are not affected.
		c = inbDial(t, submit, "127.0.0.1", false)
		c.startTLS()
		if r := c.authPlain("app1", "secret1"); !strings.HasPrefix(r, "235") {
			t.Errorf("AUTH from another address: %q", r)
		}
	})

	t.Run("timeouts", func(t *testing.T) {
		// smtps has 2s timeouts: idle after the greeting, a command inside a
		// transaction, data inside DATA. All three run at once.
		var wg sync.WaitGroup
		check := func(name string, prep func(c *inbConn)) {
			wg.Add(1)
			go func() {
				defer wg.Done()
				c := inbDial(t, smtps, "127.0.0.1", true)
				c.expect("220")
				prep(c)
				start := time.Now()
				last, _ := c.reply()
				if d := time.Since(start); !strings.HasPrefix(last, "421 4.4.2") || d < 1500*time.Millisecond {
					t.Errorf("%s: %q after %v", name, last, d)
				}
			}()
		}
		check("idle", func(c *inbConn) {})
		check("command", func(c *inbConn) {
			c.cmd("EHLO raw.inb.test", "250")
			c.cmd("MAIL FROM:<app@inb.test>", "250")
		})
		check("data", func(c *inbConn) {
			c.cmd("EHLO raw.inb.test", "250")
			c.cmd("MAIL FROM:<app@inb.test>", "250")
			c.cmd("RCPT TO:<refused-timeout@far.example>", "250")
			c.cmd("DATA", "354")
			c.send("Subject: stalled\r\n\r\npartial")
		})
		wg.Wait()
	})

	t.Run("certificate reload on SIGHUP", func(t *testing.T) {
		inbWriteCert(t, certFile, keyFile, "renewed.inb.test")
		if err := g.p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		waitFor(t, 10*time.Second, "the renewed certificate", func() (bool, string) {
			cn := inbCertCN(t, submit)
			return cn == "renewed.inb.test", "CN " + cn
		})
	})

	// Every accepted message has its Reception with the right tenant (AUTH
	// users carry theirs) and reaches the sink; nothing refused was stored.
	for _, a := range acc {
		rec := g.reception(t, a.id)
		if rec.Tenant != a.tenant {
			t.Errorf("%s (%s): tenant %q, want %q", a.id, a.rcpt, rec.Tenant, a.tenant)
		}
	}
	waitFor(t, 30*time.Second, "every accepted message at the sink", func() (bool, string) {
		got := sink.arrivals(t)
		var missing []string
		for _, a := range acc {
			if findArrival(got, a.rcpt) == nil {
				missing = append(missing, a.rcpt)
			}
		}
		return len(missing) == 0, fmt.Sprintf("missing %v", missing)
	})
	for _, r := range g.records(t) {
		for _, rcpt := range r.Recipients() {
			if strings.HasPrefix(rcpt, "refused-") {
				t.Errorf("a refused message was stored: %s", r.Raw)
			}
		}
	}
	for _, a := range sink.arrivals(t) {
		if bytes.Contains(a.Data, []byte("refused-smuggled")) && findArrival([]arrival{a}, "smuggle-carrier@far.example") == nil {
			t.Errorf("the smuggled transaction was delivered on its own: %+v", a.Rcpts)
		}
		for _, r := range a.Rcpts {
			if strings.HasPrefix(r, "refused-") {
				t.Errorf("a refused recipient was delivered: %s", r)
			}
		}
	}
	g.alive(t, submit)
}

// inbStartPostfix runs a private Postfix (its own config and queue
// directories under a temp dir) whose smtpd listens on a free loopback port
// and relays everything to gannet at relayhost over STARTTLS with SASL AUTH.
// It returns the smtpd address.
func inbStartPostfix(t *testing.T, relayhost, user, pass string) string {
	t.Helper()
	if m, _ := filepath.Glob("/usr/lib/*/sasl2/libplain.so*"); len(m) == 0 {
		missingPeer(t, "Cyrus SASL PLAIN module", "Debian package libsasl2-modules")
	}
	p := newPrivatePostfix(t)
	port := freePort(t, false, "127.0.0.1")
	smtpd := hostPort("127.0.0.1", port)
	rhost, rport, _ := strings.Cut(relayhost, ":")
	main := p.mainCF("pf.inb.test", "inb.test", "127.0.0.1", fmt.Sprintf(`mynetworks = 127.0.0.0/8
smtpd_relay_restrictions = permit_mynetworks, reject
relayhost = [%[1]s]:%[2]s
smtp_sasl_auth_enable = yes
smtp_sasl_password_maps = texthash:%[3]s/sasl_passwd
smtp_sasl_security_options = noanonymous
smtp_sasl_tls_security_options = noanonymous
smtp_tls_security_level = encrypt
smtp_tls_loglevel = 1
`, rhost, rport, p.etc))
	p.start(t, main, masterCF(smtpd+" inet n - n - - smtpd"),
		map[string]string{"sasl_passwd": fmt.Sprintf("[%s]:%s %s:%s\n", rhost, rport, user, pass)}, smtpd)
	return smtpd
}

// inbDeadRelayConfig starts a config without HTTP whose relay_to ({{DEAD}})
// is a loopback port nothing listens on, so accepted mail stays queued; its
// last table is [queue].
const inbDeadRelayConfig = `http_listener = []

[spool]
path = "DIR/spool"

[log]
path = "DIR/logs"

[delivery]
relay_to = "{{DEAD}}"

[queue]
retry_interval = "1h"
`

const inbQueueConfig = "# gannet queue-full e2e test (generated)\n" + inbDeadRelayConfig + `max_queue_depth = 2

[[smtp_listener]]
name = "in"
listen = "{{ADDR}}"
hostname = "full.inb.test"
relay_hosts = ["127.0.0.1/32"]
`

// TestInboundQueueFull: with max_queue_depth = 2 and the smarthost down,
// messages stay queued; a MAIL past the limit gets 452 4.3.1, and so does
// the end of DATA of a transaction that passed MAIL before the queue filled;
// the sessions survive and nothing refused is stored.
func TestInboundQueueFull(t *testing.T) {
	t.Parallel()
	addr := hostPort("127.0.0.1", freePort(t, false, "127.0.0.1"))
	dead := hostPort("127.0.0.1", freePort(t, false, "127.0.0.1")) // nothing listens there
	cfg := strings.NewReplacer("{{ADDR}}", addr, "{{DEAD}}", dead).Replace(inbQueueConfig)
	g := inbStartGannet(t, t.TempDir(), cfg, addr)

	send := func(c *inbConn, rcpt string) {
		c.cmd("MAIL FROM:<app@inb.test>", "250")
		c.cmd("RCPT TO:<"+rcpt+">", "250")
		c.cmd("DATA", "354")
	}
	a := inbDial(t, addr, "127.0.0.1", false)
	a.expect("220")
	a.cmd("EHLO raw.inb.test", "250")
	send(a, "queued-1@far.example")
	a.send(inbMessage("one") + ".\r\n")
	id1 := acceptedID(t, strings.TrimSpace(a.expect("250 2.0.0")))

	// b passes MAIL while the queue holds one message; c fills it.
	b := inbDial(t, addr, "127.0.0.1", false)
	b.expect("220")
	b.cmd("EHLO raw.inb.test", "250")
	send(b, "refused-late@far.example")
	c := inbDial(t, addr, "127.0.0.1", false)
	c.expect("220")
	c.cmd("EHLO raw.inb.test", "250")
	send(c, "queued-2@far.example")
	c.send(inbMessage("two") + ".\r\n")
	id2 := acceptedID(t, strings.TrimSpace(c.expect("250 2.0.0")))
	// Now full: b's end of DATA and any new MAIL get 452 4.3.1.
	b.send(inbMessage("late") + ".\r\n")
	b.expect("452 4.3.1")
	b.cmd("NOOP", "250")
	a.cmd("MAIL FROM:<app@inb.test>", "452 4.3.1")
	a.cmd("RCPT TO:<refused-full@far.example>", "503 5.5.1")
	a.cmd("NOOP", "250")
	// The two accepted messages are queued (the smarthost is down), none
	// lost; nothing refused was stored.
	g.reception(t, id1)
	g.reception(t, id2)
	for _, r := range g.records(t) {
		if r.Type == "Reception" && r.ID != id1 && r.ID != id2 {
			t.Errorf("unexpected Reception: %s", r.Raw)
		}
		for _, rcpt := range r.Recipients() {
			if strings.HasPrefix(rcpt, "refused-") {
				t.Errorf("a refused message was stored: %s", r.Raw)
			}
		}
	}
	g.alive(t, addr)
}
