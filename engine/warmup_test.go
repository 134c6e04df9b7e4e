package engine

import (
	"log/slog"
	"testing"
	"time"

	"gannet/engine/config"
	"gannet/engine/outbound"
	"gannet/queue/queuetest"
	"gannet/resolver"
)

// warmupEngine builds an engine with the warm-up of src (a config text)
// and the fake clock clk.
func warmupEngine(t *testing.T, src string, clk *queuetest.FakeClock) *warmupGate {
	t.Helper()
	cfg, err := config.Parse("w.toml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	e := &Engine{cfg: cfg, now: clk.Now, log: slog.New(slog.DiscardHandler)}
	tr, err := e.newWarmup(cfg)
	if err != nil || tr == nil {
		t.Fatalf("newWarmup: %v %v", tr, err)
	}
	e.warmup = tr
	return &warmupGate{e: e, t: tr, ec: newEgressChooser(cfg, 1)}
}

const warmupPoolTOML = `
[shaping.gmail]
mx_suffix = [".google.test"]

[[egress_source]]
name = "fresh"
source_address = "127.0.0.7"
warmup = "ramp"
warmup_day1 = [{provider = "gmail", messages = 2}, {provider = "default", messages = 5}]

[[egress_source]]
name = "warm"
source_address = "127.0.0.8"

[[egress_source]]
name = "lonely"
source_address = "127.0.0.9"
warmup = "ramp"

[[egress_pool]]
name = "main"
sources = [{name = "fresh", weight = 1}, {name = "warm", weight = 1}]

[[egress_pool]]
name = "alone"
sources = [{name = "lonely"}]

[delivery]
egress_pool = "main"

[[tenant]]
name = "solo"
egress_pool = "alone"
`

// TestWarmupGateOverflowsToWarmSource: a warming source sends its day-1
// allowance to gmail (a provider table matched by MX suffix), then the
// gate hands gmail's mail to the warm source of the pool, while mail
// elsewhere still goes from the warming source; the next day its gmail
// allowance is doubled. A pool without a warm source makes the mail wait
// until midnight UTC.
func TestWarmupGateOverflowsToWarmSource(t *testing.T) {
	clk := queuetest.NewFakeClock(time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC))
	g := warmupEngine(t, warmupPoolTOML, clk)
	gmail := outbound.Path{Source: "fresh", Domain: "gmail.test", Site: resolver.MXSite([]string{"mx1.google.test"})}
	other := outbound.Path{Source: "fresh", Domain: "other.test", Site: resolver.MXSite([]string{"mx.other.test"})}
	takeN := func(p outbound.Path, tenant string, n int) {
		t.Helper()
		for i := range n {
			if alt, _, ok := g.Take(tenant, p); !ok {
				t.Fatalf("%s: message %d of %d refused (alt %q)", p.Domain, i+1, n, alt.Name)
			}
		}
	}
	takeN(gmail, "", 2)
	alt, _, ok := g.Take("", gmail)
	if ok || alt.Name != "warm" {
		t.Fatalf("third gmail message: ok=%v alt=%q; want overflow to \"warm\"", ok, alt.Name)
	}
	takeN(other, "", 5) // the default allowance is its own
	if _, _, ok := g.Take("", other); ok {
		t.Fatal("sixth message elsewhere taken past the day-1 allowance of 5")
	}

	lonely := outbound.Path{Source: "lonely", Domain: "gmail.test", Site: resolver.MXSite([]string{"mx1.google.test"})}
	takeN(lonely, "solo", config.DefaultWarmupProviders)
	alt, until, ok := g.Take("solo", lonely)
	if ok || alt.Name != "" || !until.Equal(time.Date(2026, 12, 2, 0, 0, 0, 0, time.UTC)) {
		t.Fatalf("past lonely's allowance: ok=%v alt=%q until=%v; want a wait until 2026-12-02 00:00 UTC", ok, alt.Name, until)
	}

	clk.Advance(14 * time.Hour) // day 2
	takeN(gmail, "", 4)
	if _, _, ok := g.Take("", gmail); ok {
		t.Fatal("day 2: fifth gmail message taken past the doubled allowance of 4")
	}
	var row *struct{ used, remaining int }
	for _, w := range g.e.warmupEntries() {
		if w.Source == "fresh" && w.Provider == "gmail" {
			row = &struct{ used, remaining int }{w.Used, w.Remaining}
			if w.Day != 2 || w.Allowance != 4 || w.Start != "2026-12-01" {
				t.Errorf("summary row = %+v; want day 2, allowance 4, start 2026-12-01", w)
			}
		}
	}
	if row == nil || row.used != 4 || row.remaining != 0 {
		t.Errorf("summary row of fresh/gmail: %+v, want used 4, remaining 0", row)
	}
}
