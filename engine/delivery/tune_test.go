package delivery

import (
	"testing"
	"time"

	"gannet/engine/outbound"
	"gannet/engine/shaping"
)

// tuneShaper is a Shaper whose destinations tune under a 100/s ceiling
// and 10 connections.
func tuneShaper(now func() time.Time) *shaping.Shaper {
	return shaping.New(shaping.Config{
		Base: func(string, []string) outbound.Limits { return outbound.Limits{Connections: 10, MessageRate: 100} },
		Tune: func(string, []string) shaping.Tuning { return shaping.Tuning{Enabled: true} },
		Now:  now,
	})
}

// TestTuneKeptAcrossRestart: a site's tuned rate and connection count, as
// the shaper tells them, are stored with the admin rules; the next loop's
// RestoreRules gives them back to a new shaper (its effective rate and
// connection limit are the learned ones at once, with their reasons), and
// drops them a week after their last change.
func TestTuneKeptAcrossRestart(t *testing.T) {
	rules := &memRules{}
	h := newHarness(t, func(o *Options) { o.Rules = rules })
	changed := h.clock.Now()
	h.loop.TuneChanged(shaping.TuneState{Site: "mx.x.test", Rate: 42.5, Throttled: 50,
		Reason: "deferrals 6.0% over 30s at 50.0/s: down to 85%", Conns: 4, ConnsThrottled: 5,
		ConnsReason: "refused 9 of 60 sessions at 5 connections: down to 4", Changed: changed})
	if len(rules.m) != 1 {
		t.Fatalf("stored %d rules, want the tuned rate", len(rules.m))
	}

	sh := tuneShaper(h.clock.Now)
	h2 := newHarness(t, func(o *Options) { o.Rules, o.Tuning = rules, sh })
	if n, err := h2.loop.RestoreRules(); err != nil || n != 1 {
		t.Fatalf("RestoreRules = %d, %v; want the tuned rate restored", n, err)
	}
	path := outbound.Path{Site: mxSite("mx.x.test"), Domain: "x.test"}
	if l := sh.Limits(path); l.MessageRate != 42.5 || l.Connections != 4 {
		t.Errorf("effective limits after the restart = %+v, want the learned 42.5/s and 4 connections", l)
	}
	if st := sh.PathStatus(path); st.TunedRate != 42.5 || st.TuneReason == "" || st.TunedConns != 4 || st.ConnsReason == "" {
		t.Errorf("status after the restart %+v: want the tuned rate and connections and their reasons", st)
	}
	if tunes := sh.Tunes(); len(tunes) != 1 || tunes[0].ConnsThrottled != 5 {
		t.Errorf("Tunes() after the restart = %+v, want the count the site refused at (5)", tunes)
	}

	h3 := newHarness(t, func(o *Options) { o.Rules, o.Tuning = rules, tuneShaper(h.clock.Now) })
	h3.clock.Advance(TuneKeep + time.Minute)
	if n, _ := h3.loop.RestoreRules(); n != 0 || len(rules.m) != 0 {
		t.Errorf("a tuned rate older than TuneKeep: restored %d, %d stored; want it dropped", n, len(rules.m))
	}
}
