package engine

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"gannet/engine/config"
	"gannet/engine/httpapi"
	"gannet/engine/outbound"
	"gannet/engine/policy"
)

// syncBuffer is a log sink safe for the engine's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// reloadConfig is a config whose reloadable parts are set by the
// arguments. Mail goes to a closed loopback port (relay_to), so it stays
// queued at one site whose shaping the test can watch.
func reloadConfigText(dir, rate, tenantRate, tlsMode, tenantHeader, extra string) string {
	top := "smtp_listener = []\n"
	if !strings.Contains(extra, "[[http_listener]]") {
		top += "http_listener = []\n"
	}
	return top + fmt.Sprintf(`
[spool]
path = %q
[log]
path = %q
[delivery]
relay_to = "127.0.0.1:1"
ehlo_name = "relay.reload.test"
[shaping.default]
max_message_rate = %q
[[tenant]]
name = "acme"
max_message_rate = %q
[tls]
mode = %q
[meta]
tenant_header = %q
%s`, filepath.Join(dir, "spool"), filepath.Join(dir, "logs"), rate, tenantRate, tlsMode, tenantHeader, extra)
}

// startLogged starts an engine on cfg that logs to logs, stopped when the
// test ends.
func startLogged(t *testing.T, cfg *config.Config, logs *syncBuffer) *Engine {
	t.Helper()
	e, err := New(cfg, Options{Logger: slog.New(slog.NewTextHandler(logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		e.Stop(ctx)
	})
	return e
}

// TestReloadAppliesConfig: SIGHUP's Reload re-reads the config file and
// applies the shaping limits (seen in gannet_site_effective_rate), tenant
// rates, the outbound TLS policy and [meta]; it names what needs a
// restart; and a broken file changes nothing and is reported FILE:LINE.
func TestReloadAppliesConfig(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "gannet.toml")
	write := func(s string) {
		t.Helper()
		if err := os.WriteFile(file, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(reloadConfigText(dir, "10/s", "6/m", "opportunistic", "X-Tenant", ""))
	cfg, err := config.Load(file)
	if err != nil {
		t.Fatal(err)
	}
	logs := new(syncBuffer)
	e := startLogged(t, cfg, logs)
	msg := httpapi.Message{From: "a@src.test", Recipients: []string{"b@dst.test"},
		Body: []byte("From: a@src.test\r\nTo: b@dst.test\r\nSubject: reload\r\n\r\nhi\r\n")}
	if _, err := e.Inject(context.Background(), []httpapi.Message{msg}); err != nil {
		t.Fatal(err)
	}
	// siteRate waits until gannet_site_effective_rate of the one site is want.
	siteRate := func(want string) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			text := scrapeText(e.metrics)
			var got []string
			for _, l := range strings.Split(text, "\n") {
				if strings.HasPrefix(l, "gannet_site_effective_rate{") {
					got = append(got, l)
				}
			}
			if len(got) == 1 && strings.HasSuffix(got[0], " "+want) {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("gannet_site_effective_rate: %q, want one site at %s", got, want)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	siteRate("10")
	if r := e.tenantRate("acme"); r != 0.1 {
		t.Fatalf("tenant rate %v, want 0.1/s", r)
	}

	// A valid new file: every reloadable part changes, and one listener
	// setting that needs a restart.
	write(reloadConfigText(dir, "25/s", "12/m", "disabled", "X-Customer", `
[[http_listener]]
listen = "127.0.0.1:0"
[tls_policy."secure.test"]
mode = "required"
[queue]
retry_interval = "90s"
max_retry_age = "24h"
`))
	res := e.Reload()
	if p := e.delivery.Retry(); p.Initial != 90*time.Second || p.MaxAge != 24*time.Hour {
		t.Errorf("retry schedule after reload: %+v, want retry_interval 90s, max_retry_age 24h", p)
	}
	siteRate("25")
	if r := e.tenantRate("acme"); r != 0.2 {
		t.Errorf("tenant rate after reload %v, want 0.2/s", r)
	}
	if pol, key := e.tlsFor("dst.test"); pol.Mode != outbound.TLSDisabled || key != "#1" {
		t.Errorf("TLS policy after reload: mode %v key %q, want disabled under a new pool key", pol.Mode, key)
	}
	if pol, key := e.tlsFor("secure.test"); pol.Mode != outbound.TLSRequired || key != "secure.test#1" {
		t.Errorf("tls_policy after reload: mode %v key %q", pol.Mode, key)
	}
	if d, _ := e.policy().messages.Decide(policy.Message{Body: []byte("X-Customer: acme\r\nX-Tenant: other\r\n\r\nbody\r\n"), Trusted: true}); d.Tenant != "acme" {
		t.Errorf("[meta] tenant_header not reloaded: tenant %q", d.Tenant)
	}
	if len(res.Errors) > 0 || len(res.NeedsRestart) > 0 {
		t.Errorf("reload: errors %q, needs restart %q; want neither", res.Errors, res.NeedsRestart)
	}
	applied := strings.Join(res.Applied, "\n")
	for _, want := range []string{"http_listener 127.0.0.1:0 added", "[queue]", "[tls]", "[shaping.*]", "[meta]"} {
		if !strings.Contains(applied, want) {
			t.Errorf("reload applied %q, want %q among them", res.Applied, want)
		}
	}
	if len(e.HTTPAddrs()) != 1 {
		t.Errorf("HTTP listeners after the reload: %q, want the one added", e.HTTPAddrs())
	}

	// A broken file: nothing changes, and each problem is logged FILE:LINE.
	write(reloadConfigText(dir, "50/s", "60/m", "nonsense", "X-Tenant", "\n[delivery]\nno_such_key = 1\n"))
	if res := e.Reload(); len(res.Errors) < 2 || len(res.Applied) != 0 {
		t.Errorf("a broken file: errors %q applied %q, want every problem and nothing applied", res.Errors, res.Applied)
	}
	out := logs.String()
	if !strings.Contains(out, file+":") || !strings.Contains(out, "keeping the running configuration") {
		t.Errorf("a broken file is not reported with FILE:LINE:\n%s", out)
	}
	// Every problem, decode errors included, in the one reload.
	for _, p := range []string{`tls.mode: \"nonsense\" is not one of`, "delivery.no_such_key: unknown key"} {
		if !strings.Contains(out, p) {
			t.Errorf("reload does not report %q:\n%s", p, out)
		}
	}
	time.Sleep(1100 * time.Millisecond) // the shaper re-reads limits once a second
	siteRate("25")
	if r := e.tenantRate("acme"); r != 0.2 {
		t.Errorf("tenant rate after a broken reload %v, want 0.2/s still", r)
	}
	if pol, _ := e.tlsFor("dst.test"); pol.Mode != outbound.TLSDisabled {
		t.Errorf("TLS policy changed by a broken file: %v", pol.Mode)
	}
}

// TestReloadEmbeddedDefault: with no config file there is nothing to
// re-read; Reload says so and keeps running.
func TestReloadEmbeddedDefault(t *testing.T) {
	dir := t.TempDir()
	c := config.Default()
	c.Spool.Path, c.Log.Path = filepath.Join(dir, "spool"), filepath.Join(dir, "logs")
	c.SMTPListeners, c.HTTPListeners = nil, nil
	c.Delivery.RelayTo = "127.0.0.1:1"
	var logs syncBuffer
	e, err := New(c, Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Stop(context.Background())
	e.Reload()
	if !strings.Contains(logs.String(), "no file to re-read") {
		t.Errorf("log:\n%s", logs.String())
	}
	if e.conf() != c {
		t.Error("the configuration was replaced")
	}
}

// TestReloadLuaScript: a Lua configuration is re-read through the same
// loader on Reload; a script that fails to load changes nothing and is
// reported FILE:LINE.
func TestReloadLuaScript(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "relay.lua")
	write := func(tenantRate, extra string) {
		t.Helper()
		s := fmt.Sprintf(`kumo.start_smtp_listener { listen = "127.0.0.1:0" }
kumo.start_http_listener { listen = "127.0.0.1:0" }
kumo.configure_spool { path = %q }
kumo.configure_log { path = %q }
kumo.configure_delivery { relay_to = "127.0.0.1:1" }
kumo.define_tenant { name = "acme", max_message_rate = %s }
%s`, filepath.Join(dir, "spool"), filepath.Join(dir, "logs"), tenantRate, extra)
		if err := os.WriteFile(file, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("6", "")
	cfg, err := LoadConfig(file)
	if err != nil {
		t.Fatal(err)
	}
	logs := new(syncBuffer)
	e := startLogged(t, cfg, logs)
	if r := e.tenantRate("acme"); r != 0.1 {
		t.Fatalf("tenant rate %v, want 0.1/s (6 a minute)", r)
	}
	write(`"12/m"`, "")
	e.Reload()
	if r := e.tenantRate("acme"); r != 0.2 {
		t.Errorf("tenant rate after reload %v, want 0.2/s", r)
	}
	write("60", "kumo.configure_queue { no_such_key = 1 }\n")
	e.Reload()
	if out := logs.String(); !strings.Contains(out, file+`:7: kumo.configure_queue: unknown key`) {
		t.Errorf("a broken script is not reported with FILE:LINE:\n%s", out)
	}
	if r := e.tenantRate("acme"); r != 0.2 {
		t.Errorf("tenant rate after a broken reload %v, want 0.2/s still", r)
	}
}
