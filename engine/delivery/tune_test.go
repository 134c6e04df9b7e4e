package delivery

import (
	"testing"
	"time"

	"gannet/engine/outbound"
	"gannet/engine/shaping"
)

// tuneShaper is a Shaper whose destinations tune under a 100/s ceiling.
func tuneShaper(now func() time.Time) *shaping.Shaper {
	return shaping.New(shaping.Config{
		Base: func(string, []string) outbound.Limits { return outbound.Limits{Connections: 1, MessageRate: 100} },
		Tune: func(string, []string) shaping.Tuning { return shaping.Tuning{Enabled: true} },
		Now:  now,
	})
}

// TestTuneKeptAcrossRestart: a site's tuned rate, as the shaper tells it,
// is stored with the admin rules; the next loop's RestoreRules gives it
// back to a new shaper (its effective rate is the learned one at once,
// with its reason), and drops it a week after its last change.
func TestTuneKeptAcrossRestart(t *testing.T) {
	rules := &memRules{}
	h := newHarness(t, func(o *Options) { o.Rules = rules })
	changed := h.clock.Now()
	h.loop.TuneChanged(shaping.TuneState{Site: "mx.x.test", Rate: 42.5, Throttled: 50,
		Reason: "deferrals 6.0% over 30s at 50.0/s: down to 85%", Changed: changed})
	if len(rules.m) != 1 {
		t.Fatalf("stored %d rules, want the tuned rate", len(rules.m))
	}

	sh := tuneShaper(h.clock.Now)
	h2 := newHarness(t, func(o *Options) { o.Rules, o.Tuning = rules, sh })
	if n, err := h2.loop.RestoreRules(); err != nil || n != 1 {
		t.Fatalf("RestoreRules = %d, %v; want the tuned rate restored", n, err)
	}
	path := outbound.Path{Site: mxSite("mx.x.test"), Domain: "x.test"}
	if r := sh.Limits(path).MessageRate; r != 42.5 {
		t.Errorf("effective rate after the restart = %v, want the learned 42.5", r)
	}
	if st := sh.PathStatus(path); st.TunedRate != 42.5 || st.TuneReason == "" {
		t.Errorf("status after the restart %+v: want the tuned rate and its reason", st)
	}

	h3 := newHarness(t, func(o *Options) { o.Rules, o.Tuning = rules, tuneShaper(h.clock.Now) })
	h3.clock.Advance(TuneKeep + time.Minute)
	if n, _ := h3.loop.RestoreRules(); n != 0 || len(rules.m) != 0 {
		t.Errorf("a tuned rate older than TuneKeep: restored %d, %d stored; want it dropped", n, len(rules.m))
	}
}
