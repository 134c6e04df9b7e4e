package smtpwire

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"
)

// Real SMTP clients (swaks, Python smtplib, Postfix smtp-source) against a
// Session behind a minimal blocking test host. The host is test code only:
// it shows the contract of Feed/Respond/Output with real sockets.

type peerHost struct {
	ln       net.Listener
	cfg      ServerConfig
	tls      *tls.Config
	mu       sync.Mutex
	messages []Event
	wg       sync.WaitGroup
}

func needPeer(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("test peer %s missing", name)
		}
		t.Skipf("SKIPPING: test peer %s not installed", name)
	}
	return p
}

func startPeerHost(t *testing.T, cfg ServerConfig) *peerHost {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h := &peerHost{ln: ln, cfg: cfg, tls: selfSignedTLS(t)}
	h.wg.Add(1)
	go func() {
		defer h.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			h.wg.Add(1)
			go func() {
				defer h.wg.Done()
				h.serve(c)
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		h.wg.Wait()
	})
	return h
}

func (h *peerHost) serve(c net.Conn) {
	defer func() { c.Close() }()
	s := NewSession(&h.cfg)
	if _, err := c.Write(s.Greeting()); err != nil {
		return
	}
	buf := make([]byte, 0, 64<<10)
	rd := make([]byte, 32<<10)
	for {
		c.SetDeadline(time.Now().Add(10 * time.Second))
		n, err := c.Read(rd)
		if err != nil {
			return
		}
		buf = append(buf, rd[:n]...)
		for {
			used, ev := s.Feed(buf)
			buf = buf[used:]
			switch ev.Kind {
			case EventMail, EventRcpt:
				s.Respond(nil)
			case EventAuth:
				a := ev.Auth
				ok := a.Username == "app1" && (a.Password == "secret" || a.VerifyCRAMMD5("secret"))
				if ok {
					s.Respond(nil)
				} else {
					s.Respond(&ReplyAuthFailed)
				}
			case EventMessage:
				h.mu.Lock()
				h.messages = append(h.messages, ev)
				h.mu.Unlock()
				s.Respond(&Reply{Code: 250, Enhanced: "2.0.0", Lines: []string{"OK id=T1"}})
			}
			if _, err := c.Write(s.Output()); err != nil {
				return
			}
			s.ConsumeOutput(len(s.Output()))
			switch ev.Kind {
			case EventQuit, EventClose:
				return
			case EventStartTLS:
				buf = buf[:0] // RFC 3207 §5: drop what came before the handshake
				tc := tls.Server(c, h.tls)
				if err := tc.Handshake(); err != nil {
					return
				}
				c = tc
				s.TLSStarted()
			}
			if ev.Kind == EventNone {
				break
			}
		}
	}
}

func (h *peerHost) got() []Event {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]Event(nil), h.messages...)
}

func selfSignedTLS(t *testing.T) *tls.Config {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "mx.gannet.test"},
		DNSNames: []string{"mx.gannet.test"}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}}
}

func runPeer(t *testing.T, name string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", name, err, out)
	}
	return string(out)
}

func peerConfig() ServerConfig {
	return ServerConfig{
		Hostname: "mx.gannet.test", MaxMessageSize: 10 << 20, MaxRecipients: 100,
		StartTLS: true, AuthMechs: []string{"PLAIN", "LOGIN", "CRAM-MD5"}, AuthRequired: true, AuthRequireTLS: false,
		CRAMChallenge: func() string { return "<" + time.Now().Format("150405.000000") + "@mx.gannet.test>" },
	}
}

// swaks: STARTTLS, AUTH LOGIN, PIPELINING, two recipients, dot lines.
func TestPeerSwaks(t *testing.T) {
	swaks := needPeer(t, "swaks")
	h := startPeerHost(t, peerConfig())
	out := runPeer(t, swaks, "--server", h.ln.Addr().String(), "--from", "a@client.example",
		"--to", "b@dest.example,c@dest.example", "--pipeline", "-tls", "--auth", "LOGIN",
		"--auth-user", "app1", "--auth-password", "secret", "--helo", "client.example",
		"--data", "Subject: swaks\n\n.leading dot\n.\n..two\nend\n")
	if !strings.Contains(out, "250 2.0.0 OK id=T1") {
		t.Fatalf("no 250 for the message:\n%s", out)
	}
	msgs := h.got()
	if len(msgs) != 1 {
		t.Fatalf("%d messages", len(msgs))
	}
	e, body := msgs[0].Envelope, string(msgs[0].Body)
	if !e.TLS || e.AuthUser != "app1" || len(e.Rcpts) != 2 || e.Protocol() != "ESMTPSA" {
		t.Errorf("envelope %+v", e)
	}
	if !strings.Contains(body, "Subject: swaks\r\n\r\n.leading dot\r\n.\r\n..two\r\nend\r\n") {
		t.Errorf("body %q", body)
	}
}

// Python smtplib: AUTH CRAM-MD5 (its first choice), then sendmail.
func TestPeerPythonSmtplib(t *testing.T) {
	if _, err := os.Stat("/usr/bin/python3"); err != nil {
		needPeer(t, "/usr/bin/python3")
	}
	h := startPeerHost(t, peerConfig())
	_, port, _ := net.SplitHostPort(h.ln.Addr().String())
	script := `
import smtplib, sys
s = smtplib.SMTP("127.0.0.1", int(sys.argv[1]), local_hostname="py.example", timeout=20)
s.ehlo()
assert "cram-md5" in s.esmtp_features["auth"].lower(), s.esmtp_features
s.login("app1", "secret")
msg = "Subject: py\r\n\r\n.dot\r\n.\r\nlast line".encode()
r = s.sendmail("a@client.example", ["b@dest.example"], msg)
code, _ = s.login("app1", "secret")  # smtplib treats 503 "already authenticated" as success
print("second login", code)
s.quit()
print("sent", r)
`
	out := runPeer(t, "/usr/bin/python3", "-c", script, port)
	if !strings.Contains(out, "sent {}") || !strings.Contains(out, "second login 503") {
		t.Fatalf("python:\n%s", out)
	}
	msgs := h.got()
	if len(msgs) != 1 || msgs[0].Envelope.AuthUser != "app1" {
		t.Fatalf("messages %v", msgs)
	}
	if body := string(msgs[0].Body); body != "Subject: py\r\n\r\n.dot\r\n.\r\nlast line\r\n" {
		t.Errorf("body %q", body)
	}
}

// Postfix smtp-source: several sessions, several messages each.
func TestPeerSmtpSource(t *testing.T) {
	src := needPeer(t, "smtp-source")
	cfg := peerConfig()
	cfg.AuthRequired = false
	h := startPeerHost(t, cfg)
	runPeer(t, src, "-s", "2", "-m", "10", "-l", "2048", "-f", "a@client.example", "-t", "b@dest.example", h.ln.Addr().String())
	msgs := h.got()
	if len(msgs) != 10 {
		t.Fatalf("%d messages, want 10", len(msgs))
	}
	for _, m := range msgs {
		if len(m.Body) < 2048 || !strings.HasSuffix(string(m.Body), "\r\n") {
			t.Errorf("body of %d bytes", len(m.Body))
		}
	}
}
