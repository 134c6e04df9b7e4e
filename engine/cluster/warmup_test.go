package cluster

import (
	"log/slog"
	"testing"
	"time"

	"gannet/engine/warmup"
)

// warming is a source allowed 100 messages a day to every provider.
func warming(name string) warmup.Source {
	return warmup.Source{Name: name, Allowance: func(int, string) int { return 100 }}
}

// TestWarmupShared: two nodes' warm-up trackers share one Redis: taking
// in turns, and one of them far more, they send the day's allowance of
// 100 in all, not 200; each then refuses until the next day, and sees
// nothing left. The start date the first node used is the second's.
func TestWarmupShared(t *testing.T) {
	url := server(t)
	day := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
	now := func() time.Time { return day }
	var trs []*warmup.Tracker
	for _, id := range []string{"a", "b"} {
		tr, err := warmup.New([]warmup.Source{warming("fresh")}, nil, now, slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatal(err)
		}
		tr.Share(node(t, url, id, Options{}).Warmup())
		trs = append(trs, tr)
	}
	sent := [2]int{}
	for i := range 1000 {
		n := i % 3 % 2 // a twice as often as b
		if ok, _ := trs[n].Take("fresh", "gmail"); ok {
			sent[n]++
		}
	}
	if sent[0]+sent[1] != 100 || sent[0] < 50 || sent[1] < 20 {
		t.Fatalf("sent %v, want 100 in all, shared", sent)
	}
	for n, tr := range trs {
		if ok, until := tr.Take("fresh", "gmail"); ok || !until.Equal(time.Date(2026, 12, 8, 0, 0, 0, 0, time.UTC)) {
			t.Errorf("node %d after the fleet's allowance: ok=%v until %v", n, ok, until)
		}
		if r := tr.Remaining("fresh", "gmail"); r != 0 {
			t.Errorf("node %d: %d remaining, want 0", n, r)
		}
		if d := tr.Day("fresh"); d != 1 {
			t.Errorf("node %d: day %d, want 1", n, d)
		}
	}
	// Another provider has its own count.
	if ok, _ := trs[1].Take("fresh", ""); !ok {
		t.Error("the default provider refused after gmail's allowance")
	}

	// A node that joins later, whose spool says nothing, takes the
	// cluster's start date: two days later it is day 3.
	later := day.Add(48 * time.Hour)
	tr, err := warmup.New([]warmup.Source{warming("fresh")}, nil, func() time.Time { return later }, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	tr.Share(node(t, url, "c", Options{}).Warmup())
	if ok, _ := tr.Take("fresh", "gmail"); !ok || tr.Day("fresh") != 3 {
		t.Errorf("a node joining on 2026-12-09: ok=%v, day %d; want day 3 of the cluster's ramp", ok, tr.Day("fresh"))
	}
}

// TestWarmupRedisDown: with Redis unreachable a node counts on its own
// against its share of the allowance (the live nodes last counted: 1,
// itself), and is never stuck waiting.
func TestWarmupRedisDown(t *testing.T) {
	c, err := New(Options{URL: "redis://127.0.0.1:1/0", NodeID: "a", Timeout: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Stop)
	tr, err := warmup.New([]warmup.Source{warming("fresh")}, nil, time.Now, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	tr.Share(c.Warmup())
	n := 0
	for range 300 {
		if ok, _ := tr.Take("fresh", "gmail"); ok {
			n++
		}
	}
	if n != 100 {
		t.Errorf("took %d with Redis down, want the node's share, 100", n)
	}
}
