package admin

import (
	"bufio"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"gannet/engine/httpapi"
	"gannet/engine/trace"
)

// traceServer serves the admin API with a trace hub and a log level,
// trusting 127.0.0.1, with "key-acme" a tenant's key.
func traceServer(t *testing.T, hub *trace.Hub, level *string) *httptest.Server {
	return traceServerTimeouts(t, hub, level, 0)
}

// traceServerTimeouts is traceServer whose HTTP server has read and write
// timeouts (0: none).
func traceServerTimeouts(t *testing.T, hub *trace.Hub, level *string, timeout time.Duration) *httptest.Server {
	h := New(Options{Trace: hub,
		LogLevel: func() string { return *level },
		SetLogLevel: func(l string) (string, error) {
			if l != "debug" && l != "info" {
				return "", &apiError{msg: "unknown log level " + l}
			}
			*level = l
			return l, nil
		}})
	api := httpapi.New(httpapi.Options{
		TrustedHosts: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")},
		Services:     []string{httpapi.ServiceAdmin},
		APIKeys: func(b string) (string, bool) {
			if b == "key-acme" {
				return "acme", true
			}
			return "", false
		},
		Admin: h,
	}).Handler()
	srv := httptest.NewUnstartedServer(api)
	srv.Config.ReadTimeout, srv.Config.WriteTimeout = timeout, timeout
	srv.Start()
	t.Cleanup(srv.Close)
	return srv
}

// TestTraceStream: the stream sends the events its query matches as NDJSON
// until the caller goes; a tenant's key, a bad peer and an unknown side
// are refused.
func TestTraceStream(t *testing.T) {
	hub := trace.NewHub(nil)
	level := "info"
	srv := traceServer(t, hub, &level)

	get := func(path, key string) *http.Response {
		req, _ := http.NewRequest(http.MethodGet, srv.URL+path, nil)
		if key != "" {
			req.Header.Set("Authorization", "Bearer "+key)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	for _, c := range []struct {
		path, key string
		status    int
	}{
		{PathTraceServer, "key-acme", http.StatusForbidden},
		{PathTraceServer + "?peer=nonsense", "", http.StatusBadRequest},
		{"/api/admin/trace/v1/sideways", "", http.StatusNotFound},
	} {
		resp := get(c.path, c.key)
		resp.Body.Close()
		if resp.StatusCode != c.status {
			t.Errorf("GET %s: %d, want %d", c.path, resp.StatusCode, c.status)
		}
	}

	resp := get(PathTraceServer+"?peer=192.0.2.0/24&listener=in", "")
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); resp.StatusCode != 200 || ct != "application/x-ndjson" {
		t.Fatalf("trace answer %d %q", resp.StatusCode, ct)
	}
	waitUntil(t, hub.Active)
	peer := netip.MustParseAddrPort("192.0.2.9:1234")
	hub.Publish(trace.Event{Side: trace.Server, Kind: trace.Command, Text: "NOOP", Peer: netip.MustParseAddrPort("198.51.100.1:1"), Listen: "in"})
	hub.Publish(trace.Event{Side: trace.Client, Kind: trace.Command, Text: "NOOP", Peer: peer})
	hub.Publish(trace.Event{Side: trace.Server, Kind: trace.Command, Text: "EHLO x", Peer: peer, Listen: "in", Session: 3})
	sc := bufio.NewScanner(resp.Body)
	done := make(chan trace.Event, 1)
	go func() {
		for sc.Scan() {
			var ev trace.Event
			if json.Unmarshal(sc.Bytes(), &ev) == nil {
				done <- ev
				return
			}
		}
	}()
	select {
	case ev := <-done:
		if ev.Text != "EHLO x" || ev.Session != 3 || ev.Peer != peer || ev.Listen != "in" || ev.Side != trace.Server {
			t.Errorf("first event %+v, want the matching EHLO", ev)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no event streamed")
	}
	resp.Body.Close()
	waitUntil(t, func() bool { return !hub.Active() })
}

// TestTraceStreamEndsOnClose: closing the hub (the relay stops) ends the
// streams.
func TestTraceStreamEndsOnClose(t *testing.T) {
	hub := trace.NewHub(nil)
	level := "info"
	srv := traceServer(t, hub, &level)
	resp, err := http.Get(srv.URL + PathTraceClient + "?domain=example.com")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	waitUntil(t, hub.Active)
	hub.Close()
	var b strings.Builder
	buf := make([]byte, 512)
	for {
		n, err := resp.Body.Read(buf)
		b.Write(buf[:n])
		if err != nil {
			break
		}
	}
	waitUntil(t, func() bool { return !hub.Active() })
}

// TestLogLevelEndpoint: GET shows the level, POST sets it (operators
// only), a bad level is 400.
func TestLogLevelEndpoint(t *testing.T) {
	level := "info"
	srv := traceServer(t, trace.NewHub(nil), &level)
	do := func(method, body, key string) (int, string) {
		req, _ := http.NewRequest(method, srv.URL+PathLogLevel, strings.NewReader(body))
		if key != "" {
			req.Header.Set("Authorization", "Bearer "+key)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var r LogLevelResponse
		json.NewDecoder(resp.Body).Decode(&r)
		return resp.StatusCode, r.Level
	}
	if st, l := do(http.MethodGet, "", ""); st != 200 || l != "info" {
		t.Errorf("GET: %d %q", st, l)
	}
	if st, l := do(http.MethodPost, `{"level":"debug"}`, ""); st != 200 || l != "debug" || level != "debug" {
		t.Errorf("POST debug: %d %q (level %q)", st, l, level)
	}
	if st, _ := do(http.MethodPost, `{"level":"info"}`, "key-acme"); st != http.StatusForbidden || level != "debug" {
		t.Errorf("POST by a tenant: %d (level %q)", st, level)
	}
	if st, _ := do(http.MethodPost, `{"level":"loud"}`, ""); st != http.StatusBadRequest {
		t.Errorf("POST loud: %d", st)
	}
}

// TestTraceStreamOutlivesTimeouts: the HTTP server's read and write
// timeouts do not end a trace.
func TestTraceStreamOutlivesTimeouts(t *testing.T) {
	hub := trace.NewHub(nil)
	level := "info"
	srv := traceServerTimeouts(t, hub, &level, 200*time.Millisecond)
	resp, err := http.Get(srv.URL + PathTraceServer)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	waitUntil(t, hub.Active)
	time.Sleep(600 * time.Millisecond)
	hub.Publish(trace.Event{Side: trace.Server, Kind: trace.Command, Text: "NOOP"})
	line, err := bufio.NewReader(resp.Body).ReadString('\n')
	if err != nil || !strings.Contains(line, `"text":"NOOP"`) {
		t.Fatalf("after the timeouts: %q, %v", line, err)
	}
}
