package shaping

import (
	"slices"
	"strings"
	"testing"
	"time"

	"gannet/engine/outbound"
)

// hiddenRateSite simulates a provider that takes at most limit messages in
// each second and answers "421 4.7.28" to the others (bench/smtpsink's
// throttle with a one-second window).
type hiddenRateSite struct {
	limit     int
	sec       int64
	taken     int
	attempts  int
	deferrals int
}

func (h *hiddenRateSite) answer(now time.Time) *outbound.Outcome {
	if s := now.Unix(); s != h.sec {
		h.sec, h.taken = s, 0
	}
	h.attempts++
	if h.taken >= h.limit {
		h.deferrals++
		return outcome(outbound.Transient, 421, "4.7.28", "Our system has detected an unusual rate")
	}
	h.taken++
	return ok()
}

// answerer is a simulated site.
type answerer interface {
	answer(now time.Time) *outbound.Outcome
}

// simulateTuning sends to site over d of fake time as fast as the shaper
// lets it (a sender with endless mail, in steps of 10ms), and calls each
// after every step.
func simulateTuning(s *Shaper, c *clock, site answerer, d time.Duration, each func()) {
	const step = 10 * time.Millisecond
	credit := 0.0
	for end := c.t.Add(d); c.t.Before(end); c.advance(step) {
		rate := s.Limits(slowPath).MessageRate
		credit = min(credit+rate*step.Seconds(), 1+rate*step.Seconds())
		for ; credit >= 1; credit-- {
			s.Observe(slowPath, site.answer(c.t))
		}
		if each != nil {
			each()
		}
	}
}

func tuneShaper(base outbound.Limits, tc Tuning) (*Shaper, *clock, *[]TuneState) {
	var told []TuneState
	s, c := newTestShaper(base, func(cfg *Config) {
		cfg.Tune = func(string, []string) Tuning { return tc }
		cfg.OnTune = func(t TuneState) { told = append(told, t) }
	})
	return s, c, &told
}

var tuneOn = Tuning{Enabled: true, TargetDeferral: 0.02, Window: 30 * time.Second, MinAttempts: 20, MinRate: 1}

// TestTuneSettlesUnderHiddenRate: a site that takes 50 messages a second
// and defers the rest, behind a configured ceiling of 200/s. Starting from
// the ceiling, the tuned rate comes down and then, for the last 40 minutes
// of an hour, stays within 15% below the hidden rate (probing at most 5%
// above it), with fewer than 2% of the attempts deferred; it is never
// above the ceiling, each change is told with its reason, and the site's
// effective rate is the tuned one.
func TestTuneSettlesUnderHiddenRate(t *testing.T) {
	const hidden = 50.0
	s, c, told := tuneShaper(outbound.Limits{Connections: 10, MessageRate: 200}, tuneOn)
	site := &hiddenRateSite{limit: int(hidden)}

	simulateTuning(s, c, site, 20*time.Minute, func() {
		if r := s.Limits(slowPath).MessageRate; r > 200 {
			t.Fatalf("effective rate %v above the ceiling 200", r)
		}
	})
	if len(*told) == 0 {
		t.Fatal("no tuning change was told")
	}
	if first := (*told)[0]; first.Rate != 30 || !strings.Contains(first.Reason, "up 50%") {
		t.Errorf("first change %+v: want the slow start's climb from 20/s to 30/s, saying so", first)
	}
	if i := slices.IndexFunc(*told, func(st TuneState) bool { return strings.Contains(st.Reason, "down") }); i < 0 || (*told)[i].Throttled > 1.5*hidden*1.05 {
		t.Errorf("changes %+v: want a step down once the slow start passed the hidden rate, by at most one step", *told)
	}

	*site = hiddenRateSite{limit: int(hidden)}
	lo, hi := hidden, 0.0
	simulateTuning(s, c, site, 40*time.Minute, func() {
		r := s.Limits(slowPath).MessageRate
		lo, hi = min(lo, r), max(hi, r)
	})
	if lo < 0.85*hidden || hi > 1.05*hidden {
		t.Errorf("settled tuned rate in [%.1f, %.1f]/s, want within [%.1f, %.1f] (hidden rate %v/s)",
			lo, hi, 0.85*hidden, 1.05*hidden, hidden)
	}
	share := float64(site.deferrals) / float64(site.attempts)
	if share >= tuneOn.TargetDeferral {
		t.Errorf("deferred %d of %d attempts (%.2f%%) once settled, want under %.0f%%",
			site.deferrals, site.attempts, share*100, tuneOn.TargetDeferral*100)
	}
	if got := float64(site.attempts) / (40 * 60); got < 0.85*hidden {
		t.Errorf("sent %.1f/s on average once settled, want at least %.1f", got, 0.85*hidden)
	}
	st := s.PathStatus(slowPath)
	if st.TunedRate != s.Limits(slowPath).MessageRate || st.TuneReason == "" {
		t.Errorf("status %+v: want the tuned rate as the effective one, with a reason", st)
	}
	tunes := s.Tunes()
	if len(tunes) != 1 || tunes[0].Site != "mx.slow.test" || tunes[0].Rate != st.TunedRate || tunes[0].Throttled == 0 {
		t.Errorf("Tunes() = %+v, want mx.slow.test at %v with the rate it was throttled at", tunes, st.TunedRate)
	}
	t.Logf("hidden 50/s: settled in [%.1f, %.1f]/s, deferred %.2f%% of %d, last reason %q",
		lo, hi, share*100, site.attempts, st.TuneReason)
}

// TestTuneStaysUnderCeiling: a site that would take 100/s, behind a
// configured ceiling of 30/s: the slow start climbs from 3/s to the
// ceiling in six windows (×1.5 each), the tuning has nothing to learn
// above it, and the rate never passes it.
func TestTuneStaysUnderCeiling(t *testing.T) {
	s, c, _ := tuneShaper(outbound.Limits{Connections: 10, MessageRate: 30}, tuneOn)
	site := &hiddenRateSite{limit: 100}
	if r := s.Limits(slowPath).MessageRate; r != 3 {
		t.Fatalf("effective rate before any attempt %v, want the slow start's 3 (a tenth of the ceiling)", r)
	}
	start := c.t
	simulateTuning(s, c, site, 10*time.Minute, func() {
		r := s.Limits(slowPath).MessageRate
		if r > 30 || c.t.Sub(start) > 7*tuneOn.Window && r != 30 {
			t.Fatalf("effective rate %v after %v, want at most the ceiling 30, and it after 7 windows (the site takes more)", r, c.t.Sub(start))
		}
	})
	if site.deferrals != 0 {
		t.Errorf("%d deferrals under the site's limit", site.deferrals)
	}
}

// TestTuneClimbsAndRestores: restored at a low learned rate, under a
// ceiling far above the site's limit, the tuning climbs while the site
// accepts (never in one leap: at most 10% a window), and stops under the
// hidden rate; a site that does not tune ignores what was restored.
func TestTuneClimbsAndRestores(t *testing.T) {
	s, c, told := tuneShaper(outbound.Limits{Connections: 10, MessageRate: 500}, tuneOn)
	if !s.RestoreTune(TuneState{Site: "mx.slow.test", Rate: 10, Reason: "kept"}) {
		t.Fatal("RestoreTune refused a learned rate")
	}
	if r := s.Limits(slowPath).MessageRate; r != 10 {
		t.Fatalf("effective rate after restore = %v, want the learned 10", r)
	}
	site := &hiddenRateSite{limit: 80}
	prev := 10.0
	simulateTuning(s, c, site, 30*time.Minute, func() {
		r := s.Limits(slowPath).MessageRate
		if r > prev*1.1+1e-9 {
			t.Fatalf("rate leapt from %v to %v", prev, r)
		}
		prev = r
	})
	if len(*told) == 0 || !strings.Contains((*told)[0].Reason, "up 10%") {
		t.Fatalf("changes %+v: want a climb first", *told)
	}
	if prev < 0.85*80 || prev > 1.05*80 {
		t.Errorf("after 30 minutes the tuned rate is %v, want within 15%% below 80", prev)
	}

	off, _, _ := tuneShaper(outbound.Limits{Connections: 10, MessageRate: 500}, Tuning{})
	off.RestoreTune(TuneState{Site: "mx.slow.test", Rate: 10})
	if r := off.Limits(slowPath).MessageRate; r != 500 {
		t.Errorf("a site without tune = true runs at %v, want its configured 500", r)
	}
	if tunes := off.Tunes(); len(tunes) != 0 {
		t.Errorf("Tunes() = %+v for a site without tune = true, want none", tunes)
	}
}

// TestTuneTwoSources: two egress sources share a site that takes 40
// messages a second in all; source "b" has little mail (5/s), source "a"
// endless. The tuned rate is each source's, and b's trickle does not hold
// a's climb back: a settles within 15% below the 35/s the site leaves it.
func TestTuneTwoSources(t *testing.T) {
	s, c, _ := tuneShaper(outbound.Limits{Connections: 10, MessageRate: 200}, tuneOn)
	site := &hiddenRateSite{limit: 40}
	a, b := pathTo("a", "mx.slow.test", "slow.test"), pathTo("b", "mx.slow.test", "slow.test")
	const step = 10 * time.Millisecond
	credit, lo, hi := 0.0, 1e9, 0.0
	for i := 0; i < int(40*time.Minute/step); i++ {
		rate := s.Limits(a).MessageRate
		credit = min(credit+rate*step.Seconds(), 1+rate*step.Seconds())
		for ; credit >= 1; credit-- {
			s.Observe(a, site.answer(c.t))
		}
		if i%20 == 0 { // 5/s
			s.Observe(b, site.answer(c.t))
		}
		if i > int(20*time.Minute/step) {
			lo, hi = min(lo, rate), max(hi, rate)
		}
		c.advance(step)
	}
	if lo < 0.85*35 || hi > 1.05*35 {
		t.Errorf("source a's tuned rate settled in [%.1f, %.1f]/s, want within 15%% below 35", lo, hi)
	}
}
