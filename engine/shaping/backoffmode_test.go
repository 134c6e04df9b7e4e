package shaping

import (
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"gannet/engine/outbound"
)

// modeShaper is a Shaper whose destinations have mode m and configured
// limits base, with the events it tells kept in *events.
func modeShaper(base outbound.Limits, m Mode, rules []Rule) (*Shaper, *clock, *[]BackoffEvent) {
	var events []BackoffEvent
	s, c := newTestShaper(base, func(cfg *Config) {
		cfg.Mode = func(string, []string) Mode { return m }
		cfg.Rules = rules
		cfg.OnBackoff = func(e BackoffEvent) { events = append(events, e) }
	})
	return s, c, &events
}

var (
	slowPath = pathTo("", "mx.slow.test", "slow.test")
	tooMany  = func() *outbound.Outcome {
		return outcome(outbound.Transient, 421, "4.7.0", "[TS03] Too many messages, slow down")
	}
	busy = func() *outbound.Outcome {
		return outcome(outbound.Transient, 450, "4.2.1", "mailbox busy")
	}
	backoffMode = Mode{Window: 5 * time.Minute, MinAttempts: 50, Rate: 100.0 / 3600,
		RetryAfter: 10 * time.Minute, ToNormalAfter: time.Hour, ToNormalAfterDeliveries: 5}
	backoffRule = []Rule{{Regex: regexp.MustCompile(`\[TS03\]`), Action: BackoffMode}}
)

// inBackoff returns the site's backoff state, if it is in backoff.
func inBackoff(s *Shaper, site string) (BackoffState, bool) {
	for _, st := range s.Backoffs() {
		if st.Site == site {
			return st, true
		}
	}
	return BackoffState{}, false
}

// TestBackoffModeOnRule: a reply matching a rule with action "backoff"
// puts the site in backoff, with the reply as its reason, an end time
// (backoff_to_normal_after) and one Start event; a reply the rule does not
// match does not.
func TestBackoffModeOnRule(t *testing.T) {
	s, c, events := modeShaper(outbound.Limits{Connections: 10}, backoffMode, backoffRule)
	s.Observe(slowPath, busy())
	if _, on := inBackoff(s, "mx.slow.test"); on || len(*events) != 0 {
		t.Fatalf("a 450 the rule does not match put the site in backoff: %+v", *events)
	}
	s.Observe(slowPath, tooMany())
	st, on := inBackoff(s, "mx.slow.test")
	if !on {
		t.Fatal("the site is not in backoff after a reply the backoff rule matches")
	}
	if st.Origin != BackoffOriginRule || st.Reason != "421 4.7.0 [TS03] Too many messages, slow down" {
		t.Errorf("origin %q, reason %q; want the rule and the reply", st.Origin, st.Reason)
	}
	if !st.Since.Equal(c.t) || !st.Until.Equal(c.t.Add(time.Hour)) {
		t.Errorf("since %v until %v, want now and an hour later", st.Since, st.Until)
	}
	if len(*events) != 1 || !(*events)[0].Start || (*events)[0].State.Site != "mx.slow.test" {
		t.Errorf("events %+v, want one Start for the site", *events)
	}
	// Matching again keeps it in backoff: no second Start.
	s.Observe(slowPath, tooMany())
	if len(*events) != 1 {
		t.Errorf("events %+v after a second match, want still one", *events)
	}
	if st := s.PathStatus(slowPath); !st.Backoff {
		t.Errorf("PathStatus %+v does not say backoff", st)
	}
	// Ten minutes on, a match keeps it in backoff an hour from then: an
	// Update (stored and shared, no record), not a Start.
	c.advance(10 * time.Minute)
	s.Observe(slowPath, tooMany())
	if len(*events) != 2 || !(*events)[1].Update || !(*events)[1].State.Until.Equal(c.t.Add(time.Hour)) ||
		!(*events)[1].State.Since.Equal(st.Since) {
		t.Errorf("events %+v after a match 10m later, want an Update to an hour from now", *events)
	}
}

// TestBackoffModeOnDeferralRate: the deferral rate puts a site in backoff
// only once the window holds backoff_min_attempts, and only when the
// share deferred passes backoff_on_deferral_rate; deferrals older than
// the window do not count; the reason says the rate and the counts.
func TestBackoffModeOnDeferralRate(t *testing.T) {
	m := backoffMode
	m.DeferralRate = 0.3
	s, c, events := modeShaper(outbound.Limits{Connections: 10}, m, nil)
	for range 49 {
		s.Observe(slowPath, busy())
	}
	if _, on := inBackoff(s, "mx.slow.test"); on {
		t.Fatal("in backoff after 49 attempts, fewer than backoff_min_attempts (50)")
	}
	// The window slides past them: they no longer count.
	c.advance(6 * time.Minute)
	for range 40 {
		s.Observe(slowPath, ok())
	}
	for range 10 {
		s.Observe(slowPath, busy())
	}
	if _, on := inBackoff(s, "mx.slow.test"); on {
		t.Fatalf("in backoff at a deferral rate of 0.2 (10/50) over the window: %+v", *events)
	}
	for range 15 {
		s.Observe(slowPath, busy())
	}
	st, on := inBackoff(s, "mx.slow.test")
	if !on {
		t.Fatal("not in backoff at a deferral rate of 0.38 (25/65) over the window")
	}
	// 10/50 = 0.2; the 8th deferral more makes 18/58 = 0.31 > 0.3.
	if st.Origin != BackoffOriginDeferralRate || st.Reason != "deferral rate 0.31 over 5m (18/58)" {
		t.Errorf("origin %q reason %q, want deferral-rate and \"deferral rate 0.31 over 5m (18/58)\"", st.Origin, st.Reason)
	}
	if len(*events) != 1 {
		t.Errorf("events %+v, want one Start", *events)
	}
}

// TestBackoffModeRateAndRetry: in backoff a path gets backoff_rate (even
// below an adaptive cut, and never above its configured rate) and deferred
// mail is retried after backoff_retry_after; back to normal, the
// configured limits and the retry schedule again.
func TestBackoffModeRateAndRetry(t *testing.T) {
	s, c, _ := modeShaper(outbound.Limits{Connections: 10, MessageRate: 50}, backoffMode, backoffRule)
	if d := s.RetryAfter(slowPath); d != 0 {
		t.Errorf("RetryAfter before backoff = %v, want 0 (the retry schedule)", d)
	}
	s.Observe(slowPath, tooMany()) // also an adaptive cut: 35/s
	l := s.Limits(slowPath)
	if !near(l.MessageRate, 100.0/3600) {
		t.Errorf("rate in backoff %g/s, want backoff_rate 100/h (%g/s)", l.MessageRate, 100.0/3600)
	}
	if d := s.RetryAfter(slowPath); d != 10*time.Minute {
		t.Errorf("RetryAfter in backoff = %v, want backoff_retry_after 10m", d)
	}
	other := pathTo("", "mx.other.test", "other.test")
	if l := s.Limits(other); l.MessageRate != 50 || s.RetryAfter(other) != 0 {
		t.Errorf("another site: %+v, retry after %v; want its normal limits", l, s.RetryAfter(other))
	}
	// A backoff rate above the configured rate does not raise it.
	s2, _, _ := modeShaper(outbound.Limits{Connections: 10, MessageRate: 0.001}, backoffMode, backoffRule)
	s2.Observe(slowPath, tooMany())
	if l := s2.Limits(slowPath); l.MessageRate > 0.001 {
		t.Errorf("rate in backoff %g/s above the configured 0.001/s", l.MessageRate)
	}
	c.advance(time.Hour)
	if l := s.Limits(slowPath); l.MessageRate != 50 || s.RetryAfter(slowPath) != 0 {
		t.Errorf("after backoff: %+v, retry after %v; want the configured 50/s and the schedule", l, s.RetryAfter(slowPath))
	}
}

// TestBackoffModeEndsByTime: backoff_to_normal_after after it began, the
// site is back to normal even without traffic (Tick), with one End event
// that says why.
func TestBackoffModeEndsByTime(t *testing.T) {
	m := backoffMode
	m.ToNormalAfterDeliveries = 0
	s, c, events := modeShaper(outbound.Limits{Connections: 10}, m, backoffRule)
	s.Observe(slowPath, tooMany())
	c.advance(time.Hour - time.Second)
	s.Tick()
	if _, on := inBackoff(s, "mx.slow.test"); !on || len(*events) != 1 {
		t.Fatalf("ended before backoff_to_normal_after: %+v", *events)
	}
	c.advance(time.Second)
	s.Tick()
	if _, on := inBackoff(s, "mx.slow.test"); on {
		t.Fatal("still in backoff after backoff_to_normal_after")
	}
	if len(*events) != 2 || (*events)[1].Start || (*events)[1].EndReason != "after 1h" {
		t.Errorf("events %+v, want a Start then an End \"after 1h\"", *events)
	}
}

// TestBackoffModeEndsByDeliveries: after backoff_to_normal_after_deliveries
// deliveries with no throttling reply between them the site is back to
// normal; a throttling reply starts the count again; the deferral window
// starts empty after it.
func TestBackoffModeEndsByDeliveries(t *testing.T) {
	m := backoffMode
	m.DeferralRate, m.MinAttempts = 0.3, 4
	s, _, events := modeShaper(outbound.Limits{Connections: 10}, m, backoffRule)
	s.Observe(slowPath, tooMany())
	for range 4 {
		s.Observe(slowPath, ok())
	}
	s.Observe(slowPath, tooMany()) // pushed back again: the count restarts
	for range 4 {
		s.Observe(slowPath, ok())
	}
	if _, on := inBackoff(s, "mx.slow.test"); !on {
		t.Fatalf("ended before 5 deliveries in a row: %+v", *events)
	}
	s.Observe(slowPath, ok())
	if _, on := inBackoff(s, "mx.slow.test"); on {
		t.Fatal("still in backoff after 5 deliveries in a row")
	}
	if n := len(*events); n != 2 || (*events)[1].EndReason != "after 5 deliveries" {
		t.Fatalf("events %+v, want Start, End \"after 5 deliveries\"", *events)
	}
	// The deferrals seen before and during backoff are forgotten.
	s.Observe(slowPath, busy())
	for range 3 {
		s.Observe(slowPath, ok())
	}
	if _, on := inBackoff(s, "mx.slow.test"); on {
		t.Errorf("back in backoff at 1/4 deferred after it ended: %+v", *events)
	}
}

// TestBackoffModeRestore: a state restored (a restart) is in force at once
// without a Start event, keeps its end, and ends on time; one already in
// force is not restored twice; one that has ended is not restored.
func TestBackoffModeRestore(t *testing.T) {
	s, c, events := modeShaper(outbound.Limits{Connections: 10}, backoffMode, nil)
	st := BackoffState{Site: "mx.slow.test", Origin: BackoffOriginRule, Reason: "421 4.7.0 slow down",
		Since: c.t.Add(-time.Minute), Until: c.t.Add(time.Minute), Rate: 1, RetryAfter: time.Minute, Deliveries: 5}
	if !s.RestoreBackoff(st, false) {
		t.Fatal("RestoreBackoff refused a state in force")
	}
	if s.RestoreBackoff(st, true) {
		t.Error("RestoreBackoff took the same state twice")
	}
	if len(*events) != 0 {
		t.Errorf("events %+v after a silent restore", *events)
	}
	if l := s.Limits(slowPath); l.MessageRate != 1 || s.RetryAfter(slowPath) != time.Minute {
		t.Errorf("restored backoff: %+v, retry after %v; want 1/s and 1m", l, s.RetryAfter(slowPath))
	}
	c.advance(time.Minute)
	s.Tick()
	if len(*events) != 1 || !strings.HasPrefix((*events)[0].EndReason, "after 2m") {
		t.Errorf("events %+v, want one End after 2m", *events)
	}
	ended := st
	ended.Until = c.t
	if s.RestoreBackoff(ended, false) {
		t.Error("RestoreBackoff took a state that has ended")
	}
	shared := BackoffState{Site: "mx.slow.test", Since: c.t, Until: c.t.Add(time.Hour)}
	if !s.RestoreBackoff(shared, true) {
		t.Fatal("a shared state was not restored")
	}
	// The other node kept it in backoff longer: the later end is taken.
	shared.Until = shared.Until.Add(time.Hour)
	if s.RestoreBackoff(shared, true) {
		t.Error("a later end was taken as a new backoff")
	}
	if st, _ := inBackoff(s, "mx.slow.test"); !st.Until.Equal(shared.Until) {
		t.Errorf("until %v, want the later end %v", st.Until, shared.Until)
	}
	if !s.EndBackoff("mx.slow.test", "ended on node b") {
		t.Fatal("the shared state was not ended")
	}
	if n := len(*events); n != 4 || !(*events)[1].Start || !(*events)[2].Update || (*events)[3].EndReason != "ended on node b" {
		t.Errorf("events %+v, want the shared Start, its Update and its End", *events)
	}
}

// TestBackoffModeForgetIdle: when idle paths are forgotten, so is the mode
// state of sites that are not in backoff; a site in backoff keeps it.
func TestBackoffModeForgetIdle(t *testing.T) {
	s, c, _ := modeShaper(outbound.Limits{Connections: 10}, backoffMode, backoffRule)
	s.Observe(slowPath, tooMany())
	for i := range 4096 {
		s.Observe(pathTo("", fmt.Sprintf("mx%d.idle.test", i), "idle.test"), busy())
	}
	c.advance(11 * time.Minute)
	s.Limits(pathTo("", "mx.new.test", "new.test")) // the 4098th path: forgets the idle ones
	s.mu.Lock()
	sites := len(s.sites)
	s.mu.Unlock()
	if sites != 2 {
		t.Errorf("%d sites' mode states kept, want 2 (the one in backoff and the new one)", sites)
	}
	if _, on := inBackoff(s, "mx.slow.test"); !on {
		t.Error("the site in backoff was forgotten")
	}
}
