package shaping

import (
	"regexp"
	"testing"
	"time"

	"gannet/engine/outbound"
)

// TestSetPolicy: after a reload, a new automation rule acts on the next
// matching reply, a removed one no longer does, and a suspension already in
// force is kept.
func TestSetPolicy(t *testing.T) {
	s, c := newTestShaper(outbound.Limits{Connections: 10}, nil)
	complaint := outcome(outbound.Transient, 421, "4.7.0", "[TS01] deferred due to complaints")
	s.Observe(pathTo("", site, "x.test"), complaint)
	if g := s.Gate(pathTo("", site, "x.test")); !g.Open() {
		t.Fatalf("no rule yet, gate %+v", g)
	}
	s.SetPolicy(Backoff{Disabled: true}, []Rule{{Regex: regexp.MustCompile(`\[TS01\]`), Action: Suspend, Duration: time.Hour}})
	s.Observe(pathTo("", site, "x.test"), complaint)
	g := s.Gate(pathTo("", site, "x.test"))
	if want := c.now().Add(time.Hour); !g.Until.Equal(want) {
		t.Fatalf("after SetPolicy with a suspend rule: gate %+v, want suspended until %v", g, want)
	}
	s.SetPolicy(Backoff{}, nil)
	if g := s.Gate(pathTo("", "mx.y.test", "y.test")); !g.Open() {
		t.Fatalf("unrelated path gated: %+v", g)
	}
	s.Observe(pathTo("", "mx.y.test", "y.test"), complaint)
	if g := s.Gate(pathTo("", "mx.y.test", "y.test")); !g.Open() {
		t.Fatalf("a removed rule still acts: %+v", g)
	}
	if g := s.Gate(pathTo("", site, "x.test")); g.Until.IsZero() {
		t.Fatal("the suspension in force was dropped by the reload")
	}
	// The defaults of New apply to the zero Backoff: a 421 cuts by 0.7.
	s2, _ := newTestShaper(outbound.Limits{Connections: 10, MessageRate: 100}, func(c *Config) { c.Backoff.Disabled = true })
	s2.SetPolicy(Backoff{}, nil)
	s2.Observe(pathTo("", site, "x.test"), outcome(outbound.Transient, 421, "4.7.0", "slow down"))
	if l := s2.Limits(pathTo("", site, "x.test")); l.Connections != 7 || !near(l.MessageRate, 70) {
		t.Fatalf("back-off enabled by SetPolicy: limits %+v, want 7 connections and 70/s", l)
	}
}

// TestSetPolicyRereadsLimits: a path in constant use takes the new
// configured limits at the reload, not only after a pause.
func TestSetPolicyRereadsLimits(t *testing.T) {
	rate := 10.0
	s, c := newTestShaper(outbound.Limits{}, func(cfg *Config) {
		cfg.Base = func(string, []string) outbound.Limits { return outbound.Limits{Connections: 5, MessageRate: rate} }
	})
	if l := s.Limits(pathTo("", site, "x.test")); l.MessageRate != 10 {
		t.Fatalf("limits %+v", l)
	}
	rate = 25
	for range 5 { // busy: asked every 300 ms
		c.advance(300 * time.Millisecond)
		s.Limits(pathTo("", site, "x.test"))
	}
	s.SetPolicy(Backoff{}, nil)
	if l := s.Limits(pathTo("", site, "x.test")); l.MessageRate != 25 {
		t.Fatalf("after SetPolicy: %+v, want the new rate 25/s", l)
	}
}
