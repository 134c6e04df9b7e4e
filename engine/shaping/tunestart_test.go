package shaping

import (
	"testing"
	"time"

	"gannet/engine/outbound"
)

// TestTuneSlowStart: a site that takes 50/s behind a ceiling of 200/s.
// Starting at a tenth of the ceiling and climbing by half a window, the
// tuning sends nothing past the hidden rate in its first three windows
// (20, 30, 45/s), and over the first five minutes the site defers less
// than a third of what it defers to a tuning that starts at the ceiling
// (as before slow start, played by a restored rate of 200/s).
func TestTuneSlowStart(t *testing.T) {
	const hidden = 50
	run := func(restore float64) (early, total int) {
		s, c, _ := tuneShaper(outbound.Limits{Connections: 10, MessageRate: 200}, tuneOn)
		if restore > 0 {
			s.RestoreTune(TuneState{Site: "mx.slow.test", Rate: restore})
		}
		site := &hiddenRateSite{limit: hidden}
		simulateTuning(s, c, site, 3*tuneOn.Window-time.Second, nil)
		early = site.deferrals
		simulateTuning(s, c, site, 5*time.Minute-3*tuneOn.Window+time.Second, nil)
		return early, site.deferrals
	}
	early, slow := run(0)
	_, fromCeil := run(200)
	if early != 0 {
		t.Errorf("%d deferrals in the slow start's first three windows, want none", early)
	}
	if slow*3 >= fromCeil {
		t.Errorf("%d deferrals over five minutes with slow start, %d from the ceiling: want under a third", slow, fromCeil)
	}
	t.Logf("deferrals over five minutes: slow start %d, from the ceiling %d", slow, fromCeil)
}

// TestTuneLowRateClimbs: a tuned rate of 0.5/s fills no 30 s window with
// the 20 attempts it needs (15); the window stretches until it has them,
// so the rate still climbs on a site that takes everything.
func TestTuneLowRateClimbs(t *testing.T) {
	tc := tuneOn
	tc.MinRate = 0.1
	s, c, told := tuneShaper(outbound.Limits{Connections: 10, MessageRate: 100}, tc)
	s.RestoreTune(TuneState{Site: "mx.slow.test", Rate: 0.5})
	site := &hiddenRateSite{limit: 80}
	simulateTuning(s, c, site, 10*time.Minute, nil)
	if r := s.Limits(slowPath).MessageRate; r < 1 || len(*told) == 0 {
		t.Errorf("after 10 minutes at 0.5/s accepted, the tuned rate is %v (changes %+v), want a climb past 1/s", r, *told)
	}

	// A window so short of attempts that even its stretch does not fill
	// it counts at its end (four windows) with what it has.
	tc.MinAttempts = 1000
	s, c, told = tuneShaper(outbound.Limits{Connections: 10, MessageRate: 100}, tc)
	s.RestoreTune(TuneState{Site: "mx.slow.test", Rate: 0.5})
	simulateTuning(s, c, site, 2*TuneStretch*tc.Window+time.Second, nil)
	if len(*told) == 0 {
		t.Errorf("no change in %d stretched windows of 0.5/s accepted, want a climb", 2)
	}
}

// TestTuneEarlyWindowEnd: a site that takes 10/s behind a ceiling of
// 500/s, so that the slow start's 50/s is five times its limit. The first
// window ends after 6 s (a fifth of 30 s) rather than 30 s, with a step
// down to what the site took; the site defers under 400 attempts in the
// first 30 s (some 1,200 at 50/s for a whole window).
func TestTuneEarlyWindowEnd(t *testing.T) {
	s, c, told := tuneShaper(outbound.Limits{Connections: 10, MessageRate: 500}, tuneOn)
	site := &hiddenRateSite{limit: 10}
	simulateTuning(s, c, site, tuneOn.Window, nil)
	if site.deferrals >= 400 || len(*told) == 0 || (*told)[0].Rate > 10 {
		t.Errorf("%d deferrals in the first 30 s, changes %+v: want under 400, and a first step down to under 10/s", site.deferrals, *told)
	}
}
