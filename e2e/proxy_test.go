package e2e

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Addresses of the proxy test: the allowed client, the refused one (both
// outside the proxy's 127.0.0.1, which is what gannet sees as the TCP peer
// of every proxied connection).
const (
	proxyClientOK  = "127.0.0.20"
	proxyClientBad = "127.0.0.21"
)

// proxyNode is one gannet behind haproxy: its PROXY protocol SMTP listener
// and its HTTP listener that believes X-Forwarded-For from haproxy.
type proxyNode struct {
	*gannet
	smtpPP, httpXFF, httpPP string
}

// startProxyNode starts a gannet whose proxied listeners trust 127.0.0.1
// (haproxy) and let only proxyClientOK relay (SMTP) or inject without a key
// (HTTP); the proxy itself is in neither list. cfg says where it delivers
// (DNS, DeliveryPort, DeliveryExtra) and may add to its configuration.
func startProxyNode(t *testing.T, cfg gannetConfig) proxyNode {
	n := proxyNode{
		smtpPP:  hostPort("127.0.0.1", freePort(t, false, "127.0.0.1")),
		httpXFF: hostPort("127.0.0.1", freePort(t, false, "127.0.0.1")),
		httpPP:  hostPort("127.0.0.1", freePort(t, false, "127.0.0.1")),
	}
	cfg.Extra += fmt.Sprintf(`
[[smtp_listener]]
name = "pp"
listen = %q
hostname = "relay.e2e.test"
relay_hosts = [%q]
proxy_protocol = true
trusted_proxies = ["127.0.0.1/32"]
proxy_header_timeout = "1s"

[[http_listener]]
listen = %q
services = ["inject"]
trusted_hosts = [%q]
trusted_proxies = ["127.0.0.1/32"]

[[http_listener]]
listen = %q
services = ["inject"]
trusted_hosts = [%q]
trusted_proxies = ["127.0.0.1/32"]
proxy_protocol = true
`, n.smtpPP, proxyClientOK, n.httpXFF, proxyClientOK, n.httpPP, proxyClientOK)
	n.gannet = startGannet(t, cfg)
	return n
}

// relayToSink is the delivery part of a gannetConfig that relays every
// message to the receiver at addr (and never looks up an MX).
func relayToSink(addr string) gannetConfig {
	return gannetConfig{DNS: "127.0.0.1:1", DeliveryPort: 1, DeliveryExtra: fmt.Sprintf("relay_to = %q\n", addr)}
}

// haproxyConfig is an haproxy configuration of the given frontends and
// backends (haproxyTCP), with bounded connections and timeouts.
func haproxyConfig(sections ...string) string {
	return `global
    maxconn 200

defaults
    timeout connect 5s
    timeout client 60s
    timeout server 60s
` + strings.Join(sections, "")
}

// haproxyTCP is a frontend on bind balancing its connections round-robin
// over servers in mode tcp, each server line ending in opts (such as
// "send-proxy-v2").
func haproxyTCP(name, bind, opts string, servers ...string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "\nfrontend %s\n    mode tcp\n    bind %s\n    default_backend %s\nbackend %s\n    mode tcp\n    balance roundrobin\n",
		name, bind, name, name)
	for i, s := range servers {
		fmt.Fprintf(&b, "    server n%d %s %s\n", i, s, opts)
	}
	return b.String()
}

// startHAProxy runs haproxy in the foreground with cfg and waits until each
// of its frontends accepts connections; the test's cleanup stops it.
func startHAProxy(t *testing.T, cfg string, frontends ...string) {
	bin := needExecutable(t, "/usr/sbin/haproxy", "haproxy")
	file := filepath.Join(t.TempDir(), "haproxy.cfg")
	if err := os.WriteFile(file, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(bin, "-c", "-f", file).CombinedOutput(); err != nil {
		t.Fatalf("haproxy -c: %v\n%s\n%s", err, out, cfg)
	}
	p := startProc(t, bin, "-db", "-f", file)
	for _, fe := range frontends {
		waitFor(t, 10*time.Second, "haproxy listening on "+fe, func() (bool, string) {
			if p.exited() {
				t.Fatalf("haproxy exited: %s", p.out.String())
			}
			c, err := net.DialTimeout("tcp", fe, time.Second)
			if err != nil {
				return false, err.Error()
			}
			c.Close()
			return true, ""
		})
	}
}

// peerAddr is a log record's peer_address.addr.
func peerAddr(r logRecord) string {
	var p struct{ Addr string }
	_ = json.Unmarshal(r.PeerAddress, &p)
	return p.Addr
}

// TestE2EProxyHAProxy: three gannet nodes behind one real haproxy that
// balances SMTP round-robin with send-proxy-v2 and with send-proxy (v1),
// and HTTP with option forwardfor (mode http) and with send-proxy-v2 (mode
// tcp). Through it, each node sees the real
// client: its Reception records and the Received header carry 127.0.0.20,
// never haproxy's 127.0.0.1; relay_hosts and trusted_hosts decide on the
// client's address, so 127.0.0.21 is refused through the same proxy. A
// direct connection without a header, or a PROXY header from outside
// trusted_proxies, is refused (421) and counted. A reload of one node's
// trusted_proxies takes effect for its new connections.
func TestE2EProxyHAProxy(t *testing.T) {
	swaks := needExecutable(t, "swaks", "swaks")
	t0 := time.Now()
	sink := startGoSink(t, hostPort("127.0.0.1", freePort(t, false, "127.0.0.1")))
	nodes := []proxyNode{startProxyNode(t, relayToSink(sink.addr())), startProxyNode(t, relayToSink(sink.addr())), startProxyNode(t, relayToSink(sink.addr()))}

	t.Logf("%v: nodes started", time.Since(t0).Round(time.Millisecond))
	feV2 := hostPort("127.0.0.1", freePort(t, false, "127.0.0.1"))
	feV1 := hostPort("127.0.0.1", freePort(t, false, "127.0.0.1"))
	feHTTP := hostPort("127.0.0.1", freePort(t, false, "127.0.0.1"))
	feHTTPPP := hostPort("127.0.0.1", freePort(t, false, "127.0.0.1"))
	var smtp, webPP []string
	var webServers strings.Builder
	for i, n := range nodes {
		smtp = append(smtp, n.smtpPP)
		webPP = append(webPP, n.httpPP)
		fmt.Fprintf(&webServers, "    server n%d %s\n", i, n.httpXFF)
	}
	startHAProxy(t, haproxyConfig(
		haproxyTCP("smtp_v2", feV2, "send-proxy-v2", smtp...),
		haproxyTCP("smtp_v1", feV1, "send-proxy", smtp...),
		fmt.Sprintf(`
frontend web
    mode http
    bind %s
    option forwardfor
    default_backend web
backend web
    mode http
    balance roundrobin
%s`, feHTTP, webServers.String()),
		haproxyTCP("web_pp", feHTTPPP, "send-proxy-v2", webPP...),
	), feV2, feV1, feHTTP, feHTTPPP)

	t.Logf("%v: haproxy started", time.Since(t0).Round(time.Millisecond))
	// SMTP through haproxy, three sessions per PROXY version: one per node.
	swaksVia := func(fe, from, rcpt string) string {
		msg := simpleMessage("app@src.test", rcpt, "through haproxy", "proxied\n")
		f := filepath.Join(t.TempDir(), "m.eml")
		os.WriteFile(f, msg[:len(msg)-2], 0o600)
		out, _ := runClient(t, nil, swaks, "--server", fe, "--local-interface", from, "--from", "app@src.test",
			"--to", rcpt, "--helo", "swaks.e2e.test", "--data", "@"+f, "--timeout", "30")
		return out
	}
	for _, fe := range []struct{ name, addr string }{{"v2", feV2}, {"v1", feV1}} {
		for i := range nodes {
			rcpt := fmt.Sprintf("%s-%d@far.example", fe.name, i)
			if out := swaksVia(fe.addr, proxyClientOK, rcpt); !strings.Contains(swaksFinalReply(out), "250 2.0.0") {
				t.Fatalf("PROXY %s, client %s: not accepted:\n%s", fe.name, proxyClientOK, out)
			}
		}
		// A client outside relay_hosts, through the same proxy: relay denied.
		if out := swaksVia(fe.addr, proxyClientBad, "denied-"+fe.name+"@far.example"); !strings.Contains(out, "554 5.7.1") {
			t.Errorf("PROXY %s, client %s: want 554 5.7.1 (relay denied):\n%s", fe.name, proxyClientBad, out)
		}
	}
	t.Logf("%v: SMTP sent", time.Since(t0).Round(time.Millisecond))
	// HTTP through haproxy: the trusted client injects without a key, the
	// other gets 401, whatever X-Forwarded-For it writes itself.
	curl := needExecutable(t, "curl", "curl")
	inject := func(addr, from, to string, hdr ...string) int {
		body := fmt.Sprintf(`{"from":"app@src.test","to":[%q],"subject":"over http","text":"proxied\n"}`, to)
		args := []string{"-sS", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "30", "--interface", from,
			"-H", "Content-Type: application/json", "--data-binary", body}
		for _, h := range hdr {
			args = append(args, "-H", h)
		}
		out, err := exec.Command(curl, append(args, "http://"+addr+"/v1/message")...).CombinedOutput()
		code, cerr := strconv.Atoi(strings.TrimSpace(string(out)))
		if err != nil || cerr != nil {
			t.Fatalf("curl: %v %s", err, out)
		}
		return code
	}
	for i := range nodes {
		if code := inject(feHTTP, proxyClientOK, fmt.Sprintf("http-%d@far.example", i)); code != 202 {
			t.Fatalf("inject through haproxy from %s: HTTP %d, want 202", proxyClientOK, code)
		}
		// HTTP in haproxy's mode tcp, the client named by a PROXY v2 header.
		if code := inject(feHTTPPP, proxyClientOK, fmt.Sprintf("httppp-%d@far.example", i)); code != 202 {
			t.Fatalf("inject through haproxy (send-proxy-v2) from %s: HTTP %d, want 202", proxyClientOK, code)
		}
	}
	if code := inject(feHTTPPP, proxyClientBad, "denied-httppp@far.example"); code != 401 {
		t.Errorf("inject through haproxy (send-proxy-v2) from %s: HTTP %d, want 401", proxyClientBad, code)
	}
	if code := inject(feHTTP, proxyClientBad, "denied-http@far.example", "X-Forwarded-For: "+proxyClientOK); code != 401 {
		t.Errorf("inject through haproxy from %s (spoofing X-Forwarded-For): HTTP %d, want 401", proxyClientBad, code)
	}
	if code := inject(nodes[0].httpXFF, proxyClientBad, "direct-http@far.example", "X-Forwarded-For: "+proxyClientOK); code != 401 {
		t.Errorf("direct inject from %s with X-Forwarded-For: HTTP %d, want 401 (not from a trusted proxy)", proxyClientBad, code)
	}

	t.Logf("%v: HTTP sent", time.Since(t0).Round(time.Millisecond))
	// Every message reached the sink with the client in its Received field.
	want := 4 * len(nodes)
	got := waitArrivals(t, sink, want, deliveryMax)
	for _, a := range got {
		first, _, _ := bytes.Cut(a.Data, []byte("\r\n"))
		if !bytes.HasPrefix(first, []byte("Received: ")) || !bytes.Contains(first, []byte("["+proxyClientOK+"]")) {
			t.Errorf("message to %v: first line %q, want a Received field from [%s]", a.Rcpts, first, proxyClientOK)
		}
		if bytes.Contains(a.Data, []byte("[127.0.0.1]")) {
			t.Errorf("message to %v names haproxy's address 127.0.0.1", a.Rcpts)
		}
	}
	// Round-robin: each node received one message per path, each from the
	// client's address; the refused client's Rejection records name it.
	for i, n := range nodes {
		recs := n.WaitRecords(recordFilter{Type: "Reception"}, 4, 10*time.Second)
		if len(recs) != 4 {
			t.Errorf("node %d: %d Reception records, want 4 (SMTP v2 and v1, HTTP with X-Forwarded-For and with PROXY v2):\n%s", i, len(recs), summarize(recs))
		}
		for _, r := range recs {
			if peerAddr(r) != proxyClientOK {
				t.Errorf("node %d: Reception with peer %q, want %s: %s", i, peerAddr(r), proxyClientOK, r)
			}
		}
	}
	waitFor(t, 10*time.Second, "5 Rejection records naming "+proxyClientBad+" (RCPT through v2 and v1, inject through haproxy twice and directly)", func() (bool, string) {
		var bad []string
		for _, n := range nodes {
			for _, r := range selectRecords(n.Records(), recordFilter{Type: "Rejection"}) {
				switch peerAddr(r) {
				case proxyClientBad:
					bad = append(bad, r.Raw)
				case "127.0.0.1":
					t.Fatalf("a Rejection names haproxy, not the client: %s", r)
				}
			}
		}
		return len(bad) == 5, strings.Join(bad, "\n")
	})
	t.Logf("%v: records checked", time.Since(t0).Round(time.Millisecond))

	// Straight to a node's PROXY listener: swaks from haproxy's own
	// (trusted) address sends no header and gets 421 4.4.2 once
	// proxy_header_timeout has passed; a PROXY header from an address
	// outside trusted_proxies gets 421 4.7.0 at once; neither is greeted.
	n := nodes[0]
	if out, _ := runClient(t, nil, swaks, "--server", n.smtpPP, "--local-interface", "127.0.0.1", "--from", "app@src.test",
		"--to", "direct@far.example", "--timeout", "30"); !strings.Contains(out, "<** 421 4.4.2") || strings.Contains(out, "220 ") {
		t.Errorf("direct connection without a header: want 421 4.4.2 and no greeting:\n%s", out)
	}
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(proxyClientBad)}, Timeout: 5 * time.Second}
	c, err := d.Dial("tcp", n.smtpPP)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprintf(c, "PROXY TCP4 %s 127.0.0.1 4711 25\r\n", proxyClientOK)
	var all bytes.Buffer
	if _, err := all.ReadFrom(c); err != nil {
		t.Fatalf("read: %v", err)
	}
	if !strings.HasPrefix(all.String(), "421 4.7.0 ") || strings.Count(all.String(), "\r\n") != 1 {
		t.Errorf("PROXY header from %s: got %q, want one 421 4.7.0 line, then close", proxyClientBad, all.String())
	}
	m := scrapeMetrics(t, n.HTTPAddr)
	for _, reason := range []string{"timeout", "untrusted"} {
		if v := m.values[`gannet_proxy_protocol_refused_total{listener="pp",reason="`+reason+`"}`]; v != 1 {
			t.Errorf("gannet_proxy_protocol_refused_total{reason=%q} = %v, want 1", reason, v)
		}
	}
	// Both are logged as Rejection records (command PROXY) with the
	// address that connected (the log writer flushes in the background).
	waitFor(t, 10*time.Second, "2 Rejection records with command PROXY", func() (bool, string) {
		var peers []string
		for _, r := range selectRecords(n.Records(), recordFilter{Type: "Rejection"}) {
			var f struct{ Command string }
			if json.Unmarshal([]byte(r.Raw), &f) == nil && f.Command == "PROXY" {
				peers = append(peers, peerAddr(r))
			}
		}
		return strings.Join(peers, ",") == "127.0.0.1,"+proxyClientBad, strings.Join(peers, ",")
	})

	// gannet reload: the node now trusts 127.0.0.21 instead of haproxy, so
	// 127.0.0.21's header is believed and 127.0.0.1's connections refused.
	orig := readFile(t, n.ConfigPath)
	next := strings.Replace(string(orig), `trusted_proxies = ["127.0.0.1/32"]`, `trusted_proxies = ["`+proxyClientBad+`/32"]`, 1)
	if err := os.WriteFile(n.ConfigPath, []byte(next), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, errOut, code := runGannetCLI(t, n.gannet, "reload"); code != 0 || !strings.Contains(out, `smtp_listener "pp" changed`) {
		t.Fatalf("gannet reload: exit %d\n%s%s", code, out, errOut)
	}
	c2, err := d.Dial("tcp", n.smtpPP)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	c2.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprintf(c2, "PROXY TCP4 %s 127.0.0.1 4711 25\r\n", proxyClientOK)
	if line, err := bufio.NewReader(c2).ReadString('\n'); err != nil || !strings.HasPrefix(line, "220 ") {
		t.Errorf("after reload, PROXY header from %s: %q %v, want the greeting", proxyClientBad, line, err)
	}
	// Through haproxy, three sessions reach the three nodes: node 0 (no
	// longer trusting haproxy) refuses its one, the others take theirs.
	refused := 0
	for i := range nodes {
		out, _ := runClient(t, nil, swaks, "--server", feV2, "--local-interface", proxyClientOK, "--from", "app@src.test",
			"--to", fmt.Sprintf("after-reload-%d@far.example", i), "--quit-after", "RCPT", "--timeout", "30")
		switch {
		case strings.Contains(out, "421 4.7.0"):
			refused++
		case !strings.Contains(out, "250 2.1.5"):
			t.Errorf("after reload, through haproxy: neither refused nor accepted:\n%s", out)
		}
	}
	if refused != 1 {
		t.Errorf("after node 0's reload, %d of 3 sessions through haproxy refused, want 1", refused)
	}
}
