package engine

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gannet/engine/config"
)

// TestRejectionLimiter: a burst of one period's worth, then the rate.
func TestRejectionLimiter(t *testing.T) {
	var l rejectionLimiter
	t0 := time.Unix(1700000000, 0)
	n := 0
	for i := 0; i < 50; i++ {
		if l.allow(t0, 10, time.Second) {
			n++
		}
	}
	if n != 10 {
		t.Errorf("burst allowed %d, want 10", n)
	}
	if !l.allow(t0.Add(150*time.Millisecond), 10, time.Second) || l.allow(t0.Add(150*time.Millisecond), 10, time.Second) {
		t.Error("after 150ms at 10/s, want one more and no second")
	}
	if !l.allow(t0, 0, 0) {
		t.Error("no rate must not limit")
	}
}

func TestLogLevel(t *testing.T) {
	lv := new(slog.LevelVar)
	e := &Engine{logLevel: lv, log: slog.New(slog.DiscardHandler)}
	for _, c := range []struct{ in, want string }{{"debug", "debug"}, {"WARN", "warn"}, {"error", "error"}, {"info", "info"}} {
		got, err := e.SetLogLevel(c.in)
		if err != nil || got != c.want || e.LogLevel() != c.want {
			t.Errorf("SetLogLevel(%q) = %q, %v; LogLevel %q", c.in, got, err, e.LogLevel())
		}
	}
	if _, err := e.SetLogLevel("loud"); err == nil {
		t.Error("SetLogLevel(loud) accepted")
	}
}

// TestLogLevelAtStartAndReload: [log] level is applied at start and on
// reload, which also undoes a level set at run time; the caps of the
// Rejection records are read anew too, and none of it needs a restart.
func TestLogLevelAtStartAndReload(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "gannet.toml")
	write := func(level string) {
		t.Helper()
		text := reloadConfigText(dir, "10/s", "6/m", "opportunistic", "X-Tenant", "")
		text = strings.Replace(text, "[log]\n", "[log]\nlevel = \""+level+"\"\nrejections_per_connection = 3\n", 1)
		if err := os.WriteFile(file, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("warn")
	cfg, err := config.Load(file)
	if err != nil {
		t.Fatal(err)
	}
	logs := new(syncBuffer)
	lv := new(slog.LevelVar)
	e, err := New(cfg, Options{Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: lv})), LogLevel: lv})
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
	if e.LogLevel() != "warn" {
		t.Errorf("level at start %q, want warn", e.LogLevel())
	}
	if _, err := e.SetLogLevel("debug"); err != nil || lv.Level() != slog.LevelDebug {
		t.Fatalf("SetLogLevel: %v", err)
	}
	write("error")
	e.Reload()
	if e.LogLevel() != "error" {
		t.Errorf("level after reload %q, want error", e.LogLevel())
	}
	if r := needsRestart(cfg, e.conf()); len(r) != 0 {
		t.Errorf("[log] level reported as needing a restart: %v", r)
	}
	if n := e.conf().Log.RejectionsPerConnection; n != 3 {
		t.Errorf("rejections_per_connection %d, want 3", n)
	}
}
