package delivery

import (
	"testing"

	"gannet/engine/outbound"
	"gannet/engine/shaping"
	"gannet/smtpwire"
)

// TestSharedCutAndTune: a path's cut and a site's tuned rate, as one
// loop shares them (Options.Shared), put in force on another loop's
// shaper by ApplySharedRule; the tuned rate is stored there too (the cut
// is not), and listed by SharedRules, so that a reconcile finds the
// cluster's value already in force.
func TestSharedCutAndTune(t *testing.T) {
	w := &wire{}
	a := newHarness(t, func(o *Options) { o.Shared = w })
	rulesB := &memRules{}
	limits := outbound.Limits{Connections: 4, MessageRate: 50}
	shB := shaping.New(shaping.Config{Base: func(string, []string) outbound.Limits { return limits }, Now: a.clock.Now})
	b := newHarness(t, func(o *Options) { o.Rules, o.Cuts = rulesB, shB })
	path := outbound.Path{Source: "s1", Site: mxSite("mx.x.test"), Domain: "x.test"}
	shB.Limits(path) // b has delivered on the path

	a.loop.CutChanged(shaping.CutState{Path: path.Key(), Cut: true, Rate: 10, Ceil: 50, Conns: 2, At: a.clock.Now(),
		Reply: smtpwire.Reply{Code: 421, Enhanced: "4.7.0", Lines: []string{"slow down"}}})
	v, ok := w.put["cut/"+path.Key()]
	if !ok {
		t.Fatalf("the cut not shared: %v", w.ops)
	}
	b.loop.ApplySharedRule("cut/"+path.Key(), v)
	if l := shB.Limits(path); l.MessageRate != 10 || l.Connections != 2 {
		t.Errorf("b's limits after a's cut: %+v, want 10/s and 2 connections", l)
	}
	if st := shB.PathStatus(path); st.Reason != "421 4.7.0 slow down" {
		t.Errorf("b's status: %+v", st)
	}
	if len(rulesB.keys()) != 0 {
		t.Errorf("a cut stored on b: %v", rulesB.keys())
	}

	shT := tuneShaper(a.clock.Now)
	bt := newHarness(t, func(o *Options) { o.Rules, o.Tuning = rulesB, shT })
	a.loop.TuneChanged(shaping.TuneState{Site: "mx.x.test", Rate: 42.5, Throttled: 50, Reason: "learned on a", Changed: a.clock.Now()})
	v, ok = w.put["tune/mx.x.test"]
	if !ok {
		t.Fatalf("the tuned rate not shared: %v", w.ops)
	}
	bt.loop.ApplySharedRule("tune/mx.x.test", v)
	if r := shT.Limits(path).MessageRate; r != 42.5 {
		t.Errorf("b's rate after a's tuning: %v, want 42.5", r)
	}
	if got := rulesB.keys(); !equalStrings(got, []string{"tune/mx.x.test"}) {
		t.Errorf("stored on b: %v", got)
	}
	if got := bt.loop.SharedRules()["tune/mx.x.test"]; string(got) != string(v) {
		t.Errorf("b's SharedRules lists the tuned rate as\n%s\nwant as shared:\n%s", got, v)
	}
}
