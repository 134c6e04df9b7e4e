package shaping

import (
	"testing"
	"time"

	"gannet/engine/outbound"
)

// TestSharedCut: two shapers (two nodes) joined as a cluster joins them,
// each one's OnCut fed to the other's ApplyCut. A 421 on node A cuts node
// B's path too; B's recovery does not undo A's fresh cut, but raises A
// once the interval has passed; a state older than the path's last change
// is not applied, nor one of a path the node has not used.
func TestSharedCut(t *testing.T) {
	var toA, toB []CutState
	a, ca := newTestShaper(outbound.Limits{Connections: 10, MessageRate: 100}, func(c *Config) {
		c.OnCut = func(st CutState) { toB = append(toB, st) }
	})
	b, cb := newTestShaper(outbound.Limits{Connections: 10, MessageRate: 100}, func(c *Config) {
		c.OnCut = func(st CutState) { toA = append(toA, st) }
	})
	deliver := func(s *Shaper) { s.Observe(pathTo("src", site, "x.test"), ok()) }
	rate := func(s *Shaper) float64 { return s.Limits(pathTo("src", site, "x.test")).MessageRate }
	apply := func(s *Shaper, sts *[]CutState) (n int) {
		for _, st := range *sts {
			if s.ApplyCut(st) {
				n++
			}
		}
		*sts = nil
		return n
	}
	advance := func(d time.Duration) { ca.advance(d); cb.advance(d) }
	deliver(a)
	deliver(b)
	if len(toA)+len(toB) != 0 {
		t.Fatalf("changes told without a cut: %v %v", toA, toB)
	}

	a.Observe(pathTo("src", site, "x.test"), outcome(outbound.Transient, 421, "4.7.0", "slow down"))
	if len(toB) != 1 || !toB[0].Cut || !near(toB[0].Rate, 70) || toB[0].Path != pathTo("src", site, "").Key() {
		t.Fatalf("A's cut as told: %+v", toB)
	}
	if n := apply(b, &toB); n != 1 || !near(rate(b), 70) || b.Limits(pathTo("src", site, "x.test")).Connections != 7 {
		t.Fatalf("B after A's cut (%d applied): %+v, want 70/s and 7 connections", n, b.Limits(pathTo("src", site, "x.test")))
	}
	if st := b.PathStatus(pathTo("src", site, "")); !st.Throttled || st.Reason != "421 4.7.0 slow down" {
		t.Errorf("B's status after A's cut: %+v", st)
	}
	if len(toA) != 0 {
		t.Fatalf("B told again what it applied: %+v", toA)
	}

	// B recovers on its deliveries after an interval; A cut again at the
	// same moment: A's cut holds on B (lower), B's raise is refused by A
	// (A's cut is fresh).
	advance(time.Second)
	deliver(b)
	a.Observe(pathTo("src", site, "x.test"), outcome(outbound.Transient, 421, "4.7.0", "slow down"))
	if len(toA) != 1 || !near(toA[0].Rate, 80) || len(toB) != 1 || !near(toB[0].Rate, 49) {
		t.Fatalf("told: to A %+v, to B %+v", toA, toB)
	}
	if n := apply(a, &toA); n != 0 || !near(rate(a), 49) {
		t.Errorf("A applied B's raise over its fresh cut (%d): %.1f/s", n, rate(a))
	}
	if apply(b, &toB); !near(rate(b), 49) {
		t.Errorf("B after A's second cut: %.1f/s, want 49", rate(b))
	}

	// A second later, B raises: A follows, and does not raise again
	// itself within the interval (the fleet raises once per interval).
	advance(time.Second)
	deliver(b)
	if n := apply(a, &toA); n != 1 || !near(rate(a), 59) {
		t.Errorf("A after B's raise (%d applied): %.1f/s, want 59", n, rate(a))
	}
	deliver(a)
	if !near(rate(a), 59) || len(toB) != 0 {
		t.Errorf("A raised again within the interval of B's raise: %.1f/s %+v", rate(a), toB)
	}

	// Old news and unknown paths change nothing.
	old := CutState{Path: pathTo("src", site, "").Key(), Cut: true, Rate: 2, At: ca.now().Add(-time.Minute)}
	if a.ApplyCut(old) || !near(rate(a), 59) {
		t.Errorf("a stale cut applied: %.1f/s", rate(a))
	}
	if a.ApplyCut(CutState{Path: "other|mx.other.test", Cut: true, Rate: 1, At: ca.now()}) {
		t.Error("a cut of a path never used here applied")
	}

	// Recovered on B to the configured limits: the end reaches A.
	for range 10 {
		advance(time.Second)
		deliver(b)
		apply(a, &toA)
	}
	if st := a.PathStatus(pathTo("src", site, "")); st.Throttled || !near(rate(a), 100) {
		t.Errorf("A after B recovered: %+v", st)
	}
}
