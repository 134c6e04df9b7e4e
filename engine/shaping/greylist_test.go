package shaping

import (
	"testing"
	"time"

	"gannet/engine/outbound"
	"gannet/smtpwire"
)

func TestGreylisting(t *testing.T) {
	cases := []struct {
		code      int
		enh, text string
		want      bool
	}{
		{451, "4.7.1", "Greylisted, try again later", true}, // bench/smtpsink's personas
		{450, "4.2.0", "<a@x.test>: Recipient address rejected: Greylisted, see https://postgrey.example/", true},
		{451, "4.7.1", "Greylisting in action, please come back in 00:05:00", true},
		{451, "", "Grey-listed, retry in 5 minutes", true},
		{450, "4.7.1", "graylisting active", true},
		{451, "4.7.1", "Please try again later", true}, // greylistd
		{450, "4.2.0", "Come back later", true},
		{421, "4.7.0", "Greylisted, closing connection", false}, // a 421 is the site's pushback
		{451, "4.7.0", "Rate limit exceeded, try again later", false},
		{451, "4.7.1", "Too many messages, try again later", false},
		{451, "4.7.1", "Client host rejected: policy", false},
		{451, "4.3.0", "Temporary local error, try again later", false},
		{452, "4.2.2", "Mailbox full", false},
		{550, "5.7.1", "Greylisted forever", false},
	}
	for _, tc := range cases {
		r := smtpwire.Reply{Code: tc.code, Enhanced: tc.enh, Lines: []string{tc.text}}
		if got := Greylisting(r); got != tc.want {
			t.Errorf("Greylisting(%s) = %v, want %v", r, got, tc.want)
		}
	}
}

// greylistingSite is a hiddenRateSite that greylists every other
// transaction within its rate (the first attempt of new recipients).
type greylistingSite struct {
	hiddenRateSite
	n, greylisted int
}

func (g *greylistingSite) answer(now time.Time) *outbound.Outcome {
	out := g.hiddenRateSite.answer(now)
	if g.n++; g.n%2 == 1 && out.Results[0].Status == outbound.Delivered {
		g.greylisted++
		return outcome(outbound.Transient, 451, "4.7.1", "Greylisted, try again later")
	}
	return out
}

// TestGreylistingIsNotPushback: a site that greylists half of the
// transactions, refusing every recipient of each, with a hidden rate of
// 50/s behind a ceiling of 200/s. Self-tuning settles under the hidden
// rate as it does without greylisting (counted as deferrals, half of the
// attempts would bring the rate down to tune_min_rate); the adaptive
// [backoff] does not cut the site; backoff mode's deferral rate does not
// put it in backoff.
func TestGreylistingIsNotPushback(t *testing.T) {
	const hidden = 50.0
	s, c, _ := tuneShaper(outbound.Limits{Connections: 10, MessageRate: 200}, tuneOn)
	site := &greylistingSite{hiddenRateSite: hiddenRateSite{limit: int(hidden)}}
	simulateTuning(s, c, site, 20*time.Minute, nil)
	lo, hi := 1e9, 0.0
	simulateTuning(s, c, site, 10*time.Minute, func() {
		r := s.Limits(slowPath).MessageRate
		lo, hi = min(lo, r), max(hi, r)
	})
	if lo < 0.85*hidden || hi > 1.05*hidden || site.greylisted == 0 {
		t.Errorf("tuned rate of a greylisting site in [%.1f, %.1f]/s (%d greylisted), want within 15%% below the hidden %v/s",
			lo, hi, site.greylisted, hidden)
	}

	grey := outcome(outbound.Transient, 451, "4.7.1", "Greylisted, try again later")
	m := Mode{DeferralRate: 0.1, Window: time.Minute, MinAttempts: 50, Rate: 1}
	s, c, events := modeShaper(outbound.Limits{Connections: 10, MessageRate: 100}, m, nil)
	for range 200 {
		s.Observe(slowPath, grey)
		s.Observe(slowPath, ok())
		c.advance(100 * time.Millisecond)
	}
	if st := s.PathStatus(slowPath); st.Throttled || st.Backoff || st.EffectiveRate != 100 || len(*events) != 0 {
		t.Errorf("after 200 greylisted transactions: %+v, backoff events %+v; want neither cut nor backoff", st, *events)
	}
	// The same with a throttling reply does both (the test can fail).
	s.Observe(slowPath, outcome(outbound.Transient, 451, "4.7.0", "Rate limit exceeded, try again later"))
	for range 100 {
		s.Observe(slowPath, outcome(outbound.Transient, 451, "4.7.0", "Rate limit exceeded, try again later"))
	}
	if st := s.PathStatus(slowPath); !st.Backoff || len(*events) == 0 {
		t.Errorf("after rate-limit replies: %+v; want backoff", st)
	}
}
