package delivery

import (
	"fmt"
	"log/slog"
	"testing"
	"time"

	"gannet/engine/logrec"
	"gannet/engine/outbound"
	"gannet/engine/warmup"
)

// trackerGate is a WarmupGate over a real warmup.Tracker: a source past
// its allowance overflows to alt, when alt is set.
type trackerGate struct {
	t   *warmup.Tracker
	alt outbound.Source
}

func (g *trackerGate) Take(_ string, p outbound.Path) (outbound.Source, time.Time, bool) {
	ok, until := g.t.Take(p.Source, "")
	if ok {
		return outbound.Source{}, time.Time{}, true
	}
	if g.alt.Name != "" && g.alt.Name != p.Source {
		return g.alt, until, false
	}
	return outbound.Source{}, until, false
}

func warmupHarness(t *testing.T, day1 int, alt outbound.Source) *harness {
	t.Helper()
	return newHarness(t, func(o *Options) {
		tr, err := warmup.New([]warmup.Source{{Name: "fresh", Allowance: func(day int, _ string) int { return day1 << (day - 1) }}},
			nil, o.Clock.Now, slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatal(err)
		}
		o.Warmup = &trackerGate{t: tr, alt: alt}
		o.Egress = func(string, string, string) outbound.Source { return outbound.Source{Name: "fresh"} }
	})
}

// sourcesOf counts the Delivery records by egress source.
func sourcesOf(recs []logrec.Record) map[string]int {
	out := map[string]int{}
	for _, r := range recs {
		if r.Type == logrec.Delivery {
			out[r.EgressSource]++
		}
	}
	return out
}

// TestWarmupOverflowInLoop: the loop sends a warming source's day-1
// allowance from it and moves the rest to the warm source the gate names.
func TestWarmupOverflowInLoop(t *testing.T) {
	h := warmupHarness(t, 3, outbound.Source{Name: "warm"})
	h.loop.Start()
	for i := range 8 {
		h.enqueue(t, newMessage(fmt.Sprintf("m%d", i), h.clock.Now(), fmt.Sprintf("u%d@x.test", i)), "b\r\n")
	}
	h.rec.waitFor(t, 8)
	if got := sourcesOf(h.rec.all()); got["fresh"] != 3 || got["warm"] != 5 || len(got) != 2 {
		t.Fatalf("transactions by source = %v; want 3 from fresh, 5 from warm", got)
	}
}

// TestWarmupWaitsForNextDay: with no other source, mail past the
// allowance is neither sent nor bounced nor deferred; when the fake clock
// passes midnight UTC the doubled allowance lets it go.
func TestWarmupWaitsForNextDay(t *testing.T) {
	h := warmupHarness(t, 2, outbound.Source{})
	h.loop.Start()
	for i := range 5 {
		h.enqueue(t, newMessage(fmt.Sprintf("m%d", i), h.clock.Now(), fmt.Sprintf("u%d@x.test", i)), "b\r\n")
	}
	h.rec.waitFor(t, 2)
	time.Sleep(200 * time.Millisecond)
	if n := len(h.tr.envelopes()); n != 2 {
		t.Fatalf("%d transactions on day 1, want the allowance of 2", n)
	}
	if n := len(h.rec.all()); n != 2 {
		t.Fatalf("%d records on day 1, want the 2 deliveries only (the rest waits, no deferral)", n)
	}
	if s := h.loop.Summary(""); s.Messages != 3 {
		t.Fatalf("%d messages queued on day 1, want 3", s.Messages)
	}
	h.clock.Advance(24 * time.Hour) // past midnight UTC: day 2, allowance 4
	h.rec.waitFor(t, 5)
	if got := sourcesOf(h.rec.all()); got["fresh"] != 5 {
		t.Fatalf("transactions by source = %v; want all 5 from fresh", got)
	}
}

// TestRestoreRulesKeepsWarmupStart: the loop's restore of the admin rules
// leaves the warm-up start dates stored beside them alone.
func TestRestoreRulesKeepsWarmupStart(t *testing.T) {
	rules := &memRules{}
	clk := newHarness(t, nil).clock
	tr, err := warmup.New([]warmup.Source{{Name: "fresh", Allowance: func(int, string) int { return 1 }}}, rules, clk.Now, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	tr.Take("fresh", "") // first use: stores the start date
	h := newHarness(t, func(o *Options) { o.Rules = rules })
	if _, err := h.loop.RestoreRules(); err != nil {
		t.Fatal(err)
	}
	if got := rules.keys(); !equalStrings(got, []string{"warmup/fresh"}) {
		t.Fatalf("stored after RestoreRules: %v, want [warmup/fresh]", got)
	}
}

// TestWarmupCountsOnlyTransactions: items a tenant's message rate holds
// spend none of the warming source's allowance while they wait, and those
// moved to the warm source are not booked on the tenant rate again: of 6
// messages at 2 a second, exactly 3 (the allowance) leave from the
// warming source.
func TestWarmupCountsOnlyTransactions(t *testing.T) {
	h := newHarness(t, func(o *Options) {
		tr, err := warmup.New([]warmup.Source{{Name: "fresh", Allowance: func(int, string) int { return 3 }}},
			nil, o.Clock.Now, slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatal(err)
		}
		o.Warmup = &trackerGate{t: tr, alt: outbound.Source{Name: "warm"}}
		o.Egress = func(string, string, string) outbound.Source { return outbound.Source{Name: "fresh"} }
		o.TenantRate = func(string) float64 { return 2 }
	})
	h.loop.Start()
	for i := range 6 {
		h.enqueue(t, newMessage(fmt.Sprintf("m%d", i), h.clock.Now(), fmt.Sprintf("u%d@x.test", i)), "b\r\n")
	}
	for i := 0; len(h.rec.all()) < 6; i++ {
		if i == 200 {
			t.Fatalf("only %d of 6 delivered after %d fake seconds", len(h.rec.all()), i/4)
		}
		time.Sleep(5 * time.Millisecond)
		h.clock.Advance(250 * time.Millisecond)
	}
	if got := sourcesOf(h.rec.all()); got["fresh"] != 3 || got["warm"] != 3 {
		t.Fatalf("transactions by source = %v; want 3 from fresh, 3 from warm", got)
	}
}
