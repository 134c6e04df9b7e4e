package e2e

import (
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"
)

// The operating tools of issue #20: live SMTP traces (gannet trace server
// and client), Rejection records and the log level at run time.

const (
	traceUser = "tracer"
	tracePass = "tr4ce-s3cret-pw"
)

// startTrace runs `gannet trace ARGS…` against g's admin API and waits
// until the relay has its subscription ("trace started" in its log).
func startTrace(t *testing.T, g *gannet, args ...string) *proc {
	t.Helper()
	before := strings.Count(g.p.out.String(), "trace started")
	p := startProc(t, g.bin, append(append([]string{"trace"}, args...), "-api", "http://"+g.HTTPAddr)...)
	waitFor(t, 10*time.Second, "trace "+args[0]+" subscribed", func() (bool, string) {
		return strings.Count(g.p.out.String(), "trace started") > before, ""
	})
	return p
}

// TestE2ETrace: while swaks sends a message with STARTTLS and AUTH through
// gannet to a receiver, `gannet trace server` shows the client's
// conversation and `gannet trace client -domain` the delivery's: the
// commands and replies, the TLS details, and neither the body nor the
// AUTH secret.
func TestE2ETrace(t *testing.T) {
	w := newRelayWorld(t)
	cert, key := selfSignedCert(t, "mx."+domain1)
	rcv := startAiosmtpd(t, hostPort(mxIP1, w.port), aioOptions{TLSCert: cert, TLSKey: key})
	g := w.gannet(t, gannetConfig{TLSMode: "opportunistic-insecure", Extra: fmt.Sprintf("\n[[smtp_user]]\nname = %q\npassword = %q\ntenant = \"acme\"\n\n[[tenant]]\nname = \"acme\"\n", traceUser, tracePass)})

	in := startTrace(t, g, "server", "-peer", "127.0.0.0/8")
	out := startTrace(t, g, "client", "-domain", domain1)

	rcpt := "traced@" + domain1
	marker := "BODY-MARKER-7f3a9"
	msg := simpleMessage(senderAddr, rcpt, "traced", "The body "+marker+" is never traced.\n")
	reply := swaksSend(t, g.SMTPAddr, senderAddr, []string{rcpt}, msg,
		"-tls", "-a", "PLAIN", "-au", traceUser, "-ap", tracePass)
	id := acceptedID(t, reply)
	g.WaitRecords(recordFilter{Type: "Delivery", ID: id}, 1, deliveryMax)
	waitArrivals(t, rcv, 1, deliveryMax)

	secret := base64.StdEncoding.EncodeToString([]byte("\x00" + traceUser + "\x00" + tracePass))
	check := func(name string, p *proc, want []string) string {
		var text string
		waitFor(t, 10*time.Second, name+" trace complete", func() (bool, string) {
			text = p.out.String()
			for _, w := range want {
				if !strings.Contains(text, w) {
					return false, "lacks " + w
				}
			}
			return true, ""
		})
		for _, bad := range []string{marker, tracePass, secret} {
			if strings.Contains(text, bad) {
				t.Errorf("%s trace shows %q:\n%s", name, bad, text)
			}
		}
		return text
	}
	server := check("server", in, []string{
		"S: 220 relay.e2e.test ESMTP Gannet", "C: EHLO swaks.e2e.test", "C: STARTTLS", "== tls: TLSv1.3",
		"C: AUTH PLAIN ***", "S: 235 2.7.0", "C: MAIL FROM:<" + senderAddr + ">", "C: RCPT TO:<" + rcpt + ">",
		"C: DATA", "S: 354", "octets of message data (elided)]", "S: 250 2.0.0 OK id=" + id, "C: QUIT", "S: 221",
	})
	client := check("client", out, []string{
		"== connected to mx." + domain1, "S: 220 ", "C: EHLO relay.e2e.test", "C: STARTTLS", "== tls: TLS", "C: MAIL FROM:<" + senderAddr + ">",
		"C: RCPT TO:<" + rcpt + ">", "octets of message data (elided)]", "S: 250 ",
	})
	t.Logf("gannet trace server:\n%s", server)
	t.Logf("gannet trace client -domain %s:\n%s", domain1, client)

	// -json gives the events as the API streams them: NDJSON.
	raw := startTrace(t, g, "server", "-listener", "e2e-in", "-json")
	c := inbDial(t, g.SMTPAddr, "127.0.0.1", false)
	c.expect("220")
	c.cmd("NOOP", "250")
	c.cmd("QUIT", "221")
	waitFor(t, 10*time.Second, "NDJSON trace", func() (bool, string) {
		return strings.Contains(raw.out.String(), `"kind":"command","text":"NOOP"`), raw.out.String()
	})
	for _, l := range strings.Split(strings.TrimSpace(raw.out.String()), "\n") {
		var ev map[string]any
		if err := json.Unmarshal([]byte(l), &ev); err != nil || ev["side"] != "server" || ev["listener"] != "e2e-in" {
			t.Errorf("trace -json line %q: %v", l, err)
		}
	}
	// An interrupted trace ends cleanly, and the relay forgets it.
	for _, p := range []*proc{in, out, raw} {
		if !p.stop() {
			t.Errorf("trace did not end on SIGTERM")
		}
	}
	waitFor(t, 10*time.Second, "traces ended", func() (bool, string) {
		return strings.Count(g.p.out.String(), "trace ended") >= 3, ""
	})
}

// TestE2ERejections: each refusal a client gets is a Rejection record with
// the verb, the reply, the peer and the listener, never an AUTH secret;
// a client hammering bad commands gets at most
// rejections_per_connection records, the rest counted as dropped.
func TestE2ERejections(t *testing.T) {
	w := newRelayWorld(t)
	g := w.gannet(t, gannetConfig{RelayHosts: []string{"127.0.0.2/32"},
		Extra: fmt.Sprintf("\n[[smtp_user]]\nname = %q\npassword = %q\ntenant = \"acme\"\n\n[[tenant]]\nname = \"acme\"\n", traceUser, tracePass)})

	// 127.0.0.1 may not relay here: it must authenticate first.
	c := inbDial(t, g.SMTPAddr, "127.0.0.1", false)
	c.expect("220")
	c.cmd("MAIL FROM:<a@src.test>", "503 5.5.1")
	c.cmd("EHLO rejected.e2e.test", "250")
	c.cmd("MAIL FROM:<a@src.test>", "530 5.7.0")
	c.cmd("STARTTLS", "220")
	c.handshake(&tls.Config{InsecureSkipVerify: true})
	c.cmd("EHLO rejected.e2e.test", "250")
	wrong := base64.StdEncoding.EncodeToString([]byte("\x00" + traceUser + "\x00wrong-pass-zz"))
	c.cmd("AUTH PLAIN "+wrong, "535 5.7.8")
	c.cmd("RCPT TO:<x@"+domain1+">", "503 5.5.1")
	c.cmd("BOGUS", "500 5.5.2")
	c.cmd("QUIT", "221")

	recs := g.WaitRecords(recordFilter{Type: "Rejection"}, 5, 10*time.Second)
	want := []string{"MAIL 503", "MAIL 530", "AUTH 535", "RCPT 503", "UNKNOWN 500"}
	var got []string
	for _, r := range recs {
		var x struct {
			Command  string `json:"command"`
			Listener string `json:"listener"`
			Peer     struct {
				Name string `json:"name"`
				Addr string `json:"addr"`
			} `json:"peer_address"`
		}
		if err := json.Unmarshal([]byte(r.Raw), &x); err != nil {
			t.Fatal(err)
		}
		got = append(got, fmt.Sprintf("%s %d", x.Command, r.Response.Code))
		if x.Listener != "e2e-in" || x.Peer.Addr != "127.0.0.1" {
			t.Errorf("Rejection record %s: want listener e2e-in and peer 127.0.0.1", r.Raw)
		}
		if strings.Contains(r.Raw, "wrong-pass") || strings.Contains(r.Raw, wrong) {
			t.Errorf("Rejection record shows the AUTH secret: %s", r.Raw)
		}
	}
	for _, w := range want {
		if !strings.Contains(strings.Join(got, ","), w) {
			t.Errorf("Rejection records %v lack %q", got, w)
		}
	}

	// A refused HTTP injection is a Rejection too.
	resp, err := http.Post("http://"+g.HTTPAddr+"/api/inject/v1", "application/json", strings.NewReader("{not json"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	hr := g.WaitRecords(recordFilter{Type: "Rejection"}, 6, 10*time.Second)
	if last := hr[len(hr)-1]; last.Response.Code != 400 || !strings.Contains(last.Raw, `"listener":"http","command":"POST /api/inject/v1"`) {
		t.Errorf("Rejection record of a bad injection: %s", last.Raw)
	}

	// A hammering client: bad commands until the 421 of too many errors
	// (max_bad_commands), one reply more than the default
	// rejections_per_connection (10): 10 records, the rest counted.
	h := inbDial(t, g.SMTPAddr, "127.0.0.3", false)
	h.expect("220")
	var b strings.Builder
	for i := 0; i < 30; i++ {
		b.WriteString("HAMMER\r\n")
	}
	h.send(b.String())
	for {
		if last, _ := h.reply(); strings.HasPrefix(last, "421") {
			break
		}
	}
	h.closed()
	time.Sleep(1500 * time.Millisecond) // the log writer flushes every second
	n := 0
	for _, r := range g.Records() {
		if r.Type == "Rejection" && strings.Contains(string(r.PeerAddress), "127.0.0.3") {
			n++
		}
	}
	if n != 10 {
		t.Errorf("%d Rejection records for the hammering client, want 10 (rejections_per_connection)", n)
	}
	m := scrapeMetrics(t, g.HTTPAddr)
	if d := m.values[`gannet_rejection_records_dropped_total{reason="per_connection"}`]; d < 1 {
		t.Errorf("gannet_rejection_records_dropped_total{reason=\"per_connection\"} = %v, want ≥ 1", d)
	}
}

// TestE2ELogLevel: `gannet log-level debug` makes the running relay log
// its debug messages (a failed TLS handshake), `log-level info` stops
// them again; `gannet log-level` prints the level.
func TestE2ELogLevel(t *testing.T) {
	w := newRelayWorld(t)
	g := w.gannet(t, gannetConfig{})
	api := "http://" + g.HTTPAddr
	level := func(args ...string) string {
		out, err := runClient(t, nil, g.bin, append(append([]string{"log-level"}, args...), "-api", api)...)
		if err != nil {
			t.Fatal(err)
		}
		return strings.TrimSpace(out)
	}
	badHandshake := func() {
		c := inbDial(t, g.SMTPAddr, "127.0.0.1", false)
		c.expect("220")
		c.cmd("EHLO loglevel.e2e.test", "250")
		c.cmd("STARTTLS", "220")
		c.send("this is not a TLS client hello\r\n\r\n")
		c.closed()
	}
	const debugLine = `level=DEBUG msg="TLS handshake failed"`
	if got := level(); got != "log level: info" {
		t.Errorf("log-level = %q, want info", got)
	}
	badHandshake()
	time.Sleep(300 * time.Millisecond)
	if strings.Contains(g.p.out.String(), debugLine) {
		t.Fatal("debug message logged at level info")
	}
	if got := level("debug"); got != "log level: debug" {
		t.Errorf("log-level debug = %q", got)
	}
	badHandshake()
	waitFor(t, 5*time.Second, "a debug message", func() (bool, string) {
		return strings.Contains(g.p.out.String(), debugLine), ""
	})
	level("info")
	before := strings.Count(g.p.out.String(), debugLine)
	badHandshake()
	time.Sleep(300 * time.Millisecond)
	if strings.Count(g.p.out.String(), debugLine) != before {
		t.Error("debug message logged after log-level info")
	}
	if out, err := runClient(t, nil, g.bin, "log-level", "loud", "-api", api); err == nil {
		t.Errorf("log-level loud accepted: %s", out)
	}
}
