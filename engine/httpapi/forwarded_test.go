package httpapi

import (
	"bufio"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"gannet/proxyproto"
)

func TestForwardedClient(t *testing.T) {
	trusted := []netip.Prefix{netip.MustParsePrefix("127.0.0.2/32"), netip.MustParsePrefix("10.0.0.0/8")}
	tests := []struct {
		peer string
		xff  []string
		want string
	}{
		{"127.0.0.3", []string{"192.0.2.1"}, "127.0.0.3"}, // untrusted peer: ignored
		{"127.0.0.2", nil, "127.0.0.2"},
		{"127.0.0.2", []string{"192.0.2.1"}, "192.0.2.1"},
		{"127.0.0.2", []string{"198.51.100.7, 192.0.2.1"}, "192.0.2.1"},           // rightmost untrusted
		{"127.0.0.2", []string{"198.51.100.7, 192.0.2.1, 10.1.2.3"}, "192.0.2.1"}, // through a second proxy
		{"127.0.0.2", []string{"198.51.100.7", "192.0.2.1 , 10.1.2.3"}, "192.0.2.1"},
		{"127.0.0.2", []string{"10.9.9.9, 10.1.2.3"}, "10.9.9.9"}, // all trusted: leftmost
		{"127.0.0.2", []string{"192.0.2.1:4711"}, "192.0.2.1"},
		{"127.0.0.2", []string{"[2001:db8::1]:4711"}, "2001:db8::1"},
		{"127.0.0.2", []string{"2001:db8::1"}, "2001:db8::1"},
		{"127.0.0.2", []string{"::ffff:192.0.2.1"}, "192.0.2.1"},
		{"::ffff:127.0.0.2", []string{"192.0.2.1"}, "192.0.2.1"},
		{"127.0.0.2", []string{"192.0.2.1, unknown"}, "127.0.0.2"},       // garbage at the proxy's end: the proxy
		{"127.0.0.2", []string{"192.0.2.1, junk, 10.1.2.3"}, "10.1.2.3"}, // stops at the last good hop
		{"127.0.0.2", []string{""}, "127.0.0.2"},
		{"127.0.0.2", []string{"fe80::1%eth0"}, "127.0.0.2"},
	}
	for _, tt := range tests {
		got := ForwardedClient(netip.MustParseAddr(tt.peer), tt.xff, trusted)
		if got != netip.MustParseAddr(tt.want) {
			t.Errorf("ForwardedClient(%s, %q) = %v, want %s", tt.peer, tt.xff, got, tt.want)
		}
	}
	if got := ForwardedClient(netip.MustParseAddr("127.0.0.2"), []string{"192.0.2.1"}, nil); got != netip.MustParseAddr("127.0.0.2") {
		t.Errorf("no trusted proxies: %v", got)
	}
}

// FuzzForwardedClient: the client is the peer or an address written in
// the header, and never one when the peer is untrusted.
func FuzzForwardedClient(f *testing.F) {
	f.Add("127.0.0.2", "198.51.100.7, 192.0.2.1, 10.1.2.3")
	f.Add("127.0.0.3", "192.0.2.1")
	f.Add("127.0.0.2", "[2001:db8::1]:4711,junk")
	trusted := []netip.Prefix{netip.MustParsePrefix("127.0.0.2/32"), netip.MustParsePrefix("10.0.0.0/8")}
	f.Fuzz(func(t *testing.T, peer, xff string) {
		p, err := netip.ParseAddr(peer)
		if err != nil {
			return
		}
		got := ForwardedClient(p, []string{xff}, trusted)
		if got == p.Unmap() {
			return
		}
		if !containsAddr(trusted, p.Unmap()) {
			t.Fatalf("untrusted peer %v became %v", p, got)
		}
		found := false
		for _, e := range strings.Split(xff, ",") {
			if a, ok := parseForwardedAddr(strings.TrimSpace(e)); ok && a == got {
				found = true
			}
		}
		if !found {
			t.Fatalf("%v is not in %q", got, xff)
		}
	})
}

// callerEcho is an Admin handler that answers with the caller.
var callerEcho = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	c, _ := CallerFrom(r.Context())
	WriteJSON(w, http.StatusOK, map[string]any{"addr": c.Addr.String(), "trusted": c.Trusted})
})

func proxyOptions() Options {
	o := testOptions(&recordingInjector{})
	o.TrustedHosts = []netip.Prefix{netip.MustParsePrefix("127.0.0.10/32")}
	o.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.2/32")}
	o.Admin = callerEcho
	return o
}

// TestTrustedProxiesForwardedFor: X-Forwarded-For from a trusted proxy
// names the caller for trusted_hosts; from anyone else it is ignored.
func TestTrustedProxiesForwardedFor(t *testing.T) {
	_, base := startServer(t, proxyOptions())
	viaProxy, direct := client(t, "127.0.0.2"), client(t, "127.0.0.3")
	a := do(t, viaProxy, "GET", base+"/api/admin/x", nil, map[string]string{"X-Forwarded-For": "127.0.0.10"})
	if a.status != 200 || a.json["addr"] != "127.0.0.10" || a.json["trusted"] != true {
		t.Errorf("trusted client through the proxy: %v", a)
	}
	a = do(t, viaProxy, "GET", base+"/api/admin/x", nil, map[string]string{"X-Forwarded-For": "127.0.0.10, 127.0.0.11"})
	if a.status != 401 {
		t.Errorf("untrusted client through the proxy (spoofed entry on the left): %v", a)
	}
	a = do(t, direct, "GET", base+"/api/admin/x", nil, map[string]string{"X-Forwarded-For": "127.0.0.10"})
	if a.status != 401 {
		t.Errorf("X-Forwarded-For from outside trusted_proxies: %v", a)
	}
	a = do(t, direct, "GET", base+"/api/admin/x", nil, map[string]string{"X-Forwarded-For": "127.0.0.10", "Authorization": "Bearer free-key"})
	if a.status != 200 || a.json["addr"] != "127.0.0.3" {
		t.Errorf("keyed request from outside trusted_proxies: %v", a)
	}
}

// proxyRefusals records OnProxyRefused.
type proxyRefusals struct {
	mu  sync.Mutex
	got []string
}

func (r *proxyRefusals) add(reason string, peer netip.AddrPort, _ error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.got = append(r.got, reason+" "+peer.Addr().String())
}

func (r *proxyRefusals) list() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.got...)
}

// rawHTTP sends pre and a GET over one connection from local and returns
// the answer, or an error when the server closed without one.
func rawHTTP(t *testing.T, addr, local string, pre []byte) (answer, error) {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}, Timeout: 5 * time.Second}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	req := append(append([]byte(nil), pre...), "GET /api/admin/x HTTP/1.1\r\nHost: gannet.test\r\nConnection: close\r\n\r\n"...)
	if _, err := c.Write(req); err != nil {
		return answer{}, err
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return answer{}, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	a := answer{status: resp.StatusCode, body: b}
	_ = json.Unmarshal(b, &a.json)
	return a, nil
}

// TestHTTPProxyProtocol: with proxy_protocol the PROXY header's client is
// the caller; a connection from outside trusted_proxies, or without a
// header, is closed without an answer and reported; a Replace turns it
// off for new connections.
func TestHTTPProxyProtocol(t *testing.T) {
	rs := &proxyRefusals{}
	o := proxyOptions()
	o.ProxyProtocol = true
	o.OnProxyRefused = rs.add
	srv, base := startServer(t, o)
	addr := strings.TrimPrefix(base, "http://")
	src, dst := netip.MustParseAddrPort("127.0.0.10:4000"), netip.MustParseAddrPort("127.0.0.1:80")
	for _, h := range [][]byte{proxyproto.AppendV1(nil, src, dst), proxyproto.AppendV2(nil, src, dst, nil)} {
		a, err := rawHTTP(t, addr, "127.0.0.2", h)
		if err != nil || a.status != 200 || a.json["addr"] != "127.0.0.10" {
			t.Errorf("through the proxy: %v, %v", a, err)
		}
	}
	if a, err := rawHTTP(t, addr, "127.0.0.3", proxyproto.AppendV2(nil, src, dst, nil)); err == nil {
		t.Errorf("header from an untrusted address answered: %v", a)
	}
	if a, err := rawHTTP(t, addr, "127.0.0.2", nil); err == nil {
		t.Errorf("no header answered: %v", a)
	}
	want := []string{"untrusted 127.0.0.3", "malformed 127.0.0.2"}
	if got := rs.list(); strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("proxyRefusals %q, want %q", got, want)
	}
	off := proxyOptions()
	srv.Replace(New(off))
	if a, err := rawHTTP(t, addr, "127.0.0.2", nil); err != nil || a.status != 401 {
		t.Errorf("after Replace without proxy_protocol: %v, %v", a, err)
	}
}
