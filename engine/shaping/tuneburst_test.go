package shaping

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"gannet/engine/outbound"
)

// burstSite is a hiddenRateSite that refuses everything for 3 s every
// 40 s (bench/smtpsink's persona bursts).
type burstSite struct {
	hiddenRateSite
	start time.Time
}

func (b *burstSite) answer(now time.Time) *outbound.Outcome {
	if b.start.IsZero() {
		b.start = now
	}
	if now.Sub(b.start)%(40*time.Second) >= 37*time.Second {
		b.attempts++
		b.deferrals++
		return outcome(outbound.Transient, 421, "4.7.0", "Too busy, try again later")
	}
	return b.hiddenRateSite.answer(now)
}

// TestTuneBurstRecovers: a site that takes 50/s and refuses everything
// for 3 s every 40 s, tuned in windows of 5 s. A window with a burst steps
// the rate back by 15% only, and the next good windows climb back: the
// tuned rate averages at least 80% of the hidden rate over the last ten
// minutes (stepping back, at each burst, to 90% of what the site took in
// the window, 40% of the rate, it fell to a few per second).
func TestTuneBurstRecovers(t *testing.T) {
	const hidden = 50.0
	tc := tuneOn
	tc.Window, tc.MinAttempts = 5*time.Second, 4
	s, c, _ := tuneShaper(outbound.Limits{Connections: 10, MessageRate: 200}, tc)
	site := &burstSite{hiddenRateSite: hiddenRateSite{limit: int(hidden)}}
	simulateTuning(s, c, site, 5*time.Minute, nil)
	sum, n := 0.0, 0
	simulateTuning(s, c, site, 10*time.Minute, func() {
		sum += s.Limits(slowPath).MessageRate
		n++
	})
	if avg := sum / float64(n); avg < 0.8*hidden {
		t.Errorf("tuned rate averaged %.1f/s over ten minutes of bursts, want at least %.1f (80%% of the hidden %v/s)", avg, 0.8*hidden, hidden)
	} else {
		t.Logf("tuned rate averaged %.1f/s, hidden %v/s", avg, hidden)
	}
	if st := s.PathStatus(slowPath); st.TunedRate > 1.05*hidden {
		t.Errorf("tuned rate %v, want at most 5%% over the hidden %v/s", st.TunedRate, hidden)
	}
}

// earlyBurstSite takes 40/s, but refuses everything from 4 s to 7 s into
// the run: a burst while the tuning is still in its slow start.
type earlyBurstSite struct {
	hiddenRateSite
	start time.Time
}

func (b *earlyBurstSite) answer(now time.Time) *outbound.Outcome {
	if b.start.IsZero() {
		b.start = now
	}
	if el := now.Sub(b.start); el >= 4*time.Second && el < 7*time.Second {
		b.attempts++
		b.deferrals++
		return outcome(outbound.Transient, 421, "4.7.0", "Too busy, try again later")
	}
	return b.hiddenRateSite.answer(now)
}

// TestTuneBurstEndsSlowStart: pushback in a burst ends the slow start as
// other pushback does. After the burst's step back the rate climbs by the
// normal steps, never again by half a window (which took a site refusing
// past a hidden rate in runs, read as bursts, 20% past that rate at once
// in the e2e test).
func TestTuneBurstEndsSlowStart(t *testing.T) {
	tc := tuneOn
	tc.Window, tc.MinAttempts = 2*time.Second, 4
	s, c, told := tuneShaper(outbound.Limits{Connections: 10, MessageRate: 200}, tc)
	site := &earlyBurstSite{hiddenRateSite: hiddenRateSite{limit: 40}}
	simulateTuning(s, c, site, time.Minute, nil)
	burst := -1
	for i, st := range *told {
		switch {
		case burst < 0 && strings.Contains(st.Reason, "a burst"):
			burst = i
		case burst >= 0 && strings.Contains(st.Reason, fmt.Sprintf("up %.0f%%", TuneSlowStart*100)):
			t.Errorf("after the burst (%q) the tuning climbed by the slow start's step: %q", (*told)[burst].Reason, st.Reason)
		}
	}
	if burst < 0 {
		t.Fatalf("no step back for the burst in %d changes: %+v", len(*told), *told)
	}
}
