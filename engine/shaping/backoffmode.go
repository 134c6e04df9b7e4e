package shaping

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"gannet/engine/outbound"
	"gannet/smtpwire"
)

// Backoff mode is a state of a site (every egress source's path to it),
// PowerMTA's "backoff mode" with GreenArrow's deferral-rate trigger. A site
// enters it when an automation rule with the BackoffMode action matches
// one of its replies, or when the share of its attempts (recipients, not
// counting failures Gannet made itself) deferred over the last
// Mode.Window passes Mode.DeferralRate, once the window holds
// Mode.MinAttempts. In backoff:
//
//   - each path to the site gets at most Mode.Rate messages per second
//     (with its configured rate, if lower); the adaptive cut of the
//     message rate is set aside meanwhile, since the site has already
//     said it wants less;
//   - deferred mail is retried after Mode.RetryAfter (RetryAfter), not
//     after the normal retry schedule;
//   - the site returns to normal Mode.ToNormalAfter after it entered, or
//     after Mode.ToNormalAfterDeliveries recipients were delivered there
//     with no throttling reply since the last (a throttling reply starts
//     the count again), whichever comes first. The deferral window starts
//     empty and the adaptive cut is forgotten: normal means the
//     configured limits.
//
// Every entry and end is told to Config.OnBackoff, after the Shaper's lock
// is released, in the order they happened. RestoreBackoff puts a state
// kept across a restart (or shared by another node) back in force, and
// EndBackoff ends one (an operator, or another node).

// Mode is the backoff mode configuration of a destination (its backoff_*
// shaping keys).
type Mode struct {
	DeferralRate            float64       // enter above this share of deferred attempts; 0: never on the rate
	Window                  time.Duration // the sliding window of the deferral rate (5m)
	MinAttempts             int           // attempts the window must hold (50)
	Rate                    float64       // messages per second in backoff; 0: the normal limits
	RetryAfter              time.Duration // retry delay in backoff; 0: the retry schedule
	ToNormalAfter           time.Duration // back to normal after this long; 0: not by time
	ToNormalAfterDeliveries int           // back to normal after this many deliveries; 0: not by deliveries
}

// Origins of a backoff (BackoffState.Origin).
const (
	BackoffOriginRule         = "rule"          // a [[shaping_rule]] with action "backoff"
	BackoffOriginDeferralRate = "deferral-rate" // backoff_on_deferral_rate
)

// BackoffState is a site in backoff mode.
type BackoffState struct {
	Site   string // resolver.SiteKey.String()
	Origin string // BackoffOriginRule, BackoffOriginDeferralRate
	// Reason says why: the reply a rule matched ("421 4.7.0 text"), or
	// "deferral rate 0.42 over 5m0s (63/150)".
	Reason string
	Since  time.Time
	Until  time.Time // back to normal at the latest then; zero: only by deliveries
	// Rate is the message rate per second of each path in backoff (0: the
	// normal limits); RetryAfter the retry delay (0: the retry schedule).
	Rate       float64
	RetryAfter time.Duration
	// Deliveries is how many deliveries end it (0: not by deliveries),
	// Delivered how many were counted so far.
	Deliveries int
	Delivered  int
}

// BackoffEvent is a site entering (Start) or leaving backoff mode, or
// (Start and Update) staying in it longer than it was to: a rule matched
// again, or another node said so.
type BackoffEvent struct {
	State  BackoffState
	Start  bool
	Update bool
	// EndReason says why a backoff ended: "after 1h0m0s", "after 100
	// deliveries", or what EndBackoff was given.
	EndReason string
}

// windowBuckets is the number of buckets of a deferral window.
const windowBuckets = 10

// deferralWindow counts attempts and deferrals over a sliding window, in
// windowBuckets buckets of a tenth of it each.
type deferralWindow struct {
	width     time.Duration
	slot      [windowBuckets]int64 // the bucket number (time / width) each counts
	attempts  [windowBuckets]int
	deferrals [windowBuckets]int
}

func (w *deferralWindow) reset(window time.Duration) {
	*w = deferralWindow{width: max(window/windowBuckets, time.Millisecond)}
}

func (w *deferralWindow) add(now time.Time, window time.Duration, attempts, deferrals int) {
	if width := max(window/windowBuckets, time.Millisecond); width != w.width {
		w.reset(window)
	}
	n := now.UnixNano() / int64(w.width)
	i := int(n % windowBuckets)
	if w.slot[i] != n {
		w.slot[i], w.attempts[i], w.deferrals[i] = n, 0, 0
	}
	w.attempts[i] += attempts
	w.deferrals[i] += deferrals
}

// sum returns the attempts and deferrals of the buckets still in the
// window.
func (w *deferralWindow) sum(now time.Time) (attempts, deferrals int) {
	if w.width == 0 {
		return 0, 0
	}
	n := now.UnixNano() / int64(w.width)
	for i := range w.slot {
		if w.slot[i] > n-windowBuckets && w.slot[i] <= n {
			attempts += w.attempts[i]
			deferrals += w.deferrals[i]
		}
	}
	return attempts, deferrals
}

// siteMode is the backoff mode state of one site.
type siteMode struct {
	window deferralWindow
	on     bool
	st     BackoffState
	tune   *siteTune // self-tuning (tune.go); nil when the site does not tune
}

// siteModeOf returns the mode state of the path's site, creating it;
// under s.mu.
func (s *Shaper) siteModeOf(p *path) *siteMode {
	if p.sm == nil {
		k := p.site.String()
		sm := s.sites[k]
		if sm == nil {
			sm = &siteMode{}
			s.sites[k] = sm
		}
		p.sm = sm
	}
	return p.sm
}

// modeOf returns the backoff mode configuration of a path.
func (s *Shaper) modeOf(p *path) Mode {
	if s.cfg.Mode == nil {
		return Mode{}
	}
	return s.cfg.Mode(p.domain, p.hosts)
}

// observeMode takes one transaction's outcome into the site's backoff mode:
// the deferral window while normal, the deliveries (and throttling
// replies) while in backoff. throttled says whether a reply asked to slow
// down; under s.mu.
func (s *Shaper) observeMode(p *path, out *outbound.Outcome, throttled bool, now time.Time) {
	sm := s.siteModeOf(p)
	attempts, deferrals, delivered := 0, 0, 0
	for i := range out.Results {
		r := &out.Results[i]
		switch {
		case r.Status == outbound.Delivered:
			attempts++
			delivered++
		case r.Local:
		case r.Status == outbound.Transient && Greylisting(r.Reply):
			// Not pushback (greylist.go): no attempt of the site's rate.
		case r.Status == outbound.Transient:
			attempts++
			deferrals++
		default:
			attempts++
		}
	}
	if sm.on {
		if throttled {
			sm.st.Delivered = 0
		}
		sm.st.Delivered += delivered
		s.checkModeEnd(sm, now)
		return
	}
	m := s.modeOf(p)
	if m.DeferralRate <= 0 || attempts == 0 {
		return
	}
	window := cmpOr(m.Window, 5*time.Minute)
	sm.window.add(now, window, attempts, deferrals)
	a, d := sm.window.sum(now)
	if a < max(1, m.MinAttempts) {
		return
	}
	if rate := float64(d) / float64(a); rate > m.DeferralRate {
		reason := fmt.Sprintf("deferral rate %.2f over %s (%d/%d)", rate, shortDuration(window), d, a)
		s.enterMode(p, sm, m, BackoffOriginDeferralRate, reason, now)
	}
}

// enterMode puts the site of p in backoff (or, when it is in backoff
// already, keeps it there longer: a rule matched again); under s.mu.
func (s *Shaper) enterMode(p *path, sm *siteMode, m Mode, origin, reason string, now time.Time) {
	if sm.on {
		sm.st.Delivered = 0
		// Longer by a minute at least, so that a site that keeps matching
		// does not make an Update of every reply.
		if m.ToNormalAfter > 0 && !sm.st.Until.IsZero() && now.Add(m.ToNormalAfter).Sub(sm.st.Until) >= time.Minute {
			sm.st.Until = now.Add(m.ToNormalAfter)
			s.events = append(s.events, BackoffEvent{State: sm.st, Start: true, Update: true})
		}
		return
	}
	sm.on = true
	sm.st = BackoffState{Site: p.site.String(), Origin: origin, Reason: reason, Since: now,
		Rate: m.Rate, RetryAfter: m.RetryAfter, Deliveries: m.ToNormalAfterDeliveries}
	if m.ToNormalAfter > 0 {
		sm.st.Until = now.Add(m.ToNormalAfter)
	} else if m.ToNormalAfterDeliveries <= 0 {
		sm.st.Until = now.Add(time.Hour) // never for ever (config refuses it)
	}
	s.events = append(s.events, BackoffEvent{State: sm.st, Start: true})
}

// checkModeEnd ends the site's backoff when its time has come or enough
// deliveries were made; under s.mu.
func (s *Shaper) checkModeEnd(sm *siteMode, now time.Time) {
	if !sm.on {
		return
	}
	switch {
	case sm.st.Deliveries > 0 && sm.st.Delivered >= sm.st.Deliveries:
		s.endMode(sm, fmt.Sprintf("after %d %s", sm.st.Delivered, plural(sm.st.Delivered, "delivery", "deliveries")))
	case !sm.st.Until.IsZero() && !now.Before(sm.st.Until):
		s.endMode(sm, "after "+shortDuration(sm.st.Until.Sub(sm.st.Since)))
	}
}

// endMode returns a site to normal; under s.mu.
func (s *Shaper) endMode(sm *siteMode, why string) {
	sm.on = false
	sm.window.reset(0)
	for _, p := range s.paths {
		if p.sm == sm {
			p.cut = false // normal: the configured limits
		}
	}
	s.events = append(s.events, BackoffEvent{State: sm.st, EndReason: why})
}

// backoffRate returns the message rate of a path whose site is in
// backoff with a rate; 0 otherwise. Under s.mu.
func backoffRate(p *path) float64 {
	if p.sm == nil || !p.sm.on {
		return 0
	}
	return p.sm.st.Rate
}

// unlock releases s.mu, then tells Config.OnBackoff, OnTune, OnSuspend
// and OnCut of the changes collected under it, in order (s.evMu keeps the
// order between goroutines without holding s.mu).
func (s *Shaper) unlock() {
	ev, tu, su, cu := s.events, s.tunes, s.susp, s.cuts
	s.events, s.tunes, s.susp, s.cuts = nil, nil, nil, nil
	if (len(ev) == 0 || s.cfg.OnBackoff == nil) && (len(tu) == 0 || s.cfg.OnTune == nil) && len(su) == 0 && len(cu) == 0 {
		s.mu.Unlock()
		return
	}
	s.evMu.Lock()
	s.mu.Unlock()
	defer s.evMu.Unlock()
	if s.cfg.OnBackoff != nil {
		for _, e := range ev {
			s.cfg.OnBackoff(e)
		}
	}
	if s.cfg.OnTune != nil {
		for _, t := range tu {
			s.cfg.OnTune(t)
		}
	}
	for _, rs := range su { // noted only with an OnSuspend
		s.cfg.OnSuspend(rs)
	}
	for _, c := range cu { // collected only with OnCut set (noteCut)
		s.cfg.OnCut(c)
	}
}

// RetryAfter returns the retry delay of deferred mail on the path: the
// site's backoff_retry_after while it is in backoff; 0 for the normal
// retry schedule.
func (s *Shaper) RetryAfter(pa outbound.Path) time.Duration {
	now := s.now()
	s.mu.Lock()
	defer s.unlock()
	sm := s.sites[pa.Site.String()]
	if sm == nil {
		return 0
	}
	s.checkModeEnd(sm, now)
	if !sm.on {
		return 0
	}
	return sm.st.RetryAfter
}

// Backoffs returns the sites in backoff mode, by site.
func (s *Shaper) Backoffs() []BackoffState {
	now := s.now()
	s.mu.Lock()
	defer s.unlock()
	var out []BackoffState
	for _, sm := range s.sites {
		s.checkModeEnd(sm, now)
		if sm.on {
			out = append(out, sm.st)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Site < out[j].Site })
	return out
}

// Tick ends the backoffs whose time has come (the engine calls it every
// second, so that a site without traffic returns to normal on time too).
func (s *Shaper) Tick() {
	now := s.now()
	s.mu.Lock()
	defer s.unlock()
	for _, sm := range s.sites {
		s.checkModeEnd(sm, now)
	}
}

// RestoreBackoff puts a backoff state back in force: one kept across a
// restart (announce false: nothing is told to OnBackoff), or one another
// node shared (announce true: its start is). It reports false, changing
// nothing, when the site is in backoff since the same time already (but
// for a later end, which it takes, told as an Update), or when the state
// has ended.
func (s *Shaper) RestoreBackoff(st BackoffState, announce bool) bool {
	now := s.now()
	s.mu.Lock()
	defer s.unlock()
	if st.Site == "" || !st.Until.IsZero() && !now.Before(st.Until) {
		return false
	}
	sm := s.sites[st.Site]
	if sm == nil {
		sm = &siteMode{}
		s.sites[st.Site] = sm
	}
	if sm.on && sm.st.Since.Equal(st.Since) {
		if !st.Until.IsZero() && st.Until.After(sm.st.Until) && !sm.st.Until.IsZero() {
			sm.st.Until = st.Until
			if announce {
				s.events = append(s.events, BackoffEvent{State: sm.st, Start: true, Update: true})
			}
		}
		return false
	}
	sm.on, sm.st = true, st
	if announce {
		s.events = append(s.events, BackoffEvent{State: st, Start: true})
	}
	return true
}

// EndBackoff returns a site in backoff to normal, saying why; false when
// it was not in backoff.
func (s *Shaper) EndBackoff(site, why string) bool {
	s.mu.Lock()
	defer s.unlock()
	sm := s.sites[site]
	if sm == nil || !sm.on {
		return false
	}
	s.endMode(sm, why)
	return true
}

// automateBackoff is the BackoffMode action of rule on reply r; under s.mu.
func (s *Shaper) automateBackoff(p *path, rule *Rule, r smtpwire.Reply, now time.Time) {
	m := s.modeOf(p)
	if rule.Duration > 0 {
		m.ToNormalAfter = rule.Duration
	}
	if rule.Rate > 0 {
		m.Rate = rule.Rate
	}
	s.enterMode(p, s.siteModeOf(p), m, BackoffOriginRule, r.String(), now)
}

// shortDuration prints d without zero units: "5m", "1h30m", "90s".
func shortDuration(d time.Duration) string {
	s := d.Round(time.Second).String()
	if strings.HasSuffix(s, "m0s") {
		s = s[:len(s)-2]
	}
	if strings.HasSuffix(s, "h0m") {
		s = s[:len(s)-2]
	}
	return s
}

func cmpOr[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
