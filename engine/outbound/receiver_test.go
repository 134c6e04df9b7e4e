package outbound

import (
	"bufio"
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"math/big"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// testReceiver is a small SMTP server written for these tests: it records
// what arrives on the wire (including the raw, still dot-stuffed DATA
// bytes), whether the envelope came pipelined, and how many sessions were
// open at once. Its replies can be changed per command.
type testReceiver struct {
	t    testing.TB
	ln   net.Listener
	Addr netip.AddrPort

	// Configuration, set before the first connection.
	Pipelining bool
	EightBit   bool
	UTF8       bool
	Size       int
	TLS        *tls.Config // offer STARTTLS with this config
	Greeting   string      // default "220 mx.test ESMTP"
	EHLOReply  string      // replaces the EHLO reply (e.g. "502 5.5.1 no")
	// Replies; nil means accept.
	OnMail func(from string) string
	OnRcpt func(rcpt string) string
	OnData func() string // reply to DATA; default 354
	OnDot  func(body []byte) string
	// AuthMechs, when set, are offered in EHLO ("PLAIN LOGIN"); Users are
	// the accounts (name → password). ImplicitTLS: TLS from the first
	// byte with the TLS config.
	AuthMechs   string
	Users       map[string]string
	ImplicitTLS bool
	// CloseAfterTx closes the session right after this many transactions.
	CloseAfterTx int
	// DropAtDot closes the connection after the body instead of replying.
	DropAtDot bool
	// RequireTLS offers REQUIRETLS (RFC 8689) once TLS is on.
	RequireTLS bool

	mu         sync.Mutex
	txs        []rxTx
	sessions   int
	open       int
	maxOpen    int
	commands   []string
	wg         sync.WaitGroup
	conns      map[net.Conn]struct{}
	stopped    bool
	quitCount  int
	rsetCount  int
	heloUsed   bool
	tlsHandsOK int
	tlsResumed int // handshakes that resumed an earlier session
}

// rxTx is one received transaction.
type rxTx struct {
	From      string
	MailLine  string
	Rcpts     []string // accepted ones
	Raw       []byte   // DATA bytes as on the wire, up to and including ".\r\n"
	Body      []byte   // unstuffed
	TLS       bool
	AuthUser  string // the account logged in as
	Pipelined bool   // RCPT and DATA had arrived before MAIL was answered
}

func newTestReceiver(t testing.TB, ip string) *testReceiver {
	t.Helper()
	ln, err := net.Listen("tcp", ip+":0")
	if err != nil {
		t.Fatal(err)
	}
	r := &testReceiver{t: t, ln: ln, Addr: netip.MustParseAddrPort(ln.Addr().String()), Pipelining: true, EightBit: true, UTF8: true, conns: map[net.Conn]struct{}{}}
	t.Cleanup(r.Close)
	return r
}

// Start accepts connections until Close.
func (r *testReceiver) Start() *testReceiver {
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		for {
			c, err := r.ln.Accept()
			if err != nil {
				return
			}
			r.mu.Lock()
			if r.stopped {
				r.mu.Unlock()
				c.Close()
				return
			}
			r.conns[c] = struct{}{}
			r.sessions++
			r.open++
			r.maxOpen = max(r.maxOpen, r.open)
			r.mu.Unlock()
			r.wg.Add(1)
			go func() {
				defer r.wg.Done()
				r.serve(c)
				r.mu.Lock()
				delete(r.conns, c)
				r.mu.Unlock()
				c.Close()
			}()
		}
	}()
	return r
}

func (r *testReceiver) Close() {
	r.mu.Lock()
	r.stopped = true
	for c := range r.conns {
		c.Close()
	}
	r.mu.Unlock()
	r.ln.Close()
	r.wg.Wait()
}

func (r *testReceiver) Txs() []rxTx {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]rxTx(nil), r.txs...)
}

func (r *testReceiver) stats() (sessions, maxOpen int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.sessions, r.maxOpen
}

func (r *testReceiver) Commands() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.commands...)
}

// endSession marks the session closed from the client's point of view (at
// QUIT or at EOF), before the socket closes.
func (r *testReceiver) endSession(ended *bool) {
	if *ended {
		return
	}
	*ended = true
	r.mu.Lock()
	r.open--
	r.mu.Unlock()
}

func (r *testReceiver) serve(c net.Conn) {
	ended := false
	defer r.endSession(&ended)
	c.SetDeadline(time.Now().Add(20 * time.Second))
	br := bufio.NewReader(c)
	w := func(s string) bool {
		_, err := c.Write([]byte(s + "\r\n"))
		return err == nil
	}
	inTLS := false
	if r.ImplicitTLS {
		tc := tls.Server(c, r.TLS)
		if err := tc.Handshake(); err != nil {
			return
		}
		c, br, inTLS = tc, bufio.NewReader(tc), true
	}
	authUser := ""
	greet := r.Greeting
	if greet == "" {
		greet = "220 mx.test ESMTP"
	}
	if !w(greet) || !strings.HasPrefix(greet, "220") {
		return
	}
	var tx *rxTx
	txDone := 0
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return
		}
		line = strings.TrimRight(line, "\r\n")
		r.mu.Lock()
		r.commands = append(r.commands, line)
		r.mu.Unlock()
		verb := strings.ToUpper(line)
		if i := strings.IndexAny(verb, " :"); i >= 0 {
			verb = verb[:i]
		}
		switch verb {
		case "EHLO":
			if r.EHLOReply != "" {
				w(r.EHLOReply)
				continue
			}
			lines := []string{"mx.test"}
			if r.Pipelining {
				lines = append(lines, "PIPELINING")
			}
			if r.EightBit {
				lines = append(lines, "8BITMIME")
			}
			if r.UTF8 {
				lines = append(lines, "SMTPUTF8")
			}
			if r.Size > 0 {
				lines = append(lines, "SIZE "+itoa(r.Size))
			}
			if r.TLS != nil && !inTLS {
				lines = append(lines, "STARTTLS")
			}
			if r.RequireTLS && inTLS {
				lines = append(lines, "REQUIRETLS")
			}
			if r.AuthMechs != "" {
				lines = append(lines, "AUTH "+r.AuthMechs)
			}
			lines = append(lines, "ENHANCEDSTATUSCODES")
			for i, l := range lines {
				sep := "-"
				if i == len(lines)-1 {
					sep = " "
				}
				w("250" + sep + l)
			}
		case "HELO":
			r.mu.Lock()
			r.heloUsed = true
			r.mu.Unlock()
			w("250 mx.test")
		case "STARTTLS":
			if r.TLS == nil || inTLS {
				w("502 5.5.1 not here")
				continue
			}
			w("220 2.0.0 go ahead")
			tc := tls.Server(c, r.TLS)
			if err := tc.Handshake(); err != nil {
				return
			}
			r.mu.Lock()
			r.tlsHandsOK++
			if tc.ConnectionState().DidResume {
				r.tlsResumed++
			}
			r.mu.Unlock()
			c = tc
			br = bufio.NewReader(tc)
			inTLS = true
			tx = nil
		case "AUTH":
			f := strings.Fields(line)
			var name, pass string
			if len(f) == 3 && strings.EqualFold(f[1], "PLAIN") {
				b, _ := base64.StdEncoding.DecodeString(f[2])
				parts := strings.Split(string(b), "\x00")
				if len(parts) == 3 {
					name, pass = parts[1], parts[2]
				}
			} else if len(f) == 2 && strings.EqualFold(f[1], "LOGIN") {
				read := func(challenge string) string {
					w("334 " + challenge)
					l, _ := br.ReadString('\n')
					b, _ := base64.StdEncoding.DecodeString(strings.TrimSpace(l))
					return string(b)
				}
				name = read("VXNlcm5hbWU6")
				pass = read("UGFzc3dvcmQ6")
			}
			if want, ok := r.Users[name]; ok && want == pass && name != "" {
				authUser = name
				w("235 2.7.0 Authentication successful")
			} else {
				w("535 5.7.8 Error: authentication failed")
			}
		case "MAIL":
			tx = &rxTx{MailLine: line, TLS: inTLS, AuthUser: authUser}
			if i := strings.Index(line, "<"); i >= 0 {
				tx.From = line[i+1 : strings.Index(line, ">")]
			}
			// Pipelined: the whole group is already here (the client did not
			// wait for this reply). Give it a moment to arrive in full.
			tx.Pipelined = r.groupBuffered(c, br)
			rep := "250 2.1.0 ok"
			if r.OnMail != nil {
				rep = r.OnMail(tx.From)
			}
			if !strings.HasPrefix(rep, "2") {
				tx = nil
			}
			w(rep)
			if strings.HasPrefix(rep, "421") {
				return
			}
		case "RCPT":
			if tx == nil {
				w("503 5.5.1 MAIL first")
				continue
			}
			addr := line[strings.Index(line, "<")+1 : strings.Index(line, ">")]
			rep := "250 2.1.5 ok"
			if r.OnRcpt != nil {
				rep = r.OnRcpt(addr)
			}
			if strings.HasPrefix(rep, "2") {
				tx.Rcpts = append(tx.Rcpts, addr)
			}
			w(rep)
			if strings.HasPrefix(rep, "421") {
				return
			}
		case "DATA":
			rep := "354 go ahead"
			if r.OnData != nil {
				rep = r.OnData()
			}
			if tx == nil || len(tx.Rcpts) == 0 {
				if !strings.HasPrefix(rep, "354") || r.OnData == nil {
					w("554 5.5.1 no valid recipients")
					continue
				}
			}
			w(rep)
			if !strings.HasPrefix(rep, "354") {
				continue
			}
			raw, body, err := readData(br)
			if err != nil {
				return
			}
			if r.DropAtDot {
				return
			}
			fin := "250 2.0.0 OK queued"
			if tx != nil && len(tx.Rcpts) > 0 {
				if r.OnDot != nil {
					fin = r.OnDot(body)
				}
				tx.Raw, tx.Body = raw, body
				r.mu.Lock()
				r.txs = append(r.txs, *tx)
				r.mu.Unlock()
			} else {
				fin = "554 5.5.1 no recipients"
			}
			tx = nil
			w(fin)
			txDone++
			if r.CloseAfterTx > 0 && txDone >= r.CloseAfterTx {
				return
			}
		case "RSET":
			r.mu.Lock()
			r.rsetCount++
			r.mu.Unlock()
			tx = nil
			w("250 2.0.0 ok")
		case "NOOP":
			w("250 2.0.0 ok")
		case "QUIT":
			r.mu.Lock()
			r.quitCount++
			r.mu.Unlock()
			r.endSession(&ended)
			w("221 2.0.0 bye")
			return
		default:
			w("500 5.5.2 what")
		}
	}
}

// groupBuffered reports whether DATA is already in the input after MAIL,
// waiting up to 100ms for the bytes of one pipelined write to arrive.
func (r *testReceiver) groupBuffered(c net.Conn, br *bufio.Reader) bool {
	deadline := time.Now().Add(100 * time.Millisecond)
	for time.Now().Before(deadline) {
		if n := br.Buffered(); n > 0 {
			b, _ := br.Peek(n)
			if bytes.Contains(b, []byte("DATA\r\n")) {
				return true
			}
		}
		c.SetReadDeadline(time.Now().Add(10 * time.Millisecond))
		br.Peek(br.Buffered() + 1)
	}
	c.SetDeadline(time.Now().Add(20 * time.Second))
	return false
}

// readData reads a DATA section up to CRLF.CRLF and returns the raw bytes
// and the unstuffed body.
func readData(br *bufio.Reader) (raw, body []byte, err error) {
	for {
		line, err := br.ReadBytes('\n')
		if err != nil {
			return nil, nil, err
		}
		raw = append(raw, line...)
		if string(line) == ".\r\n" {
			return raw, body, nil
		}
		if line[0] == '.' {
			line = line[1:]
		}
		body = append(body, line...)
	}
}

func itoa(n int) string { return big.NewInt(int64(n)).String() }

// testCert makes a self-signed certificate for names (and 127.0.0.1) and
// returns it with a pool that trusts it and PEM file paths in dir.
func testCert(t testing.TB, names ...string) (tls.Certificate, *x509.CertPool, string, string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: names[0]},
		DNSNames:              names,
		IPAddresses:           []net.IP{net.ParseIP("127.0.0.1")},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, pool, certFile, keyFile
}
