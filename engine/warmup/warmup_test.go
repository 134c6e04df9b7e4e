package warmup

import (
	"log/slog"
	"testing"
	"time"

	"gannet/engine/config"
	"gannet/queue"
	"gannet/queue/queuetest"
)

// ramp is the warm-up of a source configured with warmup = "ramp", 200 a
// day to gmail and 500 to the rest on day 1, the default cap.
func ramp(name string, start time.Time) Source {
	cfg := &config.EgressSource{Name: name, Warmup: config.WarmupRamp, WarmupDay1: []config.WarmupFigure{{Provider: "gmail", Messages: 200}}}
	return Source{Name: name, Start: start, Allowance: cfg.WarmupAllowance}
}

// takeAll takes until the allowance is used up (bounded) and returns how
// many were taken and the time the last refusal named.
func takeAll(t *testing.T, tr *Tracker, src, prov string) (int, time.Time) {
	t.Helper()
	for n := 0; n < 1_000_000; n++ {
		if ok, until := tr.Take(src, prov); !ok {
			return n, until
		}
	}
	t.Fatalf("%s/%s: never refused", src, prov)
	return 0, time.Time{}
}

// TestDayOneAllowanceThenDoubled: on day 1 a warming source sends 200 to
// gmail and 500 elsewhere, then is refused until midnight UTC; the next
// day its allowances are twice as large; a source without a schedule is
// never refused.
func TestDayOneAllowanceThenDoubled(t *testing.T) {
	clk := queuetest.NewFakeClock(time.Date(2026, 12, 1, 15, 4, 5, 0, time.UTC))
	tr, err := New([]Source{ramp("fresh", time.Time{})}, nil, clk.Now, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if n, until := takeAll(t, tr, "fresh", "gmail"); n != 200 || !until.Equal(time.Date(2026, 12, 2, 0, 0, 0, 0, time.UTC)) {
		t.Fatalf("day 1 gmail: %d taken, until %v; want 200, 2026-12-02 00:00 UTC", n, until)
	}
	if n, _ := takeAll(t, tr, "fresh", ""); n != 500 {
		t.Fatalf("day 1 elsewhere: %d taken, want 500", n)
	}
	if got := tr.Remaining("fresh", "gmail"); got != 0 {
		t.Fatalf("remaining gmail day 1 = %d, want 0", got)
	}
	for range 1000 {
		if ok, _ := tr.Take("warm", "gmail"); !ok {
			t.Fatal("a source without a schedule was refused")
		}
	}
	clk.Advance(9 * time.Hour) // 2026-12-02 00:04
	if d := tr.Day("fresh"); d != 2 {
		t.Fatalf("day = %d, want 2", d)
	}
	if n, _ := takeAll(t, tr, "fresh", "gmail"); n != 400 {
		t.Fatalf("day 2 gmail: %d taken, want 400", n)
	}
	if n, _ := takeAll(t, tr, "fresh", ""); n != 1000 {
		t.Fatalf("day 2 elsewhere: %d taken, want 1000", n)
	}
	st := tr.Statuses([]string{"gmail", ""})
	if len(st) != 2 || st[1].Provider != "gmail" || st[1].Allowance != 400 || st[1].Used != 400 || st[1].Remaining != 0 || st[1].Day != 2 {
		t.Fatalf("statuses = %+v", st)
	}
}

// TestCapEndsTheRamp: once a day's figure reaches the cap the source is
// no longer limited for that provider.
func TestCapEndsTheRamp(t *testing.T) {
	clk := queuetest.NewFakeClock(time.Date(2026, 12, 9, 12, 0, 0, 0, time.UTC))
	s := ramp("fresh", time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC))
	tr, err := New([]Source{s}, nil, clk.Now, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if got := tr.Remaining("fresh", "gmail"); got != 51200 { // day 9: 200×256 < cap
		t.Fatalf("day 9 gmail remaining = %d, want 51200", got)
	}
	clk.Advance(24 * time.Hour) // day 10: 200×512 = 102400 ≥ cap
	if got := tr.Remaining("fresh", "gmail"); got != -1 {
		t.Fatalf("day 10 gmail remaining = %d, want -1 (no limit)", got)
	}
	if ok, _ := tr.Take("fresh", "gmail"); !ok {
		t.Fatal("refused past the cap")
	}
}

// TestStartDatePersistedAcrossRestart: the day of first use and the day's
// counts are stored in the spool: a tracker opened again on the same spool
// the same day has only what was left (a restart grants nothing again),
// and days later it continues the ramp (day 3: 4× day 1) instead of
// starting it again.
func TestStartDatePersistedAcrossRestart(t *testing.T) {
	dir := t.TempDir()
	clk := queuetest.NewFakeClock(time.Date(2026, 12, 1, 22, 0, 0, 0, time.UTC))
	log := slog.New(slog.DiscardHandler)
	open := func() (*queue.Spool, *Tracker) {
		t.Helper()
		sp, err := queue.Open(queue.Options{Dir: dir, MinFreeBytes: -1})
		if err != nil {
			t.Fatal(err)
		}
		tr, err := New([]Source{ramp("fresh", time.Time{})}, sp, clk.Now, log)
		if err != nil {
			t.Fatal(err)
		}
		return sp, tr
	}
	sp, tr := open()
	if tr.Day("fresh") != 0 {
		t.Fatal("started before its first use")
	}
	for range 100 { // first use: 2026-12-01; half of gmail's 200
		tr.Take("fresh", "gmail")
	}
	if err := sp.Close(); err != nil {
		t.Fatal(err)
	}

	clk.Advance(time.Hour) // a restart the same day
	sp, tr = open()
	if got := tr.Remaining("fresh", "gmail"); got != 100 {
		t.Fatalf("gmail remaining after a restart the same day = %d, want 100", got)
	}
	if err := sp.Close(); err != nil {
		t.Fatal(err)
	}

	clk.Advance(25 * time.Hour) // 2026-12-03 00:00
	sp, tr = open()
	defer sp.Close()
	if d := tr.Day("fresh"); d != 3 {
		t.Fatalf("day after the restart = %d, want 3", d)
	}
	if n, _ := takeAll(t, tr, "fresh", "gmail"); n != 800 {
		t.Fatalf("day 3 gmail: %d taken, want 800", n)
	}
}
