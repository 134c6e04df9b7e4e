package delivery

import (
	"testing"
	"time"
)

// TestScriptTenantRate: a tenant rate a script sets is in force, stored
// and shared; the same rate set again within RateRefresh writes nothing;
// another loop (node) that is given it has it in force and stored, and a
// restart restores it, until RateKeep after it was last set.
func TestScriptTenantRate(t *testing.T) {
	w := &wire{}
	rulesA := &memRules{}
	a := newHarness(t, func(o *Options) { o.Rules, o.Shared = rulesA, w })
	if _, ok := a.loop.ScriptTenantRate("acme"); ok {
		t.Fatal("a rate before any was set")
	}
	a.loop.SetTenantRate("acme", 10)
	a.loop.SetTenantRate("acme", 10)
	if r, ok := a.loop.ScriptTenantRate("acme"); !ok || r != 10 {
		t.Fatalf("rate %v %v, want 10", r, ok)
	}
	if got := w.ops; !equalStrings(got, []string{"put rate/acme"}) {
		t.Fatalf("shared %v, want the rate once", got)
	}
	if got := rulesA.keys(); !equalStrings(got, []string{"rate/acme"}) {
		t.Fatalf("stored %v", got)
	}
	a.clock.Advance(RateRefresh)
	a.loop.SetTenantRate("acme", 10)
	if len(w.ops) != 2 {
		t.Errorf("the same rate after RateRefresh not written again: %v", w.ops)
	}

	rulesB := &memRules{}
	b := newHarness(t, func(o *Options) { o.Rules = rulesB })
	b.clock.Advance(RateRefresh)
	b.loop.ApplySharedRule("rate/acme", w.put["rate/acme"])
	if r, ok := b.loop.ScriptTenantRate("acme"); !ok || r != 10 {
		t.Errorf("b's rate %v %v, want a's 10", r, ok)
	}
	if got := b.loop.SharedRules()["rate/acme"]; string(got) != string(w.put["rate/acme"]) {
		t.Errorf("b lists it as\n%s\nwant as shared\n%s", got, w.put["rate/acme"])
	}

	c := newHarness(t, func(o *Options) { o.Rules = rulesB })
	c.clock.Advance(RateRefresh + time.Hour)
	if n, err := c.loop.RestoreRules(); err != nil || n != 1 {
		t.Fatalf("RestoreRules %d %v", n, err)
	}
	if r, ok := c.loop.ScriptTenantRate("acme"); !ok || r != 10 {
		t.Errorf("after a restart %v %v, want 10", r, ok)
	}
	c.clock.Advance(RateKeep)
	if _, ok := c.loop.ScriptTenantRate("acme"); ok {
		t.Error("a rate past RateKeep still in force")
	}
}
