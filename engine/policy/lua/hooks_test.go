package lua

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"gannet/engine/dkim"
	"gannet/engine/policy"
	"gannet/smtpwire"
)

// recordingHost records what the script asked of the relay.
type recordingHost struct {
	mu    sync.Mutex
	calls []string
}

func (r *recordingHost) add(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, fmt.Sprintf(format, args...))
}

func (r *recordingHost) LimitSending(tenant string, perSecond float64) {
	r.add("LimitSending(%s, %g)", tenant, perSecond)
}

func (r *recordingHost) AdjustDomainRate(domain string, delta float64) {
	r.add("AdjustDomainRate(%s, %g)", domain, delta)
}

func (r *recordingHost) Suspend(sel Selector, reason string, d time.Duration) {
	r.add("Suspend(%+v, %s, %v)", sel, reason, d)
}

func (r *recordingHost) Bounce(sel Selector, reason string, d time.Duration) {
	r.add("Bounce(%+v, %s, %v)", sel, reason, d)
}

func (r *recordingHost) CampaignEvent(campaign, event string) {
	r.add("CampaignEvent(%s, %s)", campaign, event)
}

// take returns the calls recorded since the last take.
func (r *recordingHost) take() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	c := r.calls
	r.calls = nil
	return c
}

// logBuffer is a log destination safe for concurrent use.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// harness is a started script with its recording host, log and error
// counts.
type harness struct {
	h    *Hooks
	host *recordingHost
	log  *logBuffer
	mu   sync.Mutex
	errs map[string]int
}

func (hs *harness) errors(event string) int {
	hs.mu.Lock()
	defer hs.mu.Unlock()
	return hs.errs[event]
}

// start loads the script at path and starts its hooks.
func start(t testing.TB, path string, opts Options) *harness {
	t.Helper()
	s, err := LoadScript(path)
	if err != nil {
		t.Fatal(err)
	}
	hs := &harness{host: &recordingHost{}, log: &logBuffer{}, errs: map[string]int{}}
	if opts.Host == nil {
		opts.Host = hs.host
	}
	opts.Log = slog.New(slog.NewTextHandler(hs.log, &slog.HandlerOptions{Level: slog.LevelDebug}))
	opts.Errors = func(event string) {
		hs.mu.Lock()
		defer hs.mu.Unlock()
		hs.errs[event]++
	}
	h, err := s.Start(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.Close)
	hs.h = h
	return hs
}

// referenceDir copies the reference script into a new working directory
// with stub keys (the loader checks the key files) and makes it the
// working directory.
func referenceDir(t testing.TB) string {
	t.Helper()
	src, err := os.ReadFile(filepath.Join("testdata", "relay.lua"))
	if err != nil {
		t.Fatal(err)
	}
	key, err := os.ReadFile(testKey)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "keys"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"mail._domainkey.example.com.pem", "s1._domainkey.acme.example.pem"} {
		if err := os.WriteFile(filepath.Join(dir, "keys", k), key, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "relay.lua"), src, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Chdir(dir)
	return dir
}

// message builds a policy.Message with the given header lines and a body
// padded to size bytes.
func message(size int, headers ...string) policy.Message {
	var b strings.Builder
	b.WriteString("From: App <app@acme.example>\r\nTo: user@example.org\r\nSubject: hello\r\n")
	for _, h := range headers {
		b.WriteString(h + "\r\n")
	}
	b.WriteString("\r\n")
	for b.Len() < size {
		b.WriteString("The quick brown fox jumps over the lazy dog.\r\n")
	}
	return policy.Message{
		ID: "q1", Hostname: "relay.test", Listener: "relay-in",
		Sender: "app@acme.example", Recipients: []string{"user@Example.ORG"},
		Body: []byte(b.String()), Trusted: true,
	}
}

func TestReferenceHooks(t *testing.T) {
	referenceDir(t)
	hs := start(t, "relay.lua", Options{})
	h := hs.h
	ctx := context.Background()

	for ev, want := range map[string]bool{
		EventGreeting: true, "smtp_server_ehlo": true, EventMessage: true, "smtp_server_message_received": true,
		EventDeliveryResult: true, EventHTTPRequest: true, EventAuth: true,
		EventQueueConfig: false, EventEgressPath: false, "init": false, "smtp_server_rewrite_envelope": false,
	} {
		if got := h.Has(ev); got != want {
			t.Errorf("Has(%q) = %v, want %v", ev, got, want)
		}
	}

	t.Run("greeting", func(t *testing.T) {
		for _, tc := range []struct {
			meta  GreetingMeta
			calls []string
			dkim  []dkim.KeyConfig
		}{
			{GreetingMeta{Domain: "app1", Tenant: "acme", Peer: "127.0.0.1", Listener: "relay-in"},
				[]string{"LimitSending(acme, 10)"},
				[]dkim.KeyConfig{{Domain: "acme.example", Selector: "s1", KeyFile: "keys/s1._domainkey.acme.example.pem"}}},
			{GreetingMeta{Domain: "app2", Tenant: "globex"}, []string{"LimitSending(globex, 2)"}, nil},
			{GreetingMeta{Domain: "app3"}, nil, nil},
		} {
			g, err := h.Greeting(ctx, tc.meta)
			if err != nil {
				t.Fatal(err)
			}
			if calls := hs.host.take(); !reflect.DeepEqual(calls, tc.calls) {
				t.Errorf("%+v: calls %q, want %q", tc.meta, calls, tc.calls)
			}
			if !reflect.DeepEqual(g.DKIM, tc.dkim) || g.Reject != nil {
				t.Errorf("%+v: greeting %+v, want DKIM %+v", tc.meta, g, tc.dkim)
			}
		}
	})

	t.Run("message", func(t *testing.T) {
		for _, tc := range []struct {
			name     string
			headers  []string
			priority int
			calls    []string
			unsub    bool
		}{
			{"plain", nil, 0, nil, false},
			{"transactional", []string{"X-Type: transactional"}, 1, nil, false},
			{"lower-case name", []string{"x-type: transactional"}, 1, nil, false},
			{"campaign", []string{"X-Campaign: spring"}, 0, []string{"CampaignEvent(spring, queued)"}, true},
			{"folded campaign", []string{"x-CAMPAIGN: spring", " sale", "X-Campaign: other"}, 0, []string{"CampaignEvent(spring sale, queued)"}, true},
		} {
			t.Run(tc.name, func(t *testing.T) {
				m := message(0, tc.headers...)
				d, err := h.Decide(m)
				if err != nil {
					t.Fatal(err)
				}
				if d.Priority != tc.priority {
					t.Errorf("priority %d, want %d", d.Priority, tc.priority)
				}
				if calls := hs.host.take(); !reflect.DeepEqual(calls, tc.calls) {
					t.Errorf("calls %q, want %q", calls, tc.calls)
				}
				out, err := policy.AppendEdited(nil, m.Body, d.Edits)
				if err != nil {
					t.Fatal(err)
				}
				hasUnsub := bytes.Contains(out, []byte("\r\nList-Unsubscribe: <mailto:unsubscribe@example.com?subject=unsubscribe>\r\nList-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n\r\n"))
				if hasUnsub != tc.unsub {
					t.Errorf("List-Unsubscribe %v, want %v:\n%s", hasUnsub, tc.unsub, out)
				}
			})
		}
	})

	t.Run("delivery result", func(t *testing.T) {
		for _, tc := range []struct {
			code  int
			calls []string
		}{
			{421, []string{"AdjustDomainRate(example.org, -0.3)"}},
			{429, []string{"AdjustDomainRate(example.org, -0.3)"}},
			{250, nil},
			{550, nil},
		} {
			err := h.DeliveryResult(ctx, DeliveryResult{Code: tc.code, Enhanced: "4.7.0", Text: "slow down", Kind: "TransientFailure"},
				DeliveryMeta{Domain: "example.org", Site: "mx.example.org", Tenant: "acme", Attempts: 1, ID: "q1", Recipient: "user@example.org"})
			if err != nil {
				t.Fatal(err)
			}
			if calls := hs.host.take(); !reflect.DeepEqual(calls, tc.calls) {
				t.Errorf("%d: calls %q, want %q", tc.code, calls, tc.calls)
			}
		}
		if l := hs.log.String(); !strings.Contains(l, `level=WARN msg="Throttled by example.org, reducing rate" event=smtp_delivery_result script=relay.lua:97`) {
			t.Errorf("log:\n%s", l)
		}
	})

	t.Run("auth", func(t *testing.T) {
		for _, tc := range []struct {
			user, password string
			want           AuthResult
		}{
			{"wordpress", "wp-secret", AuthResult{Handled: true, OK: true, Tenant: "acme"}},
			{"wordpress", "wrong", AuthResult{Handled: true}},
			{"nobody", "wp-secret", AuthResult{Handled: true}},
		} {
			got, err := h.Auth(ctx, tc.user, tc.password, AuthMeta{Listener: "submission", Peer: "127.0.0.1", Mechanism: "PLAIN"})
			if err != nil || got != tc.want {
				t.Errorf("Auth(%s, %s) = %+v, %v; want %+v", tc.user, tc.password, got, err, tc.want)
			}
		}
	})

	t.Run("http", func(t *testing.T) {
		for _, tc := range []struct {
			headers map[string]string
			want    *HTTPResponse
		}{
			{nil, &HTTPResponse{Status: 401, Body: []byte("Unauthorized")}},
			{map[string]string{"Authorization": "Bearer wrong"}, &HTTPResponse{Status: 401, Body: []byte("Unauthorized")}},
			{map[string]string{"Authorization": "Bearer key-acme-1"}, nil},
		} {
			got, err := h.HTTPRequest(ctx, HTTPRequest{Method: "POST", Path: "/api/inject/v1", Headers: tc.headers, Remote: "10.0.0.1"})
			if err != nil || !reflect.DeepEqual(got, tc.want) {
				t.Errorf("%v: %+v, %v; want %+v", tc.headers, got, err, tc.want)
			}
		}
	})
	// Events without handlers answer at once.
	if qc, ok, err := h.QueueConfig("example.org", "acme", "", ""); ok || err != nil || qc != (QueueConfig{}) {
		t.Errorf("QueueConfig = %+v, %v, %v", qc, ok, err)
	}
	if ep, ok, err := h.EgressPath("example.org", "", ""); ok || err != nil || ep != (EgressPath{}) {
		t.Errorf("EgressPath = %+v, %v, %v", ep, ok, err)
	}
	if n := len(hs.errs); n != 0 {
		t.Errorf("errors counted: %v\n%s", hs.errs, hs.log)
	}
}

func TestKumoMessageAPI(t *testing.T) {
	hs := start(t, filepath.Join("testdata", "kumo_msg.lua"), Options{})
	h := hs.h
	m := message(0, "X-Campaign: spring", "X-Secret: 42")
	m.Tenant = "acme"
	d, err := h.Decide(m)
	if err != nil {
		t.Fatal(err)
	}
	if d.Tenant != "globex" || d.Campaign != "spring" {
		t.Errorf("tenant %q campaign %q", d.Tenant, d.Campaign)
	}
	wantKeys := []dkim.KeyConfig{{Domain: "acme.example", Selector: "s1", KeyFile: "keys/acme.example.pem", Headers: []string{"From", "To", "Subject"}}}
	if !reflect.DeepEqual(d.DKIMKeys, wantKeys) {
		t.Errorf("DKIM keys %+v", d.DKIMKeys)
	}
	out, err := policy.AppendEdited(nil, m.Body, d.Edits)
	if err != nil {
		t.Fatal(err)
	}
	want := "X-Relay-Domain: Example.ORG\r\nFrom: App <app@acme.example>\r\nTo: user@example.org\r\nSubject: hello\r\nX-Campaign: spring\r\nX-Relay-Sender: app@acme.example\r\n\r\n"
	if string(out) != want {
		t.Errorf("message:\n%s\nwant:\n%s", out, want)
	}

	for _, tc := range []struct {
		domain, tenant string
		want           QueueConfig
		ok             bool
	}{
		{"slow.example", "acme", QueueConfig{RetryInterval: 10 * time.Minute, MaxRetryInterval: time.Hour, MaxAge: 48 * time.Hour, EgressPool: "acme-pool"}, true},
		{"fast.example", "acme", QueueConfig{}, false},
	} {
		for range 3 { // the first call runs the hook, the others are cached
			got, ok, err := h.QueueConfig(tc.domain, tc.tenant, "", "")
			if err != nil || ok != tc.ok || got != tc.want {
				t.Errorf("QueueConfig(%s) = %+v, %v, %v; want %+v, %v", tc.domain, got, ok, err, tc.want, tc.ok)
			}
		}
		if calls := hs.host.take(); len(calls) != 1 {
			t.Errorf("QueueConfig(%s): hook calls %q, want one", tc.domain, calls)
		}
	}
	for _, tc := range []struct {
		domain string
		want   EgressPath
		ok     bool
	}{
		{"big.example", EgressPath{ConnectionLimit: 2, MaxMessageRate: 100, MaxDeliveriesPerConnection: 50, EnableTLS: "Required", SMTPPort: 2525}, true},
		{"small.example", EgressPath{MaxMessageRate: 10}, true},
		{"other.example", EgressPath{}, false},
	} {
		got, ok, err := h.EgressPath(tc.domain, "ip-1", "site")
		if err != nil || ok != tc.ok || got != tc.want {
			t.Errorf("EgressPath(%s) = %+v, %v, %v; want %+v, %v", tc.domain, got, ok, err, tc.want, tc.ok)
		}
	}
}

// TestHookErrors: a failing hook returns an error, is counted and logged
// at its file:line, and the next call runs in a fresh state.
func TestHookErrors(t *testing.T) {
	for _, tc := range []struct {
		name, src string
		event     string
		err       string // in the error returned
		log       string // in the log
	}{
		{"error", "kumo.on('smtp_message_received', function(domain, meta)\n  error('boom')\nend)",
			EventMessage, "relay.lua:2: boom", "script=" + "DIR/relay.lua:2"},
		{"runtime error", "kumo.on('smtp_message_received', function(domain, meta)\n  local x = nil\n  return x.y\nend)",
			EventMessage, "relay.lua:3: attempt to index", "relay.lua:3"},
		{"loop", "kumo.on('smtp_message_received', function(domain, meta)\n  while true do end\nend)",
			EventMessage, "ran past its budget of 50ms", "level=WARN"},
		{"pcall loop", "kumo.on('smtp_message_received', function(domain, meta)\n  while true do pcall(function() while true do end end) end\nend)",
			EventMessage, "ran past its budget", "level=WARN"},
		{"coroutine loop", "local co = coroutine.wrap(function() while true do end end)\nkumo.on('smtp_message_received', function(d, m)\n  co()\nend)",
			EventMessage, "ran past its budget", "level=WARN"},
		{"coroutine error", "local co = coroutine.wrap(function() error('inside') end)\nkumo.on('smtp_message_received', function(d, m)\n  co()\nend)",
			EventMessage, "relay.lua:1: inside", "level=ERROR"},
		{"wrong event", "kumo.on('smtp_delivery_result', function(r, m)\n  kumo.set_tenant('x')\nend)",
			EventDeliveryResult, "relay.lua:2: kumo.set_tenant: only in smtp_message_received", "level=ERROR"},
		{"bad header name", "kumo.on('smtp_message_received', function(domain, meta)\n  kumo.add_header('Bad Name', 'x')\nend)",
			EventMessage, `kumo.add_header: "Bad Name" is not a header field name`, "relay.lua:2"},
		{"header injection", "kumo.on('smtp_message_received', function(domain, meta)\n  kumo.add_header('X-A', 'a\\r\\nBcc: x@y')\nend)",
			EventMessage, "kumo.add_header: X-A: the value holds a line end", "relay.lua:2"},
		{"msg header injection", "kumo.on('smtp_message_received', function(msg)\n  msg:append_header('X-A', 'a\\nB: c')\nend)",
			EventMessage, "msg:append_header: X-A: the value holds a line end", "relay.lua:2"},
		{"bad reject code", "kumo.on('smtp_message_received', function(domain, meta)\n  kumo.reject(250, 'ok')\nend)",
			EventMessage, "code 250 is not a 4xx or 5xx reply code", "relay.lua:2"},
		{"bad priority", "kumo.on('smtp_message_received', function(domain, meta)\n  kumo.set_queue_priority('urgent')\nend)",
			EventMessage, `kumo.set_queue_priority: urgent is not`, "relay.lua:2"},
		{"null queue", "kumo.on('smtp_server_message_received', function(msg)\n  msg:set_meta('queue', 'null')\nend)",
			EventMessage, "null queue", "relay.lua:2"},
		{"bad signer", "kumo.on('smtp_server_message_received', function(msg)\n  msg:dkim_sign(kumo.dkim.ed25519_signer { domain = 'a.example', selector = 's', key = 'k.pem', atf = true })\nend)",
			EventMessage, `kumo.dkim.ed25519_signer: unknown key "atf"`, "relay.lua:2"},
		{"queue config key", "kumo.on('get_queue_config', function(d)\n  return kumo.make_queue_config { retry_interval = '5m', retries = 3 }\nend)",
			EventQueueConfig, `kumo.make_queue_config: unknown key "retries"`, "relay.lua:2"},
		{"queue config value", "kumo.on('get_queue_config', function(d)\n  return { retry_interval = '5m' }\nend)",
			EventQueueConfig, "get_queue_config: the handler returned a table", "relay.lua:1"},
		{"egress tls", "kumo.on('get_egress_path_config', function(d)\n  return kumo.make_egress_path {\n    enable_tls = 'Always',\n  }\nend)",
			EventEgressPath, "relay.lua:3: kumo.make_egress_path: enable_tls: must be one of", "relay.lua:3"},
		{"http answer", "kumo.on('http_request', function(r)\n  return { status = 'no' }\nend)",
			EventHTTPRequest, "relay.lua:1: http_request: status must be", "relay.lua:1"},
		{"auth answer", "kumo.on('smtp_server_auth', function(u, p, m)\n  return 'yes'\nend)",
			EventAuth, "the handler returned a string", "relay.lua:1"},
		{"greeting", "kumo.on('smtp_server_ehlo', function(domain, meta)\n  kumo.set_campaign('x')\nend)",
			EventGreeting, "kumo.set_campaign: only in smtp_message_received", "relay.lua:2"},
		{"kumo.on in a handler", "kumo.on('smtp_message_received', function(d, m)\n  kumo.on('smtp_message_received', function() end)\nend)",
			EventMessage, "kumo.on: only at the script's top level", "relay.lua:2"},
		{"admin key", "kumo.on('smtp_delivery_result', function(r, m)\n  kumo.suspend { domain = m.domain, for_ever = true }\nend)",
			EventDeliveryResult, `kumo.suspend: unknown key "for_ever"`, "relay.lua:2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := writeScript(t, tc.src)
			hs := start(t, p, Options{Timeout: 50 * time.Millisecond})
			if !hs.h.Has(tc.event) {
				t.Fatalf("Has(%s) = false", tc.event)
			}
			for i := range 2 { // the second call builds a new state
				begin := time.Now()
				err := callEvent(hs.h, tc.event)
				if took := time.Since(begin); took > 2*time.Second {
					t.Errorf("call took %v", took)
				}
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("call %d: error %v, want %q", i, err, tc.err)
				}
				var se *smtpwire.Error
				if errors.As(err, &se) {
					t.Errorf("a script error is an SMTP rejection: %v", err)
				}
			}
			if n := hs.errors(tc.event); n != 2 {
				t.Errorf("errors(%s) = %d, want 2", tc.event, n)
			}
			want := strings.ReplaceAll(tc.log, "DIR/", filepath.Dir(p)+"/")
			if l := hs.log.String(); !strings.Contains(l, want) || !strings.Contains(l, "event="+tc.event) {
				t.Errorf("log lacks %q:\n%s", want, l)
			}
		})
	}
}

// callEvent calls the hook of event once.
func callEvent(h *Hooks, event string) error {
	ctx := context.Background()
	var err error
	switch event {
	case EventGreeting:
		_, err = h.Greeting(ctx, GreetingMeta{Domain: "client"})
	case EventMessage:
		_, err = h.Decide(message(0))
	case EventDeliveryResult:
		err = h.DeliveryResult(ctx, DeliveryResult{Code: 421}, DeliveryMeta{Domain: "example.org"})
	case EventHTTPRequest:
		_, err = h.HTTPRequest(ctx, HTTPRequest{Method: "GET", Path: "/"})
	case EventAuth:
		_, err = h.Auth(ctx, "u", "p", AuthMeta{})
	case EventQueueConfig:
		_, _, err = h.QueueConfig("example.org", "", "", "")
	case EventEgressPath:
		_, _, err = h.EgressPath("example.org", "", "")
	}
	return err
}

// TestRunTime: the run-time functions and helpers, one script each.
func TestRunTime(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "data.json"), []byte(`{"acme": {"rate": 5, "tags": ["a", "b"]}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(filepath.Dir(dir), "secret.txt"), []byte("secret"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(filepath.Dir(dir), "secret.txt"), filepath.Join(dir, "link.txt")); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, src string
		check     func(t *testing.T, hs *harness)
	}{
		{"reject message", `kumo.on('smtp_message_received', function(d, m)
			kumo.add_header('X-Seen', '1')
			kumo.reject(550, '5.7.26 unauthenticated mail')
			kumo.add_header('X-Never', '1')
		end)`, func(t *testing.T, hs *harness) {
			_, err := hs.h.Decide(message(0))
			var se *smtpwire.Error
			if !errors.As(err, &se) || se.Reply.Code != 550 || se.Reply.Enhanced != "5.7.26" || se.Reply.Text() != "unauthenticated mail" {
				t.Errorf("error %#v", err)
			}
			if len(hs.errs) != 0 {
				t.Errorf("a rejection counted as an error")
			}
		}},
		{"reject defaults", `kumo.on('smtp_message_received', function(d, m) kumo.reject(451, 'later') end)`, func(t *testing.T, hs *harness) {
			_, err := hs.h.Decide(message(0))
			var se *smtpwire.Error
			if !errors.As(err, &se) || se.Reply.String() != (smtpwire.Reply{Code: 451, Enhanced: "4.7.1", Lines: []string{"later"}}).String() {
				t.Errorf("error %v", err)
			}
		}},
		{"reject greeting", `kumo.on('smtp_server_greeting', function(d, m)
			if m.peer == '192.0.2.1' then kumo.reject(554, 'go away') end
		end)`, func(t *testing.T, hs *harness) {
			g, err := hs.h.Greeting(context.Background(), GreetingMeta{Peer: "192.0.2.1"})
			if err != nil || g.Reject == nil || g.Reject.Code != 554 || g.Reject.Enhanced != "5.7.1" {
				t.Errorf("greeting %+v, %v", g, err)
			}
			g, err = hs.h.Greeting(context.Background(), GreetingMeta{Peer: "192.0.2.2"})
			if err != nil || g.Reject != nil {
				t.Errorf("greeting %+v, %v", g, err)
			}
		}},
		{"message functions", `kumo.on('smtp_message_received', function(domain, meta)
			assert(domain == 'example.org', domain)
			assert(meta.sender == 'app@acme.example' and meta.recipients[1] == 'user@Example.ORG')
			assert(meta.tenant == 'acme' and meta.campaign == nil and meta.listener == 'relay-in' and meta.size > 0)
			assert(meta.headers.subject == 'hello' and meta.headers.SUBJECT == 'hello' and meta.headers.nope == nil)
			local names = {}
			for k in pairs(meta.headers) do names[#names + 1] = k end
			table.sort(names)
			assert(table.concat(names, ',') == 'From,Subject,To', table.concat(names, ','))
			kumo.set_tenant('globex')
			kumo.set_campaign('spring')
			kumo.set_queue_priority(1)
			kumo.remove_header('Subject')
			kumo.sign_dkim('globex.example', 's2', 'keys/globex.pem', { 'From', 'Subject' })
			kumo.limit_sending('globex', 7200, { per = 'hour' })
			increment_campaign_metric('spring', 'queued')
		end)`, func(t *testing.T, hs *harness) {
			m := message(0)
			m.Tenant = "acme"
			d, err := hs.h.Decide(m)
			if err != nil {
				t.Fatal(err)
			}
			want := policy.Decision{Tenant: "globex", Campaign: "spring", Priority: 1,
				Edits:    []policy.HeaderEdit{{Kind: policy.Remove, Name: "Subject"}},
				DKIMKeys: []dkim.KeyConfig{{Domain: "globex.example", Selector: "s2", KeyFile: "keys/globex.pem", Headers: []string{"From", "Subject"}}}}
			if !reflect.DeepEqual(d, want) {
				t.Errorf("decision %+v", d)
			}
			if calls := hs.host.take(); !reflect.DeepEqual(calls, []string{"LimitSending(globex, 2)", "CampaignEvent(spring, queued)"}) {
				t.Errorf("calls %q", calls)
			}
		}},
		{"admin", `kumo.on('smtp_delivery_result', function(r, m)
			assert(r.enhanced_code == '5.1.1' and r.kind == 'Bounce' and m.attempts == 3 and m.recipient == 'u@example.org')
			kumo.suspend { domain = m.domain, tenant = m.tenant, reason = r.text, duration = '1h' }
			kumo.bounce { campaign = 'spring', site = m.site, duration = 60 }
			log_info('done', 'code', r.code)
		end)`, func(t *testing.T, hs *harness) {
			err := hs.h.DeliveryResult(context.Background(), DeliveryResult{Code: 550, Enhanced: "5.1.1", Text: "no such user", Kind: "Bounce"},
				DeliveryMeta{Domain: "Example.ORG", Site: "mx", Tenant: "acme", Attempts: 3, Recipient: "u@example.org"})
			if err != nil {
				t.Fatal(err)
			}
			want := []string{"Suspend({Domain:example.org Tenant:acme Campaign: Site:}, no such user, 1h0m0s)", "Bounce({Domain: Tenant: Campaign:spring Site:mx}, , 1m0s)"}
			if calls := hs.host.take(); !reflect.DeepEqual(calls, want) {
				t.Errorf("calls %q", calls)
			}
			if l := hs.log.String(); !strings.Contains(l, "level=INFO msg=done event=smtp_delivery_result script=") || !strings.Contains(l, "code=550") {
				t.Errorf("log %s", l)
			}
		}},
		{"http json", `kumo.on('http_request', function(r)
			if r.headers['x-api-key'] == 'k' then return nil end
			return { status = 403, body = { error = 'forbidden', path = r.path } }
		end)`, func(t *testing.T, hs *harness) {
			resp, err := hs.h.HTTPRequest(context.Background(), HTTPRequest{Method: "GET", Path: "/x"})
			if err != nil || resp == nil || resp.Status != 403 || !resp.JSON || string(resp.Body) != `{"error":"forbidden","path":"/x"}` {
				t.Errorf("%+v, %v", resp, err)
			}
			resp, err = hs.h.HTTPRequest(context.Background(), HTTPRequest{Headers: map[string]string{"X-Api-Key": "k"}})
			if resp != nil || err != nil {
				t.Errorf("%+v, %v", resp, err)
			}
		}},
		{"auth plain", `kumo.on('smtp_server_auth_plain', function(authz, authc, password, conn_meta)
			return authz == '' and authc == 'u' and password == 'p' and conn_meta.mechanism == 'PLAIN'
		end)
		kumo.on('smtp_server_auth', function(user, password, meta) return nil end)`, func(t *testing.T, hs *harness) {
			for _, tc := range []struct {
				pw   string
				want AuthResult
			}{{"p", AuthResult{Handled: true, OK: true}}, {"x", AuthResult{Handled: true}}} {
				got, err := hs.h.Auth(context.Background(), "u", tc.pw, AuthMeta{Mechanism: "PLAIN"})
				if err != nil || got != tc.want {
					t.Errorf("%s: %+v, %v", tc.pw, got, err)
				}
			}
		}},
		{"auth nil", `kumo.on('smtp_server_auth', function(user, password, meta) return nil end)`, func(t *testing.T, hs *harness) {
			got, err := hs.h.Auth(context.Background(), "u", "p", AuthMeta{})
			if err != nil || got.Handled {
				t.Errorf("%+v, %v", got, err)
			}
		}},
		{"helpers", `local data = kumo.json_decode(kumo.read_file('data.json'))
			assert(data.acme.rate == 5 and data.acme.tags[2] == 'b')
			assert(not pcall(kumo.read_file, '../secret.txt'))
			assert(not pcall(kumo.read_file, '/etc/passwd'))
			local ok, err = pcall(kumo.read_file, 'link.txt')
			assert(not ok and err:find('outside the script'), err)
			local parts = kumo.string.split('a.b..c', '.')
			assert(#parts == 4 and parts[3] == '' and parts[4] == 'c')
			assert(kumo.json_encode({1, 2, 'x'}) == '[1,2,"x"]')
			assert(kumo.json_encode({a = true}) == '{"a":true}')
			assert(kumo.json_parse('null') == nil)
			local t = {}
			for i = 1, 40 do t = { a = t, b = t } end
			ok, err = pcall(kumo.json_encode, t)
			assert(not ok and err:find('more than'), err)
			local loop = {}
			loop.self = loop
			ok, err = pcall(kumo.json_encode, loop)
			assert(not ok and err:find('nested too deep'), err)
			ok, err = pcall(kumo.set_tenant, 'x')
			assert(not ok and err:find('only in smtp_message_received'), err)
			ok, err = pcall(log_info, 'x')
			assert(not ok and err:find('log_info: only in event handlers'), err)
			local lookup = kumo.memoize(function(tenant)
				increment_campaign_metric('lookup', tenant)
				return { rate = data[tenant] and data[tenant].rate or 1 }
			end, { ttl = '1h', capacity = 10 })
			kumo.on('smtp_message_received', function(domain, meta)
				assert(lookup(meta.tenant).rate == 5)
				assert(kumo.read_file('data.json'):find('acme'))
			end)`, func(t *testing.T, hs *harness) {
			// Two states in the pool: the calls alternate between them,
			// and the memoized lookup runs once for both.
			st, err := hs.h.get()
			if err != nil {
				t.Fatal(err)
			}
			hs.h.put(st)
			for range 4 {
				m := message(0)
				m.Tenant = "acme"
				if _, err := hs.h.Decide(m); err != nil {
					t.Fatal(err)
				}
			}
			if calls := hs.host.take(); !reflect.DeepEqual(calls, []string{"CampaignEvent(lookup, acme)"}) {
				t.Errorf("calls %q", calls)
			}
		}},
		{"base decision", `kumo.on('smtp_message_received', function(d, meta)
			assert(meta.tenant == 'base-tenant' and meta.priority == 1)
			kumo.add_header('X-Script', 'yes')
		end)`, nil},
		{"coroutine", `local gen = coroutine.wrap(function()
				local i = 0
				while true do i = i + 1; coroutine.yield(i) end
			end)
			local co = coroutine.create(function(a) local b = coroutine.yield(a + 1) return b * 2 end)
			kumo.on('smtp_message_received', function(d, m)
				kumo.set_campaign('c' .. gen())
				if coroutine.status(co) == 'suspended' then
					local ok, v = coroutine.resume(co, 1)
					assert(ok and v == 2)
					ok, v = coroutine.resume(co, 5)
					assert(ok and v == 10 and coroutine.status(co) == 'dead')
				end
			end)`, func(t *testing.T, hs *harness) {
			for i := 1; i <= 3; i++ {
				d, err := hs.h.Decide(message(0))
				if err != nil || d.Campaign != fmt.Sprint("c", i) {
					t.Errorf("call %d: campaign %q, %v", i, d.Campaign, err)
				}
			}
		}},
		{"unknown event", `kumo.on('smtp_server_rewrite_envelope', function() error('never') end)`, func(t *testing.T, hs *harness) {
			if hs.h.Has("smtp_server_rewrite_envelope") {
				t.Error("Has(unknown) = true")
			}
			if _, err := hs.h.Decide(message(0)); err != nil {
				t.Error(err)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(dir, "relay.lua")
			if err := os.WriteFile(p, []byte(tc.src), 0o644); err != nil {
				t.Fatal(err)
			}
			if tc.check == nil { // base decision
				hs := start(t, p, Options{Base: baseRules{}})
				d, err := hs.h.Decide(message(0))
				if err != nil {
					t.Fatal(err)
				}
				want := []policy.HeaderEdit{{Kind: policy.Add, Name: "X-Base", Value: "1"}, {Kind: policy.Add, Name: "X-Script", Value: "yes"}}
				if d.Tenant != "base-tenant" || !reflect.DeepEqual(d.Edits, want) {
					t.Errorf("decision %+v", d)
				}
				return
			}
			tc.check(t, start(t, p, Options{}))
		})
	}
}

// baseRules stands for the configuration's policy.
type baseRules struct{}

func (baseRules) Decide(m policy.Message) (policy.Decision, error) {
	return policy.Decision{Tenant: "base-tenant", Priority: 1, Edits: []policy.HeaderEdit{{Kind: policy.Add, Name: "X-Base", Value: "1"}}}, nil
}

// TestLoadTimeCalls: the run-time functions are errors at load, at the
// line of the call.
func TestLoadTimeCalls(t *testing.T) {
	for _, tc := range []struct{ src, err string }{
		{"\nkumo.set_tenant('x')", "relay.lua:2: kumo.set_tenant: only in smtp_message_received"},
		{"kumo.sign_dkim('a', 'b', 'c')", "kumo.sign_dkim: only in smtp_server_greeting and smtp_message_received"},
		{"adjust_domain_rate('a', -0.5)", "adjust_domain_rate: only in event handlers (kumo.on), not at load"},
		{"kumo.limit_sending('a', 1)", "kumo.limit_sending: only in event handlers"},
	} {
		_, err := LoadScript(writeScript(t, tc.src))
		if err == nil || !strings.Contains(err.Error(), tc.err) {
			t.Errorf("%s: %v, want %q", tc.src, err, tc.err)
		}
	}
	if _, err := (&Script{}).Start(Options{}); err == nil {
		t.Error("Start of a script not loaded from a file: no error")
	}
}

// TestParallel: many goroutines call the hooks at once (run with -race).
func TestParallel(t *testing.T) {
	referenceDir(t)
	// The budget is wall-clock time: 16 goroutines on a shared machine
	// under the race detector need more than the default.
	hs := start(t, "relay.lua", Options{Timeout: 5 * time.Second})
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for g := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 50 {
				m := message(512, "X-Type: transactional", fmt.Sprintf("X-Campaign: c%d", g))
				d, err := hs.h.Decide(m)
				if err == nil && d.Priority != 1 {
					err = fmt.Errorf("priority %d", d.Priority)
				}
				if err == nil {
					_, err = hs.h.Greeting(context.Background(), GreetingMeta{Tenant: "acme"})
				}
				if err == nil && i%10 == 0 {
					_, err = hs.h.Auth(context.Background(), "wordpress", "wp-secret", AuthMeta{})
				}
				if err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if n := len(hs.host.take()); n != 16*50*2 {
		t.Errorf("host calls %d, want %d", n, 16*50*2)
	}
}

// FuzzHooks: no script makes Start and one message hook call panic or run
// long.
func FuzzHooks(f *testing.F) {
	f.Add([]byte(`kumo.on('smtp_message_received', function(d, m) kumo.add_header('X-A', m.headers.subject or 'none') end)`))
	f.Add([]byte(`kumo.on('smtp_server_message_received', function(msg) msg:set_meta('tenant', msg:from_header().domain) end)`))
	f.Add([]byte(`kumo.on('smtp_message_received', function(d, m) kumo.reject(550, '5.7.1 no') end)`))
	f.Add([]byte(`kumo.on('smtp_message_received', function(d, m) while true do end end)`))
	f.Fuzz(func(t *testing.T, src []byte) {
		begin := time.Now()
		s, err := loadSource("fuzz.lua", src, 20*time.Millisecond)
		if err != nil {
			return
		}
		h, err := s.start(Options{Timeout: 20 * time.Millisecond}, 20*time.Millisecond)
		if err != nil {
			return
		}
		defer h.Close()
		_, _ = h.Decide(message(0, "X-Campaign: c"))
		if d := time.Since(begin); d > 2*time.Second {
			t.Fatalf("took %v", d)
		}
	})
}

func BenchmarkHookGreeting(b *testing.B) {
	referenceDir(b)
	hs := start(b, "relay.lua", Options{Host: nopHost{}, Timeout: 5 * time.Second}) // the relay's side is not measured; no budget overrun on a loaded machine
	ctx := context.Background()
	meta := GreetingMeta{Domain: "app1", Tenant: "acme", Peer: "127.0.0.1", Listener: "relay-in"}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := hs.h.Greeting(ctx, meta); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkHookMessage(b *testing.B) {
	referenceDir(b)
	hs := start(b, "relay.lua", Options{Host: nopHost{}, Timeout: 5 * time.Second}) // the relay's side is not measured; no budget overrun on a loaded machine
	m := message(2048, "X-Type: transactional", "X-Campaign: spring", "Message-ID: <1@acme.example>", "Date: Mon, 7 Dec 2026 12:00:00 +0000")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := hs.h.Decide(m); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkHookDeliveryResult(b *testing.B) {
	referenceDir(b)
	hs := start(b, "relay.lua", Options{Host: nopHost{}, Timeout: 5 * time.Second}) // the relay's side is not measured; no budget overrun on a loaded machine
	ctx := context.Background()
	r := DeliveryResult{Code: 250, Enhanced: "2.0.0", Text: "ok", Kind: "Delivery"}
	m := DeliveryMeta{Domain: "example.org", Site: "mx.example.org", Tenant: "acme", Attempts: 1, ID: "q1", Recipient: "u@example.org"}
	b.ReportAllocs()
	for b.Loop() {
		if err := hs.h.DeliveryResult(ctx, r, m); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkHookHTTPRequest(b *testing.B) {
	referenceDir(b)
	hs := start(b, "relay.lua", Options{Host: nopHost{}, Timeout: 5 * time.Second}) // the relay's side is not measured; no budget overrun on a loaded machine
	ctx := context.Background()
	r := HTTPRequest{Method: "POST", Path: "/api/inject/v1", Headers: map[string]string{"Authorization": "Bearer key-acme-1", "Content-Type": "application/json"}, Remote: "10.0.0.1"}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := hs.h.HTTPRequest(ctx, r); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkHookAuth(b *testing.B) {
	referenceDir(b)
	hs := start(b, "relay.lua", Options{Host: nopHost{}, Timeout: 5 * time.Second}) // the relay's side is not measured; no budget overrun on a loaded machine
	ctx := context.Background()
	m := AuthMeta{Listener: "submission", Peer: "127.0.0.1", Mechanism: "PLAIN"}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := hs.h.Auth(ctx, "wordpress", "wp-secret", m); err != nil {
			b.Fatal(err)
		}
	}
}

// TestDocExamples: the handler examples of docs/policy.md load, start and
// run for every event.
func TestDocExamples(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join("..", "..", "..", "docs", "policy.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, events, ok := strings.Cut(string(doc), "### How handlers run")
	if !ok {
		t.Fatal("no events section in docs/policy.md")
	}
	events, _, _ = strings.Cut(events, "## Sandbox")
	blocks := strings.Split(events, "```lua\n")[1:]
	if len(blocks) < 8 {
		t.Fatalf("%d examples", len(blocks))
	}
	for i, b := range blocks {
		src, _, _ := strings.Cut(b, "```")
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			dir := t.TempDir()
			for name, data := range map[string]string{
				"users.json":   `{"wordpress": {"password": "wp-secret", "tenant": "acme"}}`,
				"tenants.json": `{"acme": {"rate": 600}}`,
			} {
				if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			p := filepath.Join(dir, "relay.lua")
			if err := os.WriteFile(p, []byte(src), 0o644); err != nil {
				t.Fatal(err)
			}
			hs := start(t, p, Options{})
			for _, ev := range []string{EventGreeting, EventMessage, EventDeliveryResult, EventHTTPRequest, EventAuth, EventQueueConfig, EventEgressPath} {
				if !hs.h.Has(ev) {
					continue
				}
				err := callEvent(hs.h, ev)
				var se *smtpwire.Error
				if err != nil && !errors.As(err, &se) {
					t.Errorf("%s: %v", ev, err)
				}
			}
			if _, err := hs.h.Greeting(context.Background(), GreetingMeta{Tenant: "acme", Peer: "192.0.2.1"}); err != nil {
				t.Error(err)
			}
			m := message(0, "X-Campaign: spring", "X-Type: transactional", "X-Tenant: acme")
			m.Sender, m.Recipients = "a@example.com", []string{"b@gmail.com"}
			if _, err := hs.h.Decide(m); err != nil {
				t.Error(err)
			}
			for _, a := range [][3]string{{"gmail.com", "bulk", ""}, {"example.org", "", ""}} {
				if _, _, err := hs.h.QueueConfig(a[0], a[1], a[2], ""); err != nil {
					t.Error(err)
				}
				if _, _, err := hs.h.EgressPath(a[0], "", ""); err != nil {
					t.Error(err)
				}
			}
			if err := hs.h.DeliveryResult(context.Background(), DeliveryResult{Code: 550, Enhanced: "5.7.1", Text: "blocked"},
				DeliveryMeta{Domain: "example.org", Tenant: "acme", Attempts: 1}); err != nil {
				t.Error(err)
			}
			if _, err := hs.h.Auth(context.Background(), "wordpress", "wp-secret", AuthMeta{}); err != nil {
				t.Error(err)
			}
		})
	}
}

// TestStartFails: a script that fails in run mode fails Start.
func TestStartFails(t *testing.T) {
	p := writeScript(t, `local users = kumo.read_file('users.txt')`)
	data := filepath.Join(filepath.Dir(p), "users.txt")
	if err := os.WriteFile(data, []byte("u"), 0o644); err != nil {
		t.Fatal(err)
	}
	s, err := LoadScript(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(data); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Start(Options{}); err == nil || !strings.Contains(err.Error(), "relay.lua:1: kumo.read_file: users.txt") {
		t.Errorf("Start: %v", err)
	}
}

// TestExpiredBudget: a budget that ends before the script runs (a loaded
// machine) is an error, not a panic while the sandbox opens.
func TestExpiredBudget(t *testing.T) {
	if _, err := loadSource("x.lua", []byte("local a = 1"), time.Nanosecond); err == nil || !strings.Contains(err.Error(), "ran past its load budget") {
		t.Errorf("load: %v", err)
	}
	s, err := loadSource("x.lua", []byte("kumo.on('smtp_message_received', function(d, m) end)"), time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.start(Options{}, time.Nanosecond); err == nil || !strings.Contains(err.Error(), "ran past its load budget") {
		t.Errorf("start: %v", err)
	}
}

// TestHeadersTableKept: a message's headers table reads its fields from
// that message when asked, also when a script keeps the table past the
// call and reads it during another message's hook, after that message's
// buffer was reused; a header that appears
// twice gives its first value, in lookups and in pairs().
func TestHeadersTableKept(t *testing.T) {
	p := filepath.Join(t.TempDir(), "kept.lua")
	src := `
local kept
kumo.on('smtp_message_received', function(domain, meta)
  if kept == nil then
    kept = meta.headers
    return
  end
  assert(kept['x-seq'] == '1', tostring(kept['x-seq']))
  assert(meta.headers['X-SEQ'] == '2', tostring(meta.headers['X-SEQ']))
  assert(meta.headers['X-Dup'] == 'first', tostring(meta.headers['X-Dup']))
  local n = 0
  for k, v in pairs(meta.headers) do
    n = n + 1
    if k == 'X-Dup' then assert(v == 'first', v) end
  end
  assert(n == 5, 'fields: ' .. n)
  kumo.set_campaign('checked')
end)
`
	if err := os.WriteFile(p, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	hs := start(t, p, Options{})
	first := message(0, "X-Seq: 1")
	if _, err := hs.h.Decide(first); err != nil {
		t.Fatal(err)
	}
	clear(first.Body) // the store path reuses the buffer once the message is spooled
	d, err := hs.h.Decide(message(0, "X-Seq: 2", "X-Dup: first", "X-Dup: second"))
	if err != nil || d.Campaign != "checked" {
		t.Fatalf("second message: %+v, %v\n%s", d, err, hs.log)
	}
}
