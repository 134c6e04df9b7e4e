package metrics

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

// fakeClock is a settable clock for the ranking.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time          { return c.t }
func (c *fakeClock) advance(d time.Duration) { c.t = c.t.Add(d) }
func newFakeClock() *fakeClock               { return &fakeClock{t: time.Unix(1_700_000_000, 0)} }
func scrape(t *testing.T, c *CappedCounters) map[string]float64 {
	t.Helper()
	return checkExposition(t, string(c.appendTo(nil)))
}

func TestCappedFirstValuesGetSeries(t *testing.T) {
	clk := newFakeClock()
	c := newCapped("domain", "gannet_domain_messages_", "per destination domain", 2, clk.now, OutcomeDelivered, OutcomeBounced)
	if out := c.appendTo(nil); len(out) != 0 {
		t.Errorf("nothing counted yet, but wrote %q", out)
	}
	c.Inc("a.test", OutcomeDelivered)
	c.Inc("b.test", OutcomeDelivered)
	c.Inc("b.test", OutcomeBounced)
	c.Inc("c.test", OutcomeDelivered)
	c.Inc("c.test", OutcomeDelivered)
	c.Inc("", OutcomeDelivered) // not counted
	v := scrape(t, c)
	want := map[string]float64{
		`gannet_domain_messages_delivered_total{domain="a.test"}`: 1,
		`gannet_domain_messages_delivered_total{domain="b.test"}`: 1,
		`gannet_domain_messages_delivered_total{domain="other"}`:  2,
		`gannet_domain_messages_bounced_total{domain="a.test"}`:   0,
		`gannet_domain_messages_bounced_total{domain="b.test"}`:   1,
		`gannet_domain_messages_bounced_total{domain="other"}`:    0,
	}
	if len(v) != len(want) {
		t.Errorf("got %d series, want %d: %v", len(v), len(want), v)
	}
	for k, w := range want {
		if v[k] != w {
			t.Errorf("%s = %v, want %v", k, v[k], w)
		}
	}
}

// TestCappedRankingFollowsVolume: a busy value that came late takes the
// series of a quiet one at the next ranking, and every series stays
// monotonic across the switch.
func TestCappedRankingFollowsVolume(t *testing.T) {
	clk := newFakeClock()
	c := newCapped("site", "gannet_site_messages_", "per destination site", 2, clk.now, OutcomeDelivered)
	c.Inc("quiet-a", OutcomeDelivered)
	c.Inc("quiet-b", OutcomeDelivered)
	for range 10 {
		c.Inc("busy", OutcomeDelivered)
	}
	before := scrape(t, c)
	if _, ok := before[`gannet_site_messages_delivered_total{site="busy"}`]; ok {
		t.Fatal("busy has a series before any ranking")
	}
	clk.advance(rankEvery)
	after := scrape(t, c) // ranks: busy (10) and quiet-a (tie with quiet-b, kept by name order)
	if v, ok := after[`gannet_site_messages_delivered_total{site="busy"}`]; !ok || v != 0 {
		t.Errorf("busy after ranking = %v, %v; want a new series at 0", v, ok)
	}
	if _, ok := after[`gannet_site_messages_delivered_total{site="quiet-b"}`]; ok {
		t.Error("quiet-b kept its series; the cap is 2")
	}
	if _, ok := after[`gannet_site_messages_delivered_total{site="quiet-a"}`]; !ok {
		t.Error("quiet-a lost its series, but ties keep the series they have")
	}
	other := `gannet_site_messages_delivered_total{site="other"}`
	if after[other] < before[other] {
		t.Errorf("other went down: %v → %v", before[other], after[other])
	}
	c.Inc("quiet-b", OutcomeDelivered)
	c.Inc("busy", OutcomeDelivered)
	last := scrape(t, c)
	if last[other] != before[other]+1 || last[`gannet_site_messages_delivered_total{site="busy"}`] != 1 {
		t.Errorf("after the switch: %v", last)
	}
}

// TestCappedSeriesMonotonic feeds random traffic with rankings in between
// and checks that no written series ever goes down while it exists, that
// the number of series stays within the cap, and that with no switch
// the sum over all series equals the events counted.
func TestCappedSeriesMonotonic(t *testing.T) {
	clk := newFakeClock()
	const limit = 3
	c := newCapped("tenant", "gannet_tenant_messages_", "per tenant", limit, clk.now, OutcomeDelivered)
	rng := rand.New(rand.NewPCG(1, 2))
	last := map[string]float64{}
	for round := range 30 {
		for range 200 {
			// Zipf-like: low numbers are busy; the busy set drifts by round.
			k := fmt.Sprintf("t%d", (int(rng.ExpFloat64()*3)+round/10)%12)
			c.Inc(k, OutcomeDelivered)
		}
		clk.advance(rankEvery / 2)
		v := scrape(t, c)
		named := 0
		for k, x := range v {
			if !strings.Contains(k, `"other"`) {
				named++
			}
			if prev, ok := last[k]; ok && x < prev {
				t.Fatalf("round %d: %s went down %v → %v", round, k, prev, x)
			}
		}
		if named > limit {
			t.Fatalf("round %d: %d named series, cap %d", round, named, limit)
		}
		last = v
	}
	// A fresh instance with no ranking: the sum is exact.
	c2 := newCapped("tenant", "p_", "x", 2, clk.now, OutcomeDelivered)
	for i := range 100 {
		c2.Inc(fmt.Sprint(i%7), OutcomeDelivered)
	}
	sum := 0.0
	for _, x := range scrape(t, c2) {
		sum += x
	}
	if sum != 100 {
		t.Errorf("sum over series = %v, want 100", sum)
	}
}

func TestCappedForgetsIdleAndBoundsMemory(t *testing.T) {
	clk := newFakeClock()
	c := newCapped("domain", "p_", "x", 1, clk.now, OutcomeDelivered)
	for i := range 5000 {
		c.Inc(fmt.Sprintf("d%d.test", i), OutcomeDelivered)
	}
	if n := len(c.keys); n > c.maxTracked() {
		t.Errorf("%d values remembered, bound %d", n, c.maxTracked())
	}
	if v, _ := c.Get(OtherLabel, OutcomeDelivered); v != 4999 {
		t.Errorf("other = %d, want 4999", v)
	}
	for range 5 {
		clk.advance(rankEvery)
		c.appendTo(nil)
	}
	if n := len(c.keys); n > 1 {
		t.Errorf("%d values remembered after idle rankings, want only the named one", n)
	}
}

func TestSetMaxDestinationLabels(t *testing.T) {
	m := New()
	m.SetMaxDestinationLabels(2)
	for i := range 5 {
		m.Domains.Inc(fmt.Sprintf("d%d.test", i), OutcomeDelivered)
	}
	var buf bytes.Buffer
	m.WritePrometheus(&buf)
	n := strings.Count(buf.String(), "\ngannet_domain_messages_delivered_total{")
	if n != 3 {
		t.Errorf("%d domain series, want 2 named + other", n)
	}
	if m.MaxDestinationLabels() != 2 {
		t.Error("MaxDestinationLabels")
	}
}

func BenchmarkCappedInc(b *testing.B) {
	c := newCapped("domain", "p_", "x", 50, time.Now, OutcomeDelivered)
	keys := make([]string, 100)
	for i := range keys {
		keys[i] = fmt.Sprintf("d%d.example", i)
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			c.Inc(keys[i%len(keys)], OutcomeDelivered)
			i++
		}
	})
}

func BenchmarkWritePrometheus(b *testing.B) {
	m := exercised()
	for i := range 500 {
		m.Domains.Inc(fmt.Sprintf("d%d.example", i), OutcomeDelivered)
	}
	var buf bytes.Buffer
	b.ReportAllocs()
	for b.Loop() {
		buf.Reset()
		m.WritePrometheus(&buf)
	}
}
