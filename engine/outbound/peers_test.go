package outbound

import (
	"bufio"
	"context"
	"encoding/json"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// needPeer skips (locally) or fails (CI=true) when a test peer is missing.
func needPeer(t *testing.T, path string) {
	t.Helper()
	if _, err := os.Stat(path); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("test peer %s missing (make peers)", path)
		}
		t.Skipf("SKIPPING: test peer %s missing (make peers installs it)", path)
	}
}

// freePort returns a loopback port that was free a moment ago.
func freePort(t *testing.T) uint16 {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return netip.MustParseAddrPort(ln.Addr().String()).Port()
}

// waitListening waits until addr accepts connections.
func waitListening(t *testing.T, addr string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("%s is not listening", addr)
}

// startSMTPSink runs Postfix's smtp-sink on a free loopback port with the
// given fault flags, dumping every transaction into a temp directory.
func startSMTPSink(t *testing.T, flags ...string) (netip.AddrPort, string) {
	t.Helper()
	const bin = "/usr/sbin/smtp-sink"
	needPeer(t, bin)
	dump := t.TempDir()
	port := freePort(t)
	addr := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), port)
	args := append([]string{}, flags...)
	if os.Geteuid() == 0 {
		args = append(args, "-u", "root")
	}
	args = append(args, "-d", filepath.Join(dump, "%M."), addr.String(), "100")
	cmd := exec.Command(bin, args...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	// The dial that checks readiness is a session too; smtp-sink does not
	// mind.
	waitListening(t, addr.String())
	return addr, dump
}

func readDumps(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	deadline := time.Now().Add(2 * time.Second)
	for {
		files, _ := filepath.Glob(filepath.Join(dir, "*"))
		out = out[:0]
		for _, f := range files {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, string(b))
		}
		if len(out) > 0 || time.Now().After(deadline) {
			return out
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestSMTPSinkDelivery(t *testing.T) {
	addr, dump := startSMTPSink(t)
	m := newTestManager(t, addr.Port(), nil)
	body := "Subject: dots\r\n\r\n.leading dot\r\n..two\r\n.\r\nlast\r\n"
	o := m.Deliver(context.Background(), routeTo("dst.test", "127.0.0.1"), env(body, "a@dst.test", "b@dst.test", "c@dst.test"))
	wantStatuses(t, o, Delivered, Delivered, Delivered)
	dumps := readDumps(t, dump)
	if len(dumps) != 1 {
		t.Fatalf("smtp-sink stored %d transactions, want 1", len(dumps))
	}
	d := dumps[0]
	if strings.Count(d, "X-Rcpt-Args: ") != 3 || !strings.Contains(d, "X-Mail-Args: <sender@src.test>") {
		t.Errorf("envelope in dump:\n%s", d)
	}
	// smtp-sink unstuffs and writes LF line ends; the body must come back
	// exactly.
	want := strings.ReplaceAll(body, "\r\n", "\n")
	if !strings.Contains(d, want) {
		t.Errorf("dump does not contain the body %q:\n%s", want, d)
	}
}

func TestSMTPSinkFaults(t *testing.T) {
	cases := []struct {
		flags []string
		want  Status
		code  int
	}{
		{[]string{"-r", "RCPT"}, Transient, 450},
		{[]string{"-f", "RCPT"}, Bounced, 500},
		{[]string{"-f", "."}, Bounced, 500},
		{[]string{"-r", "."}, Transient, 450},
		{[]string{"-Q", "MAIL"}, Transient, 421},
		{[]string{"-A", "0"}, Bounced, 550}, // 550 right after 354
	}
	for _, c := range cases {
		t.Run(strings.Join(c.flags, " "), func(t *testing.T) {
			addr, _ := startSMTPSink(t, c.flags...)
			m := newTestManager(t, addr.Port(), nil)
			o := m.Deliver(context.Background(), routeTo("dst.test", "127.0.0.1"), env(testBody, "a@dst.test", "b@dst.test"))
			wantStatuses(t, o, c.want, c.want)
			if o.Results[0].Reply.Code != c.code {
				t.Errorf("reply %s, want code %d", o.Results[0].Reply, c.code)
			}
			// Whatever happened, the next delivery works or fails the same
			// way again: the session state never leaks into it.
			o = m.Deliver(context.Background(), routeTo("dst.test", "127.0.0.1"), env(testBody, "a@dst.test"))
			wantStatuses(t, o, c.want)
		})
	}
}

// startAiosmtpd runs testdata/aiosmtpd_receiver.py (Python aiosmtpd with
// STARTTLS) and returns its address and output directory.
func startAiosmtpd(t *testing.T, certFile, keyFile string) (netip.AddrPort, string) {
	t.Helper()
	const py = "/usr/bin/python3"
	needPeer(t, py)
	if err := exec.Command(py, "-c", "import aiosmtpd").Run(); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("python3-aiosmtpd missing")
		}
		t.Skip("SKIPPING: python3-aiosmtpd missing")
	}
	out := t.TempDir()
	port := freePort(t)
	cmd := exec.Command(py, "testdata/aiosmtpd_receiver.py", "127.0.0.1", strconv.Itoa(int(port)), certFile, keyFile, out)
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		stdin.Close()
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			cmd.Process.Kill()
			<-done
		}
	})
	ready := make(chan bool, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if sc.Text() == "READY" {
				ready <- true
				return
			}
		}
		ready <- false
	}()
	select {
	case ok := <-ready:
		if !ok {
			t.Fatal("aiosmtpd receiver exited before READY")
		}
	case <-time.After(15 * time.Second):
		t.Fatal("aiosmtpd receiver did not start")
	}
	return netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), port), out
}

type aioMeta struct {
	MailFrom    string   `json:"mail_from"`
	RcptTos     []string `json:"rcpt_tos"`
	MailOptions []string `json:"mail_options"`
	TLS         bool     `json:"tls"`
}

func readAio(t *testing.T, dir string, n int) (aioMeta, []byte) {
	t.Helper()
	base := filepath.Join(dir, strconv.Itoa(n))
	deadline := time.Now().Add(3 * time.Second)
	var mb []byte
	var err error
	for {
		if mb, err = os.ReadFile(base + ".json"); err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("message %d not received: %v", n, err)
	}
	var meta aioMeta
	if err := json.Unmarshal(mb, &meta); err != nil {
		t.Fatal(err)
	}
	body, err := os.ReadFile(base + ".eml")
	if err != nil {
		t.Fatal(err)
	}
	return meta, body
}

func TestAiosmtpdSTARTTLSAndPartialFailure(t *testing.T) {
	_, pool, certFile, keyFile := testCert(t, "mx1.dst.test")
	addr, out := startAiosmtpd(t, certFile, keyFile)
	m := newTestManager(t, addr.Port(), func(o *Options) {
		o.TLS = TLSPolicy{Mode: TLSRequired, RootCAs: pool}
	})
	body := "Subject: t\r\n\r\n.dot line\r\nsecond\r\n"
	o := m.Deliver(context.Background(), routeTo("dst.test", "127.0.0.1"),
		env(body, "a@dst.test", "reject@dst.test", "defer@dst.test", "b@dst.test"))
	wantStatuses(t, o, Delivered, Bounced, Transient, Delivered)
	if o.TLSVersion == "" || o.TLSCipher == "" {
		t.Errorf("no TLS recorded: %q %q", o.TLSVersion, o.TLSCipher)
	}
	meta, got := readAio(t, out, 1)
	if !meta.TLS {
		t.Error("aiosmtpd saw no TLS")
	}
	if strings.Join(meta.RcptTos, ",") != "a@dst.test,b@dst.test" || meta.MailFrom != "sender@src.test" {
		t.Errorf("envelope %+v", meta)
	}
	if string(got) != body {
		t.Errorf("aiosmtpd got %q, want %q", got, body)
	}
}

func TestAiosmtpdSMTPUTF8(t *testing.T) {
	_, pool, certFile, keyFile := testCert(t, "mx1.dst.test")
	addr, out := startAiosmtpd(t, certFile, keyFile)
	m := newTestManager(t, addr.Port(), func(o *Options) {
		o.TLS = TLSPolicy{Mode: TLSOpportunistic, RootCAs: pool}
	})
	body := "Subject: caf\u00e9\r\n\r\nna\u00efve\r\n"
	o := m.Deliver(context.Background(), routeTo("dst.test", "127.0.0.1"), env(body, "j\u00f6rg@dst.test"))
	wantStatuses(t, o, Delivered)
	meta, got := readAio(t, out, 1)
	if strings.Join(meta.RcptTos, ",") != "j\u00f6rg@dst.test" {
		t.Errorf("recipients %q", meta.RcptTos)
	}
	if !strings.Contains(strings.Join(meta.MailOptions, " "), "SMTPUTF8") {
		t.Errorf("MAIL options %q lack SMTPUTF8", meta.MailOptions)
	}
	if string(got) != body {
		t.Errorf("got %q, want %q", got, body)
	}
}
