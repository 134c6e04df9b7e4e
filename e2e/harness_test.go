package e2e

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/BurntSushi/toml"
	"github.com/miekg/dns"
)

// TestHarnessPeers checks the peers and the harness without gannet: the DNS
// server answers the test zone, each receiver takes mail from each client and
// saves it as the relay tests expect, and fault injection answers as asked.
func TestHarnessPeers(t *testing.T) {
	for _, ip := range append(receiverIPs, foreignIP) {
		checkLoopbackAlias(t, ip)
	}

	t.Run("dnsmasq", func(t *testing.T) {
		d := startDNS(t)
		for _, z := range zoneMX {
			r, err := d.query(z.domain, dns.TypeMX)
			if err != nil || r.Rcode != dns.RcodeSuccess || len(r.Answer) != 1 {
				t.Fatalf("MX %s: %v %v", z.domain, err, r)
			}
			mx, ok := r.Answer[0].(*dns.MX)
			if !ok || mx.Mx != z.host+"." || mx.Preference != 10 {
				t.Errorf("MX %s = %v, want 10 %s.", z.domain, r.Answer[0], z.host)
			}
			r, err = d.query(z.host, dns.TypeA)
			if err != nil || len(r.Answer) != 1 || r.Answer[0].(*dns.A).A.String() != z.ip {
				t.Errorf("A %s = %v %v, want %s", z.host, err, r, z.ip)
			}
			r, err = d.query(z.host, dns.TypeAAAA)
			if err != nil || r.Rcode != dns.RcodeSuccess || len(r.Answer) != 0 {
				t.Errorf("AAAA %s = %v %v, want NOERROR and no data", z.host, err, r)
			}
		}
		r, err := d.query(domainNull, dns.TypeMX)
		if err != nil || len(r.Answer) != 1 {
			t.Fatalf("MX %s: %v %v", domainNull, err, r)
		}
		if mx, ok := r.Answer[0].(*dns.MX); !ok || mx.Mx != "." || mx.Preference != 0 {
			t.Errorf("MX %s = %v, want the null MX \"0 .\"", domainNull, r.Answer[0])
		}
		r, err = d.query(domainNX, dns.TypeMX)
		if err != nil || r.Rcode != dns.RcodeNameError {
			t.Errorf("MX %s = %v %v, want NXDOMAIN", domainNX, err, r)
		}
		// Over TCP too, as a resolver retries truncated answers there.
		m := new(dns.Msg)
		m.SetQuestion(dns.Fqdn(domain2), dns.TypeMX)
		r, _, err = (&dns.Client{Net: "tcp", Timeout: time.Second}).Exchange(m, d.Addr)
		if err != nil || len(r.Answer) != 1 {
			t.Errorf("MX %s over TCP: %v %v", domain2, err, r)
		}
		if !d.p.stop() {
			t.Error("dnsmasq did not stop on SIGTERM")
		}
	})

	port := receiverPort(t)

	t.Run("smtp-sink", func(t *testing.T) {
		sink := startSmtpSink(t, hostPort(mxIP1, port))
		msg := simpleMessage(senderAddr, "a@"+domain1, "sink test", ".leading dot\nplain\n")
		reply := swaksSend(t, sink.addr(), senderAddr, []string{"a@" + domain1, "b@" + domain1}, msg)
		if !strings.HasPrefix(reply, "250") {
			t.Fatalf("swaks reply %q", reply)
		}
		// smtp-source: 20 messages over 2 connections.
		smtpSource(t, sink.addr(), 2, 20, senderAddr, "c@"+domain1)
		var got []arrival
		waitFor(t, 10*time.Second, "21 transactions at smtp-sink", func() (bool, string) {
			got = sink.arrivals(t)
			return len(got) == 21, strings.Repeat("x", len(got))
		})
		first := findArrival(got, "a@"+domain1)
		if first == nil || len(first.Rcpts) != 2 || first.MailFrom != senderAddr {
			t.Fatalf("swaks transaction not found or wrong envelope: %+v", got)
		}
		if !bytes.Equal(first.Data, msg) {
			t.Errorf("smtp-sink dump differs:\n%s", firstDifference(first.Data, msg))
		}
		if !sink.p.stop() {
			t.Error("smtp-sink did not stop on SIGTERM")
		}
	})

	t.Run("smtp-sink faults", func(t *testing.T) {
		sink := startSmtpSink(t, hostPort(mxIP2, port), "-f", "RCPT", "-B", "550 5.1.1 no such user here")
		c := dialSMTP(t, "", sink.addr())
		if r := c.Cmd("MAIL FROM:<" + senderAddr + ">"); !strings.HasPrefix(r, "250") {
			t.Fatalf("MAIL: %q", r)
		}
		if r := c.Cmd("RCPT TO:<x@" + domain2 + ">"); !strings.HasPrefix(r, "550 5.1.1") {
			t.Errorf("RCPT with -f RCPT: %q, want 550 5.1.1", r)
		}
		soft := startSmtpSink(t, hostPort(mxIP3, port), "-r", "RCPT", "-b", "451 4.3.0 try later")
		c = dialSMTP(t, "", soft.addr())
		c.Cmd("MAIL FROM:<" + senderAddr + ">")
		if r := c.Cmd("RCPT TO:<x@" + domain3 + ">"); !strings.HasPrefix(r, "451 4.3.0") {
			t.Errorf("RCPT with -r RCPT: %q, want 451 4.3.0", r)
		}
	})

	t.Run("aiosmtpd", func(t *testing.T) {
		sink := startAiosmtpd(t, hostPort(mxIP1, port), aioOptions{})
		msg := simpleMessage(senderAddr, "a@"+domain1, "aiosmtpd test", "..two dots\n.\nend\n")
		if r := swaksSend(t, sink.addr(), senderAddr, []string{"a@" + domain1}, msg); !strings.HasPrefix(r, "250") {
			t.Fatalf("swaks: final reply %q", r)
		}

		// smtplib's edge cases go straight to aiosmtpd: this checks what the
		// relay test expects, without the relay.
		cases := edgeCases()
		var msgs []pyMessage
		for _, c := range cases {
			msgs = append(msgs, pyMessage{From: c.sender(), To: []string{c.rcpt}, MailOptions: c.mailOptions, Data: c.data})
		}
		for i, r := range smtplibSend(t, sink.addr(), msgs) {
			if !strings.HasPrefix(r.Data, "250") {
				t.Errorf("%s: smtplib replies %+v", cases[i].name, r)
			}
		}
		big := bigMessage(senderAddr, "big@"+domain1, 1<<20)
		c := dialSMTP(t, "", sink.addr())
		if r := c.Send(senderAddr, []string{"big@" + domain1}, big); !strings.HasPrefix(r, "250") {
			t.Errorf("Go client: %q", r)
		}
		c.Quit()

		var got []arrival
		waitFor(t, 10*time.Second, "all messages at aiosmtpd", func() (bool, string) {
			got = sink.arrivals(t)
			return len(got) == 2+len(cases), ""
		})
		if a := findArrival(got, "a@"+domain1); a == nil || !bytes.Equal(a.Data, msg) {
			t.Errorf("swaks message not byte-identical: %+v", a)
		}
		for _, c := range cases {
			a := findArrival(got, c.rcpt)
			if a == nil {
				t.Errorf("%s: not received", c.name)
				continue
			}
			if a.MailFrom != c.sender() {
				t.Errorf("%s: MAIL FROM %q, want %q", c.name, a.MailFrom, c.sender())
			}
			if !bytes.Equal(a.Data, c.want()) {
				t.Errorf("%s: %s", c.name, firstDifference(a.Data, c.want()))
			}
		}
		if a := findArrival(got, "big@"+domain1); a == nil || sha256hex(a.Data) != sha256hex(big) {
			t.Errorf("1 MiB message not intact")
		}
		if !sink.p.stop() {
			t.Error("aiosmtpd did not stop on SIGTERM")
		}
	})

	t.Run("aiosmtpd faults and STARTTLS", func(t *testing.T) {
		cert, key := selfSignedCert(t, "mx.d2.test")
		soft := startAiosmtpd(t, hostPort(mxIP2, port), aioOptions{TempfailFirst: "451 4.3.0 try again later"})
		c := dialSMTP(t, "", soft.addr())
		c.Cmd("MAIL FROM:<" + senderAddr + ">")
		if r := c.Cmd("RCPT TO:<x@" + domain2 + ">"); !strings.HasPrefix(r, "451 4.3.0") {
			t.Errorf("first RCPT: %q, want 451 4.3.0", r)
		}
		if r := c.Cmd("RCPT TO:<x@" + domain2 + ">"); !strings.HasPrefix(r, "250") {
			t.Errorf("second RCPT: %q, want 250", r)
		}
		c.Quit()
		sink := startAiosmtpd(t, hostPort(mxIP1, port), aioOptions{TLSCert: cert, TLSKey: key})
		msg := simpleMessage(senderAddr, "tls@"+domain1, "tls test", "over TLS\n")
		if r := swaksSend(t, sink.addr(), senderAddr, []string{"tls@" + domain1}, msg, "--tls"); !strings.HasPrefix(r, "250") {
			t.Fatalf("swaks --tls: final reply %q", r)
		}
		var got []arrival
		waitFor(t, 10*time.Second, "the TLS message", func() (bool, string) {
			got = sink.arrivals(t)
			return len(got) == 1, ""
		})
		if !got[0].TLS || !bytes.Equal(got[0].Data, msg) {
			t.Errorf("STARTTLS message: tls=%v data ok=%v", got[0].TLS, bytes.Equal(got[0].Data, msg))
		}

		hard := startAiosmtpd(t, hostPort(mxIP3, port), aioOptions{FailRcpt: "550 5.1.1 no such user"})
		c = dialSMTP(t, "", hard.addr())
		c.Cmd("MAIL FROM:<" + senderAddr + ">")
		if r := c.Cmd("RCPT TO:<x@" + domain3 + ">"); !strings.HasPrefix(r, "550 5.1.1") {
			t.Errorf("RCPT: %q, want 550 5.1.1", r)
		}
	})

	t.Run("client from 127.0.0.9", func(t *testing.T) {
		sink := startAiosmtpd(t, hostPort(mxIP1, port), aioOptions{})
		c := dialSMTP(t, foreignIP, sink.addr())
		c.Send(senderAddr, []string{"a@" + domain1}, simpleMessage(senderAddr, "a@"+domain1, "from nine", "x\n"))
		c.Quit()
		waitFor(t, 5*time.Second, "the message", func() (bool, string) { return len(sink.arrivals(t)) == 1, "" })
		if !bytes.Contains(readFile(t, strings.TrimSuffix(sink.arrivals(t)[0].File, ".eml")+".json"), []byte(`"peer": "`+foreignIP+`"`)) {
			t.Errorf("aiosmtpd did not see the client at %s", foreignIP)
		}
	})

	t.Run("bin/smtpsink", func(t *testing.T) {
		sink := startGoSink(t, hostPort(mxIP1, port))
		smtpSource(t, sink.addr(), 2, 10, senderAddr, "a@"+domain1)
		msg := simpleMessage(senderAddr, "b@"+domain1, "go sink", ".dot\n")
		if r := swaksSend(t, sink.addr(), senderAddr, []string{"b@" + domain1}, msg); !strings.HasPrefix(r, "250") {
			t.Fatalf("swaks: final reply %q", r)
		}
		got := waitArrivals(t, sink, 11, 10*time.Second)
		if a := findArrival(got, "b@"+domain1); a == nil || !bytes.Equal(a.Data, msg) || a.MailFrom != senderAddr {
			t.Errorf("smtpsink dump of the swaks message: %+v", a)
		}
		// -fail rcpt:451:1 refuses every recipient with 451.
		failing := startGoSink(t, hostPort(mxIP2, port), "rcpt:451:1")
		c := dialSMTP(t, "", failing.addr())
		c.Cmd("MAIL FROM:<" + senderAddr + ">")
		if r := c.Cmd("RCPT TO:<x@" + domain2 + ">"); !strings.HasPrefix(r, "451") {
			t.Errorf("RCPT with -fail rcpt:451:1: %q, want 451", r)
		}
	})
}

// findArrival returns the first arrival with rcpt among its recipients.
func findArrival(as []arrival, rcpt string) *arrival {
	for i := range as {
		for _, r := range as[i].Rcpts {
			if sameAddr(r, rcpt) {
				return &as[i]
			}
		}
	}
	return nil
}

func readFile(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// selfSignedCert writes a self-signed ECDSA certificate and key for host.
func selfSignedCert(t testing.TB, host string) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: host},
		DNSNames:     []string{host},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), 0o600)
	return certFile, keyFile
}

// TestHarnessLogRecords checks the log reader on KumoMTA-shaped records, in
// files of any name, including a partial last line.
func TestHarnessLogRecords(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "sub"), 0o700)
	os.WriteFile(filepath.Join(dir, "20260101-000000.jsonl"), []byte(
		`{"type":"Reception","id":"abc","sender":"s@src.test","recipient":"u@d1.test","size":10}`+"\n"+
			`{"type":"Bounce","id":"abc","recipient":"u@D1.test","response":{"code":550,"enhanced_code":{"class":5,"subject":1,"detail":1},"content":"no"}}`+"\n"+
			`{"type":"Deliv`), 0o600)
	os.WriteFile(filepath.Join(dir, "sub", "log"), []byte(
		`{"type":"Delivery","id":"def","recipient":["a@d2.test","b@d2.test"],"response":{"code":250,"enhanced_code":"2.0.0","content":"ok"}}`+"\n"), 0o600)
	recs, err := readLogRecords(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 3 {
		t.Fatalf("read %d records, want 3:\n%s", len(recs), summarize(recs))
	}
	b := selectRecords(recs, recordFilter{Type: "Bounce", Recipient: "u@d1.test"})
	if len(b) != 1 || b[0].Response.Code != 550 || b[0].Response.EnhancedCode() != "5.1.1" {
		t.Errorf("bounce record: %+v", b)
	}
	d := selectRecords(recs, recordFilter{Type: "Delivery", Recipient: "b@d2.test"})
	if len(d) != 1 || d[0].Response.EnhancedCode() != "2.0.0" || len(d[0].Recipients()) != 2 {
		t.Errorf("delivery record: %+v", d)
	}
	if recs, err := readLogRecords(filepath.Join(dir, "missing")); err != nil || len(recs) != 0 {
		t.Errorf("missing dir: %v %v", recs, err)
	}
}

// TestHarnessConfigTemplate checks that the config the relay tests start
// gannet with is valid TOML with the contract's keys and the test resolver.
func TestHarnessConfigTemplate(t *testing.T) {
	var b strings.Builder
	err := configTemplate.Execute(&b, map[string]any{
		"Dir": "/tmp/x", "SMTPAddr": "127.0.0.1:1", "HTTPAddr": "127.0.0.1:2",
		"RelayHosts": `"127.0.0.1/32"`, "DNS": "127.0.0.1:3", "DeliveryPort": 4,
		"RetryInterval": "1s", "MaxRetryInterval": "2s", "MaxRetryAge": "10m",
		"TLSMode": "opportunistic", "CAFile": "", "DNSSEC": "", "TLSExtra": "",
		"Extra": "[meta]\nstrip_meta_headers = true\n", "SendBounces": true,
		"DeliveryExtra": "relay_tls = \"starttls\"",
	})
	if err != nil {
		t.Fatal(err)
	}
	var cfg struct {
		Spool        struct{ Path string }
		SMTPListener []struct {
			Listen     string
			RelayHosts []string `toml:"relay_hosts"`
		} `toml:"smtp_listener"`
		Resolver struct{ Nameservers []string }
		Delivery struct {
			SMTPPort    int  `toml:"smtp_port"`
			SendBounces bool `toml:"send_bounces"`
		}
		Queue struct {
			RetryInterval string `toml:"retry_interval"`
		}
		Meta struct {
			StripMetaHeaders bool `toml:"strip_meta_headers"`
		}
	}
	md, err := toml.Decode(b.String(), &cfg)
	if err != nil {
		t.Fatalf("config template is not TOML: %v\n%s", err, b.String())
	}
	if cfg.Spool.Path != "/tmp/x/spool" || len(cfg.SMTPListener) != 1 || cfg.SMTPListener[0].Listen != "127.0.0.1:1" ||
		cfg.Resolver.Nameservers[0] != "127.0.0.1:3" || cfg.Delivery.SMTPPort != 4 || !cfg.Delivery.SendBounces || cfg.Queue.RetryInterval != "1s" ||
		!cfg.Meta.StripMetaHeaders || cfg.SMTPListener[0].RelayHosts[0] != "127.0.0.1/32" {
		t.Errorf("decoded config: %+v", cfg)
	}
	if !md.IsDefined("http_listener") || !md.IsDefined("log", "path") {
		t.Errorf("config lacks [[http_listener]] or [log] path")
	}
}
