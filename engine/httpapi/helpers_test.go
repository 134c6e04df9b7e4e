package httpapi

import (
	"bytes"
	"context"
	"crypto/subtle"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// recordingInjector is the engine side of the seam, faked: it keeps the
// messages and answers with ids, or with err.
type recordingInjector struct {
	mu    sync.Mutex
	msgs  []Message
	calls int
	err   error
	panic bool
}

func (r *recordingInjector) Inject(ctx context.Context, msgs []Message) ([]string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.panic {
		panic("injector exploded")
	}
	r.calls++
	if r.err != nil {
		return nil, r.err
	}
	ids := make([]string, len(msgs))
	for i := range msgs {
		ids[i] = fmt.Sprintf("id%04d", len(r.msgs)+i)
	}
	r.msgs = append(r.msgs, msgs...)
	return ids, nil
}

func (r *recordingInjector) messages() []Message {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Message(nil), r.msgs...)
}

func (r *recordingInjector) reset() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.msgs, r.calls, r.err, r.panic = nil, 0, nil, false
}

// Test keys: "acme-key" binds tenant acme, "free-key" binds none.
func testKeys(bearer string) (string, bool) {
	for key, tenant := range map[string]string{"acme-key": "acme", "free-key": "", "rate-key": "rated"} {
		if subtle.ConstantTimeCompare([]byte(bearer), []byte(key)) == 1 {
			return tenant, true
		}
	}
	return "", false
}

var fixedNow = time.Date(2026, 5, 6, 7, 8, 9, 0, time.UTC)

// testOptions: trusted 127.0.0.1/32 only, so a client bound to 127.0.0.9
// is not trusted.
func testOptions(inj Injector) Options {
	n := 0
	var mu sync.Mutex
	return Options{
		Listen:       "127.0.0.1:0",
		TrustedHosts: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")},
		APIKeys:      testKeys,
		Injector:     inj,
		Now:          func() time.Time { return fixedNow },
		Hostname:     "relay.example.test",
		NewID: func() string {
			mu.Lock()
			defer mu.Unlock()
			n++
			return "mid" + strconv.Itoa(n)
		},
	}
}

// startServer starts s and stops it at the end of the test.
func startServer(t testing.TB, opts Options) (*Server, string) {
	t.Helper()
	s := New(opts)
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	return s, "http://" + s.Addr()
}

// client returns an HTTP client whose connections come from local
// (127.0.0.1 is trusted in testOptions, 127.0.0.9 is not).
func client(t testing.TB, local string) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}, Timeout: 5 * time.Second}
	tr := &http.Transport{DialContext: d.DialContext, DisableKeepAlives: true}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 10 * time.Second}
}

// answer is one HTTP answer as a client saw it.
type answer struct {
	status int
	header http.Header
	body   []byte
	json   map[string]any
}

func (a answer) String() string { return fmt.Sprintf("%d %s", a.status, a.body) }

func (a answer) errorText() string {
	s, _ := a.json["error"].(string)
	return s
}

// do sends one request with c.
func do(t testing.TB, c *http.Client, method, url string, body []byte, hdr map[string]string) answer {
	t.Helper()
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	a := answer{status: resp.StatusCode, header: resp.Header, body: b}
	json.Unmarshal(b, &a.json)
	return a
}

// curl sends one request with the curl program from local and returns the
// status and body. A missing curl skips loudly, or fails under CI=true.
func curl(t testing.TB, local, method, url string, body []byte, hdr map[string]string) answer {
	t.Helper()
	path, err := exec.LookPath("curl")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("curl is required: %v", err)
		}
		t.Skipf("SKIPPING: curl not found: %v", err)
	}
	args := []string{"-sS", "--max-time", "10", "--interface", local, "-X", method,
		"-H", "Content-Type: application/json", "--data-binary", "@-",
		"-D", "-", "-o", "-", url}
	for k, v := range hdr {
		args = append(args, "-H", k+": "+v)
	}
	cmd := exec.Command(path, args...)
	cmd.Stdin = bytes.NewReader(body)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("curl: %v", err)
	}
	// -D - writes the header block(s) before the body.
	head, rest, ok := bytes.Cut(out, []byte("\r\n\r\n"))
	for ok && bytes.HasPrefix(rest, []byte("HTTP/")) { // 100 Continue
		head, rest, ok = bytes.Cut(rest, []byte("\r\n\r\n"))
	}
	if !ok {
		t.Fatalf("curl output: %q", out)
	}
	lines := strings.Split(string(head), "\r\n")
	f := strings.Fields(lines[0])
	status, _ := strconv.Atoi(f[1])
	a := answer{status: status, header: http.Header{}, body: rest}
	for _, l := range lines[1:] {
		if k, v, ok := strings.Cut(l, ":"); ok {
			a.header.Add(k, strings.TrimSpace(v))
		}
	}
	json.Unmarshal(rest, &a.json)
	return a
}

// mustJSON marshals v.
func mustJSON(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
