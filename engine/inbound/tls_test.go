package inbound

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"net/smtp"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"gannet/smtpwire"
)

// testCert makes a self-signed certificate for mx.gannet.test and returns
// the server config and a client config that trusts it.
func testCert(t testing.TB) (server, client *tls.Config) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "mx.gannet.test"},
		DNSNames:     []string{"mx.gannet.test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	server = &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key, Leaf: cert}}}
	client = &tls.Config{RootCAs: pool, ServerName: "mx.gannet.test"}
	return server, client
}

// fakeAuth accepts app1/secret (tenant acme) for PLAIN, LOGIN and CRAM-MD5.
type fakeAuth struct{ calls atomic.Int64 }

func (a *fakeAuth) Authenticate(ctx context.Context, cred smtpwire.AuthCredentials) (string, string, bool) {
	a.calls.Add(1)
	if cred.Username != "app1" {
		return "", "", false
	}
	if cred.Mechanism == "CRAM-MD5" {
		return "app1", "acme", cred.VerifyCRAMMD5("secret")
	}
	return "app1", "acme", cred.Password == "secret"
}

// countingMetrics counts what the listener reports.
type countingMetrics struct {
	opened, closed, received, errors, tlsFail atomic.Int64

	mu           sync.Mutex
	proxyRefused map[string]int
}

func (m *countingMetrics) ConnOpened(string)    { m.opened.Add(1) }
func (m *countingMetrics) ConnClosed(string)    { m.closed.Add(1) }
func (m *countingMetrics) Received(string, int) { m.received.Add(1) }
func (m *countingMetrics) ErrorIn(string, int)  { m.errors.Add(1) }
func (m *countingMetrics) TLSFailure(string)    { m.tlsFail.Add(1) }
func (m *countingMetrics) ProxyRefused(_, reason string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.proxyRefused == nil {
		m.proxyRefused = map[string]int{}
	}
	m.proxyRefused[reason]++
}

// refusedFor returns how many connections were refused for reason.
func (m *countingMetrics) refusedFor(reason string) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.proxyRefused[reason]
}

// TestStartTLS sends a message with net/smtp over STARTTLS and checks the
// session facts, and that STARTTLS is no longer offered under TLS.
func TestStartTLS(t *testing.T) {
	srvTLS, cliTLS := testCert(t)
	cfg := testListener()
	cfg.TLSConfig = srvTLS
	acc := &memAcceptor{}
	_, addr := startServer(t, cfg, acc, Options{})
	c, err := smtp.Dial(addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Hello("client.example.test"); err != nil {
		t.Fatal(err)
	}
	if ok, _ := c.Extension("STARTTLS"); !ok {
		t.Fatal("STARTTLS not offered")
	}
	if err := c.StartTLS(cliTLS); err != nil {
		t.Fatal(err)
	}
	if ok, _ := c.Extension("STARTTLS"); ok {
		t.Error("STARTTLS offered again under TLS")
	}
	body := "Subject: tls\r\n\r\n" + strings.Repeat("0123456789abcdef", 3000) + "\r\n"
	sendVia(t, c, "a@example.test", "b@example.test", body)
	if err := c.Quit(); err != nil {
		t.Fatal(err)
	}
	msgs := acc.messages()
	if len(msgs) != 1 {
		t.Fatalf("got %d messages", len(msgs))
	}
	m := msgs[0]
	if string(m.Body) != body {
		t.Errorf("body differs (%d bytes, want %d)", len(m.Body), len(body))
	}
	if m.TLS == nil || m.TLS.Version < tls.VersionTLS12 || !m.Envelope.TLS {
		t.Errorf("TLS facts: %+v / %+v", m.TLS, m.Envelope)
	}
	// net/smtp declares SMTPUTF8 whenever it is offered (RFC 6531 §3.7.3).
	if p := m.Envelope.Protocol(); p != "ESMTPS" && p != "UTF8SMTPS" {
		t.Errorf("protocol %q", p)
	}
}

func sendVia(t *testing.T, c *smtp.Client, from, to, body string) {
	t.Helper()
	if err := c.Mail(from); err != nil {
		t.Fatal(err)
	}
	if err := c.Rcpt(to); err != nil {
		t.Fatal(err)
	}
	w, err := c.Data()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write([]byte(body)); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestStartTLSDiscardsPipelined: commands pipelined behind STARTTLS, before
// the handshake, are discarded (RFC 3207 §4.2, CVE-2011-0411).
func TestStartTLSDiscardsPipelined(t *testing.T) {
	srvTLS, cliTLS := testCert(t)
	cfg := testListener()
	cfg.TLSConfig = srvTLS
	acc := &memAcceptor{}
	_, addr := startServer(t, cfg, acc, Options{})
	c := dialRaw(t, addr)
	c.hello()
	c.send("STARTTLS\r\nMAIL FROM:<evil@example.test>\r\nRCPT TO:<victim@example.test>\r\n")
	c.expect(220, "2.0.0")
	if c.r.Buffered() > 0 {
		t.Fatalf("bytes after the 220: %d", c.r.Buffered())
	}
	tc := tls.Client(c.conn, cliTLS)
	if err := tc.Handshake(); err != nil {
		t.Fatal(err)
	}
	tlsC := &rawClient{t: t, conn: tc, r: bufio.NewReader(tc)}
	// The first reply under TLS answers our EHLO, not the injected MAIL.
	tlsC.send("EHLO client.example.test\r\n")
	r := tlsC.expect(250, "")
	if !strings.Contains(r.Lines[0], "mx.gannet.test") {
		t.Fatalf("first reply under TLS: %q", r.String())
	}
	tlsC.send("RCPT TO:<victim@example.test>\r\n")
	tlsC.expect(503, "5.5.1")
	tlsC.send("QUIT\r\n")
	tlsC.expect(221, "")
}

// TestImplicitTLS: a port-465 style listener handshakes first, then greets.
func TestImplicitTLS(t *testing.T) {
	srvTLS, cliTLS := testCert(t)
	cfg := testListener()
	cfg.TLSConfig = srvTLS
	cfg.ImplicitTLS = true
	acc := &memAcceptor{}
	_, addr := startServer(t, cfg, acc, Options{})
	conn, err := tls.Dial("tcp", addr, cliTLS)
	if err != nil {
		t.Fatal(err)
	}
	c, err := smtp.NewClient(conn, "mx.gannet.test")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if ok, _ := c.Extension("STARTTLS"); ok {
		t.Error("STARTTLS offered on an implicit TLS listener")
	}
	sendVia(t, c, "a@example.test", "b@example.test", "Subject: 465\r\n\r\nimplicit\r\n")
	if err := c.Quit(); err != nil {
		t.Fatal(err)
	}
	msgs := acc.messages()
	if len(msgs) != 1 || string(msgs[0].Body) != "Subject: 465\r\n\r\nimplicit\r\n" || msgs[0].TLS == nil {
		t.Fatalf("messages %+v", msgs)
	}
}

// trickleConn writes in tiny pieces with pauses, so that the server reads
// TLS records split at arbitrary points.
type trickleConn struct {
	net.Conn
	chunk int
}

func (c trickleConn) Write(b []byte) (int, error) {
	n := 0
	for len(b) > 0 {
		k := min(c.chunk, len(b))
		m, err := c.Conn.Write(b[:k])
		n += m
		if err != nil {
			return n, err
		}
		b = b[k:]
		time.Sleep(200 * time.Microsecond)
	}
	return n, nil
}

// TestTLSRecordsSplitAcrossReads guards the assumption design (a) rests on:
// crypto/tls keeps a connection, and the partial record, after a read error
// that is a temporary net.Error. Every record reaches the server in 7-byte
// pieces, during the handshake and after it.
func TestTLSRecordsSplitAcrossReads(t *testing.T) {
	srvTLS, cliTLS := testCert(t)
	cfg := testListener()
	cfg.TLSConfig = srvTLS
	cfg.ImplicitTLS = true
	acc := &memAcceptor{}
	_, addr := startServer(t, cfg, acc, Options{})
	raw, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	raw.(*net.TCPConn).SetNoDelay(true)
	tc := tls.Client(trickleConn{raw, 7}, cliTLS)
	c, err := smtp.NewClient(tc, "mx.gannet.test")
	if err != nil {
		t.Fatal(err)
	}
	body := "Subject: split\r\n\r\n" + strings.Repeat("split records ", 200) + "\r\n"
	sendVia(t, c, "a@example.test", "b@example.test", body)
	// The server closes right after its 221, so the client's slow
	// close_notify may meet a closed socket; only the 221 matters.
	if err := c.Quit(); err != nil && !strings.Contains(err.Error(), "closeNotify") {
		t.Fatal(err)
	}
	msgs := acc.messages()
	if len(msgs) != 1 || string(msgs[0].Body) != body {
		t.Fatalf("got %d messages", len(msgs))
	}
}

// TestTLSHandshakeFailure: garbage instead of a ClientHello closes the
// connection, counts a TLS failure and leaks nothing.
func TestTLSHandshakeFailure(t *testing.T) {
	srvTLS, _ := testCert(t)
	cfg := testListener()
	cfg.TLSConfig = srvTLS
	m := &countingMetrics{}
	srv, addr := startServer(t, cfg, &memAcceptor{}, Options{Metrics: m})
	c := dialRaw(t, addr)
	c.hello()
	c.send("STARTTLS\r\n")
	c.expect(220, "")
	c.send("EHLO this is not TLS\r\n\r\n")
	c.expectClosed()
	waitFor(t, 2*time.Second, "connection count 0", func() bool { return srv.OpenConnections() == 0 })
	if m.tlsFail.Load() != 1 || m.opened.Load() != 1 || m.closed.Load() != 1 {
		t.Errorf("metrics: tls failures %d opened %d closed %d", m.tlsFail.Load(), m.opened.Load(), m.closed.Load())
	}
}

// TestAuth covers AUTH with auth_require_tls from outside relay_hosts:
// nothing offered before TLS, 538 5.7.11 when tried, 530 5.7.0 for MAIL
// before AUTH, 535 5.7.8 for a wrong password, then PLAIN and CRAM-MD5
// succeed and the client may relay.
func TestAuth(t *testing.T) {
	srvTLS, cliTLS := testCert(t)
	cfg := testListener()
	cfg.TLSConfig = srvTLS
	cfg.AuthMechs = []string{"PLAIN", "LOGIN", "CRAM-MD5"}
	cfg.AuthRequireTLS = true
	acc := &memAcceptor{}
	auth := &fakeAuth{}
	_, addr := startServer(t, cfg, acc, Options{Authenticator: auth})

	c := dialRawFrom(t, addr, "127.0.0.9")
	r := c.hello()
	if hasLine(r, "AUTH") {
		t.Errorf("AUTH offered before TLS: %q", r.Lines)
	}
	c.send("AUTH PLAIN AGFwcDEAc2VjcmV0\r\n") // \0app1\0secret
	c.expect(538, "5.7.11")
	c.send("MAIL FROM:<a@example.test>\r\n")
	c.expect(530, "5.7.0")

	dialTLS := func(t *testing.T, mech string) *smtp.Client {
		conn, err := (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.9")}}).Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		sc, err := smtp.NewClient(conn, "mx.gannet.test")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { sc.Close() })
		if err := sc.StartTLS(cliTLS); err != nil {
			t.Fatal(err)
		}
		if ok, mechs := sc.Extension("AUTH"); !ok || !strings.Contains(mechs, mech) {
			t.Fatalf("AUTH under TLS: %v %q", ok, mechs)
		}
		return sc
	}
	for _, mech := range []string{"PLAIN", "CRAM-MD5"} {
		t.Run(mech, func(t *testing.T) {
			bad, good := smtp.PlainAuth("", "app1", "wrong", "mx.gannet.test"), smtp.PlainAuth("", "app1", "secret", "mx.gannet.test")
			if mech == "CRAM-MD5" {
				bad, good = smtp.CRAMMD5Auth("app1", "wrong"), smtp.CRAMMD5Auth("app1", "secret")
			}
			// net/smtp gives up the connection after a failed AUTH.
			err := dialTLS(t, mech).Auth(bad)
			if err == nil || !strings.Contains(err.Error(), "535") {
				t.Fatalf("wrong password: %v", err)
			}
			sc := dialTLS(t, mech)
			if err := sc.Auth(good); err != nil {
				t.Fatal(err)
			}
			sendVia(t, sc, "a@example.test", "far@example.test", "Subject: auth "+mech+"\r\n\r\nx\r\n")
			_ = sc.Quit()
		})
	}
	msgs := acc.messages()
	if len(msgs) != 2 {
		t.Fatalf("got %d messages", len(msgs))
	}
	for _, m := range msgs {
		if m.AuthUser != "app1" || m.Tenant != "acme" || !strings.HasSuffix(m.Envelope.Protocol(), "SMTPSA") {
			t.Errorf("auth facts: user %q tenant %q protocol %q", m.AuthUser, m.Tenant, m.Envelope.Protocol())
		}
	}
}

// TestSwaksSTARTTLS and TestPythonSTARTTLS drive STARTTLS with real clients.
func TestSwaksSTARTTLS(t *testing.T) {
	swaks := needTool(t, "swaks")
	srvTLS, _ := testCert(t)
	cfg := testListener()
	cfg.TLSConfig = srvTLS
	acc := &memAcceptor{}
	_, addr := startServer(t, cfg, acc, Options{})
	host, port := splitHostPort(t, addr)
	out, err := exec.Command(swaks, "--server", host, "--port", port, "-tls", "--pipeline",
		"--from", "app@example.test", "--to", "user@example.test", "--helo", "client.example.test",
		"--body", "over TLS\n", "--suppress-data").CombinedOutput()
	if err != nil {
		t.Fatalf("swaks: %v\n%s", err, out)
	}
	msgs := acc.messages()
	if len(msgs) != 1 || msgs[0].TLS == nil || !strings.Contains(string(msgs[0].Body), "\r\n\r\nover TLS\r\n") {
		t.Fatalf("messages: %d", len(msgs))
	}
}

func TestPythonSTARTTLS(t *testing.T) {
	py := needTool(t, "/usr/bin/python3")
	srvTLS, _ := testCert(t)
	cfg := testListener()
	cfg.TLSConfig = srvTLS
	acc := &memAcceptor{}
	_, addr := startServer(t, cfg, acc, Options{})
	host, port := splitHostPort(t, addr)
	script := `
import smtplib, ssl, sys
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
s = smtplib.SMTP(sys.argv[1], int(sys.argv[2]), local_hostname="py.example.test", timeout=10)
s.starttls(context=ctx)
s.ehlo()
assert not s.has_extn("starttls")
s.sendmail("py@example.test", ["x@example.test"], b"Subject: py tls\r\n\r\nsecret stuff\r\n")
s.quit()
`
	out, err := exec.Command(py, "-c", script, host, port).CombinedOutput()
	if err != nil {
		t.Fatalf("python: %v\n%s", err, out)
	}
	msgs := acc.messages()
	if len(msgs) != 1 || msgs[0].TLS == nil || string(msgs[0].Body) != "Subject: py tls\r\n\r\nsecret stuff\r\n" {
		t.Fatalf("messages %d", len(msgs))
	}
}

// TestImplicitTLSRefusalOverTLS: on a port-465 style listener a connection
// over the limits gets its 421 after the handshake, over TLS, not as
// plaintext bytes that the client's TLS stack would take for a broken
// handshake; it is not counted, so the listener's count stays right.
func TestImplicitTLSRefusalOverTLS(t *testing.T) {
	srvTLS, cliTLS := testCert(t)
	cfg := testListener()
	cfg.TLSConfig = srvTLS
	cfg.ImplicitTLS = true
	cfg.MaxConnectionsPerIP = 1
	_, addr := startServer(t, cfg, &memAcceptor{}, Options{})
	greet := func() (*tls.Conn, string) {
		t.Helper()
		conn, err := tls.Dial("tcp", addr, cliTLS)
		if err != nil {
			t.Fatalf("TLS handshake: %v", err)
		}
		conn.SetDeadline(time.Now().Add(5 * time.Second))
		line, err := bufio.NewReader(conn).ReadString('\n')
		if err != nil {
			t.Fatalf("reading the first line over TLS: %v", err)
		}
		return conn, line
	}
	first, line := greet()
	if !strings.HasPrefix(line, "220 ") {
		t.Fatalf("first connection: %q", line)
	}
	second, line := greet()
	if !strings.HasPrefix(line, "421 4.3.2 ") {
		t.Fatalf("connection over the limit: %q, want a 421 over TLS", line)
	}
	if _, err := second.Read(make([]byte, 1)); err == nil {
		t.Fatal("refused connection still open after its 421")
	}
	second.Close()
	// The refused connection was not counted: once the first one is gone,
	// the next is admitted.
	first.Close()
	deadline := time.Now().Add(5 * time.Second)
	for {
		c, line := greet()
		c.Close()
		if strings.HasPrefix(line, "220 ") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("never admitted again: %q", line)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
