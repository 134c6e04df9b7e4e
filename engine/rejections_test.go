package engine

import (
	"log/slog"
	"testing"
	"time"
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
