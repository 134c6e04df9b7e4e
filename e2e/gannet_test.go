package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"text/template"
	"time"
)

// gannetStartMax bounds how long gannet may take to greet on its SMTP port
// (first start generates a self-signed certificate).
const gannetStartMax = 30 * time.Second

// gannetConfig is what a test chooses about the relay it starts.
type gannetConfig struct {
	DNS              string   // "127.0.0.1:port" of the test DNS server (required)
	DeliveryPort     int      // [delivery] smtp_port: the receivers' port (required)
	RelayHosts       []string // default 127.0.0.1/32
	RetryInterval    string   // default "1s"
	MaxRetryInterval string   // default "2s"
	MaxRetryAge      string   // default "10m"
	TLSMode          string   // [tls] mode, default "opportunistic"
	CAFile           string   // [tls] ca_file, default none
	DNSSEC           string   // [resolver] dnssec, default none ("off")
	TLSExtra         string   // more TOML in [tls]
	DeliveryExtra    string   // more TOML in [delivery] (relay_to, relay_user, …)
	Extra            string   // more TOML appended at the end
	// Script is a Lua policy script, written next to the config and named
	// by [policy] script. Its listener addresses 127.0.0.1:2525 and
	// 127.0.0.1:8000 (those of policy.md's reference script) become the
	// test's SMTP and HTTP addresses; ScriptReplace holds more old, new
	// pairs to replace in it.
	Script        string
	ScriptReplace []string
	HookTimeout   string // [policy] hook_timeout; "": the default
	SendBounces   bool   // [delivery] send_bounces
}

// configTemplate is the TOML config every e2e gannet runs with. It names the
// test DNS server ALWAYS: gannet must never reach the machine's resolver.
var configTemplate = template.Must(template.New("gannet.toml").Parse(`# gannet e2e test config (generated)
[spool]
path = "{{.Dir}}/spool"
compression = "zstd"

[log]
path = "{{.Dir}}/logs"

[[smtp_listener]]
name = "e2e-in"
listen = "{{.SMTPAddr}}"
hostname = "relay.e2e.test"
relay_hosts = [{{.RelayHosts}}]
max_message_size = "20MiB"
max_recipients = 1000

[[http_listener]]
listen = "{{.HTTPAddr}}"
trusted_hosts = ["127.0.0.1/32"]
services = ["inject", "admin", "metrics"]

[resolver]
nameservers = ["{{.DNS}}"]
timeout = "2s"
{{- if .DNSSEC}}
dnssec = "{{.DNSSEC}}"
{{- end}}

[delivery]
ehlo_name = "relay.e2e.test"
smtp_port = {{.DeliveryPort}}
{{- if .SendBounces}}
send_bounces = true
{{- end}}
{{.DeliveryExtra}}

[tls]
mode = "{{.TLSMode}}"
{{- if .CAFile}}
ca_file = "{{.CAFile}}"
{{- end}}
{{.TLSExtra}}

[queue]
retry_interval = "{{.RetryInterval}}"
max_retry_interval = "{{.MaxRetryInterval}}"
max_retry_age = "{{.MaxRetryAge}}"
{{.Extra}}
`))

// gannet is one relay process with its own data directory and ports.
type gannet struct {
	t          testing.TB
	bin        string
	Dir        string // data dir: spool, logs, config
	ConfigPath string
	LogDir     string
	SMTPAddr   string
	HTTPAddr   string
	p          *proc
}

// startGannet writes a config for cfg and starts `gannet serve -config FILE`,
// waiting for its 220 greeting. The process is stopped with SIGTERM at the end
// of the test (SIGKILL after stopTimeout).
func startGannet(t testing.TB, cfg gannetConfig) *gannet {
	t.Helper()
	bin := gannetBinary(t)
	if cfg.DNS == "" || cfg.DeliveryPort == 0 {
		t.Fatal("startGannet: DNS and DeliveryPort are required")
	}
	if len(cfg.RelayHosts) == 0 {
		cfg.RelayHosts = []string{"127.0.0.1/32"}
	}
	cfg.RetryInterval = cmpOr(cfg.RetryInterval, "1s")
	cfg.MaxRetryInterval = cmpOr(cfg.MaxRetryInterval, "2s")
	cfg.MaxRetryAge = cmpOr(cfg.MaxRetryAge, "10m")
	cfg.TLSMode = cmpOr(cfg.TLSMode, "opportunistic")
	dir := t.TempDir()
	g := &gannet{
		t: t, bin: bin, Dir: dir,
		ConfigPath: filepath.Join(dir, "gannet.toml"),
		LogDir:     filepath.Join(dir, "logs"),
		SMTPAddr:   hostPort("127.0.0.1", freePort(t, false, "127.0.0.1")),
		HTTPAddr:   hostPort("127.0.0.1", freePort(t, false, "127.0.0.1")),
	}
	if cfg.Script != "" {
		pairs := append([]string{"127.0.0.1:2525", g.SMTPAddr, "127.0.0.1:8000", g.HTTPAddr}, cfg.ScriptReplace...)
		script := filepath.Join(dir, "policy.lua")
		if err := os.WriteFile(script, []byte(strings.NewReplacer(pairs...).Replace(cfg.Script)), 0o600); err != nil {
			t.Fatal(err)
		}
		cfg.Extra += fmt.Sprintf("\n[policy]\nscript = %q\n", script)
		if cfg.HookTimeout != "" {
			cfg.Extra += fmt.Sprintf("hook_timeout = %q\n", cfg.HookTimeout)
		}
	}
	quoted := make([]string, len(cfg.RelayHosts))
	for i, h := range cfg.RelayHosts {
		quoted[i] = strconv.Quote(h)
	}
	var b strings.Builder
	err := configTemplate.Execute(&b, map[string]any{
		"Dir": dir, "SMTPAddr": g.SMTPAddr, "HTTPAddr": g.HTTPAddr,
		"RelayHosts": strings.Join(quoted, ", "), "DNS": cfg.DNS, "DeliveryPort": cfg.DeliveryPort,
		"RetryInterval": cfg.RetryInterval, "MaxRetryInterval": cfg.MaxRetryInterval,
		"MaxRetryAge": cfg.MaxRetryAge, "TLSMode": cfg.TLSMode, "CAFile": cfg.CAFile, "DNSSEC": cfg.DNSSEC, "TLSExtra": cfg.TLSExtra, "Extra": cfg.Extra,
		"SendBounces":   cfg.SendBounces,
		"DeliveryExtra": cfg.DeliveryExtra,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(g.ConfigPath, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("--- gannet config %s:\n%s", g.ConfigPath, b.String())
			if recs, err := readLogRecords(g.LogDir); err == nil {
				t.Logf("--- gannet log records:\n%s", summarize(recs))
			}
		}
	})
	g.start()
	return g
}

func cmpOr(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

func (g *gannet) start() {
	g.t.Helper()
	g.p = startProc(g.t, g.bin, "serve", "-config", g.ConfigPath)
	waitBanner(g.t, g.SMTPAddr, g.p, gannetStartMax)
}

// Stop stops gannet with SIGTERM and fails the test if it does not exit in
// time (then it is killed).
func (g *gannet) Stop() {
	g.t.Helper()
	if !g.p.stop() {
		g.t.Errorf("gannet did not stop within %v of SIGTERM", stopTimeout)
	}
}

// Kill9 kills gannet with SIGKILL, as a crash would.
func (g *gannet) Kill9() { g.p.kill9() }

// Restart starts gannet again on the same data dir, config and ports. The
// previous process must have ended (Stop or Kill9).
func (g *gannet) Restart() {
	g.t.Helper()
	if !g.p.exited() {
		g.t.Fatal("Restart: gannet is still running; call Stop or Kill9 first")
	}
	g.start()
}

// Records returns every log record written so far.
func (g *gannet) Records() []logRecord {
	g.t.Helper()
	recs, err := readLogRecords(g.LogDir)
	if err != nil {
		g.t.Fatalf("read log records under %s: %v", g.LogDir, err)
	}
	return recs
}

// WaitRecords waits until at least n records match f and returns them.
func (g *gannet) WaitRecords(f recordFilter, n int, timeout time.Duration) []logRecord {
	g.t.Helper()
	var got []logRecord
	waitFor(g.t, timeout, fmt.Sprintf("%d log record(s) matching %+v", n, f), func() (bool, string) {
		all := g.Records()
		got = selectRecords(all, f)
		return len(got) >= n, fmt.Sprintf("have %d; all records:\n%s", len(got), summarize(all))
	})
	return got
}
