package shaping

import (
	"math"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"

	"gannet/engine/config"
	"gannet/engine/outbound"
	"gannet/resolver"
	"gannet/smtpwire"
)

// Config configures a Shaper.
type Config struct {
	// Base returns the configured limits of destination domain whose MX
	// host names are mxHosts ([delivery] < [shaping.default] < provider
	// tables < [shaping."DOMAIN"]); mxHosts is empty on the path to the
	// relay_to smarthost, where no MX host is known. Nil: 10 connections,
	// 100 per connection, no rate limit.
	Base func(domain string, mxHosts []string) outbound.Limits
	// Backoff is the adaptive reaction to throttling replies.
	Backoff Backoff
	// Rules are the automation rules, tried in order; the first that
	// matches a reply acts.
	Rules []Rule
	// Now is the clock (time.Now).
	Now func() time.Time
	// Mode returns the backoff mode configuration of a destination, as
	// Base its limits (backoffmode.go). Nil: no backoff on the deferral
	// rate, and a rule's backoff lasts its duration at its rate.
	Mode func(domain string, mxHosts []string) Mode
	// OnBackoff, when set, is told of every site entering and leaving
	// backoff mode, in order, outside the Shaper's lock. It must not call
	// the Shaper (the order is kept by a lock it holds meanwhile), and
	// should be quick: it may write to disk, rarely.
	OnBackoff func(BackoffEvent)
	// Tune returns the self-tuning configuration of a destination, as
	// Base its limits (tune.go). Nil: no tuning.
	Tune func(domain string, mxHosts []string) Tuning
	// OnTune, when set, is told of every change of a site's tuned rate,
	// as OnBackoff is (same lock, same rules).
	OnTune func(TuneState)
	// OnSuspend, when set, is told of every suspension an automation rule
	// starts or lengthens (suspend.go), as OnBackoff is.
	OnSuspend func(RuleSuspension)
	// OnCut, when set, is told of every change of a path's adaptive
	// back-off (sharedcut.go), as OnBackoff is (same lock, same rules).
	OnCut func(CutState)
}

// Backoff configures the adaptive back-off ([backoff]).
type Backoff struct {
	Disabled        bool
	Factor          float64          // multiplicative decrease (0.7)
	RecoverInterval time.Duration    // between two increases, and the least time between two cuts (1s)
	RecoverStep     float64          // fraction of the configured rate added per step (0.1)
	Throttle        []*regexp.Regexp // more replies that count as throttling
	// MinRate is the floor of a cut rate, per second (1/60: one a minute).
	MinRate float64
}

// Action is what an automation rule does.
type Action uint8

// The actions of a Rule.
const (
	Suspend     Action = iota + 1 // no delivery to the path until the rule expires
	Bounce                        // bounce the path's queued mail until the rule expires
	Rate                          // cap the path's message rate to Rule.Rate until it expires
	BackoffMode                   // put the path's site in backoff mode (backoffmode.go)
)

// ParseAction parses "suspend", "bounce", "rate" or "backoff".
func ParseAction(s string) (Action, bool) {
	switch strings.ToLower(s) {
	case "suspend":
		return Suspend, true
	case "bounce":
		return Bounce, true
	case "rate":
		return Rate, true
	case "backoff":
		return BackoffMode, true
	}
	return 0, false
}

func (a Action) String() string {
	switch a {
	case Suspend:
		return "suspend"
	case Bounce:
		return "bounce"
	case Rate:
		return "rate"
	case BackoffMode:
		return "backoff"
	}
	return "none"
}

// Rule is one automation rule ([[shaping_rule]]).
type Rule struct {
	Domains    []string // destination domains (lower case); with MXSuffixes empty too: every destination
	MXSuffixes []string // MX host suffixes (".yahoodns.net")
	Regex      *regexp.Regexp
	Action     Action
	Duration   time.Duration
	Rate       float64 // per second, for Rate
}

// matches reports whether the rule applies to a destination.
func (r *Rule) matches(domain string, hosts []string) bool {
	if len(r.Domains) == 0 && len(r.MXSuffixes) == 0 {
		return true
	}
	for _, d := range r.Domains {
		if d == domain {
			return true
		}
	}
	return len(r.MXSuffixes) > 0 && MatchMXSuffix(hosts, r.MXSuffixes)
}

// MatchMXSuffix reports whether every host name ends in one of the
// suffixes (case-insensitive; ".google.com" also matches "google.com"); the
// one matcher is config.MatchesMXSuffix, which also picks [shaping] tables.
func MatchMXSuffix(hosts, suffixes []string) bool {
	return config.MatchesMXSuffix(hosts, suffixes)
}

// Gate is what the delivery loop must do with an item of a path before
// delivering it: nothing (zero Gate), wait until Until (suspended), or
// bounce it with Reply.
type Gate struct {
	Until  time.Time
	Bounce bool
	Reply  smtpwire.Reply
}

// PathStatus is the shaping state of one path, for metrics and the admin
// API.
type PathStatus struct {
	Source, Site   string
	Connections    int       // effective connection limit
	EffectiveRate  float64   // effective messages per second; 0 = unlimited
	ConfiguredRate float64   // configured messages per second; 0 = unlimited
	Throttled      bool      // backed off and not yet recovered
	Suspended      time.Time // suspended until (zero: not)
	Backoff        bool      // the site is in backoff mode
	Bouncing       time.Time // bouncing until (zero: not)
	// Reason is the server reply that caused what is in force: the
	// suspension or bounce of a rule, else the last throttling reply of
	// the back-off ("" when nothing is).
	Reason     string
	TunedRate  float64 // the site's tuned rate (0: not tuning, or nothing learned)
	TuneReason string  // why the tuned rate last moved
	// TunedConns is the site's tuned connection limit (0: not tuning);
	// ConnsReason why it last moved ("" while at its starting count).
	TunedConns  int
	ConnsReason string
}

// Shaper holds the shaping state of every path. Create it with New.
type Shaper struct {
	cfg Config
	now func() time.Time

	mu     sync.Mutex
	paths  map[string]*path     // by Path.Key
	sites  map[string]*siteMode // backoff mode, by site (backoffmode.go)
	events []BackoffEvent       // told to OnBackoff when mu is released (unlock)
	tunes  []TuneState          // told to OnTune when mu is released (unlock)
	susp   []RuleSuspension     // told to OnSuspend when mu is released (unlock)
	cuts   []CutState           // told to OnCut when mu is released (unlock)
	evMu   sync.Mutex           // held while they are told
}

// path is the state of one path (egress source, site).
type path struct {
	source string
	site   resolver.SiteKey
	domain string   // the last destination domain seen here
	hosts  []string // the site's MX host names; none for the relay_to smarthost
	base   outbound.Limits
	tuning Tuning // self-tuning (tune.go), read with base

	// Adaptive back-off: while cut, rate and conns replace the configured
	// values (rate 0 with a configured rate of 0 never happens while cut).
	cut       bool
	rate      float64 // messages per second
	rateCeil  float64 // where recovery ends: the configured or measured rate
	conns     float64
	lastCut   time.Time
	lastRaise time.Time
	meter     meter
	cutReply  smtpwire.Reply // the throttling reply of the last cut
	cutAt     time.Time      // the last change of the cut, here or applied from the cluster (sharedcut.go)

	// Automation.
	suspendUntil time.Time
	suspendReply smtpwire.Reply // the reply a rule suspended the path for (zero: an admin suspension)
	bounceUntil  time.Time
	bounceReply  smtpwire.Reply
	capUntil     time.Time
	capRate      float64
	sm           *siteMode // the site's backoff mode; nil until it is looked at

	lastUsed time.Time
}

// New returns a Shaper.
func New(cfg Config) *Shaper {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Base == nil {
		cfg.Base = func(string, []string) outbound.Limits {
			return outbound.Limits{Connections: 10, MaxDeliveriesPerConn: 100}
		}
	}
	b := &cfg.Backoff
	if b.Factor <= 0 || b.Factor >= 1 {
		b.Factor = 0.7
	}
	if b.RecoverInterval <= 0 {
		b.RecoverInterval = time.Second
	}
	if b.RecoverStep <= 0 || b.RecoverStep > 1 {
		b.RecoverStep = 0.1
	}
	if b.MinRate <= 0 {
		b.MinRate = 1.0 / 60
	}
	return &Shaper{cfg: cfg, now: cfg.Now, paths: make(map[string]*path), sites: make(map[string]*siteMode)}
}

// get returns the state of path pa, creating it; under s.mu.
func (s *Shaper) get(pa outbound.Path, now time.Time) *path {
	k := pa.Key()
	p := s.paths[k]
	if p == nil {
		p = &path{source: pa.Source, site: pa.Site, hosts: pa.Site.MXHosts()}
		s.paths[k] = p
		if len(s.paths) > 4096 {
			s.forgetIdle(now)
		}
	}
	if pa.Domain != "" && pa.Domain != p.domain {
		p.domain = pa.Domain
		p.base, p.tuning = s.cfg.Base(p.domain, p.hosts), s.tuningOf(p)
	} else if p.lastUsed.IsZero() || now.Sub(p.lastUsed) > time.Second {
		// Re-read the configuration now and then (reloads).
		p.base, p.tuning = s.cfg.Base(p.domain, p.hosts), s.tuningOf(p)
	}
	p.lastUsed = now
	s.checkModeEnd(s.siteModeOf(p), now)
	return p
}

// forgetIdle drops paths unused for 10 minutes with nothing in force, and
// the backoff mode state of sites not in backoff that no path uses.
func (s *Shaper) forgetIdle(now time.Time) {
	used := make(map[*siteMode]bool, len(s.sites))
	for k, p := range s.paths {
		if now.Sub(p.lastUsed) > 10*time.Minute && !p.cut && now.After(p.suspendUntil) &&
			now.After(p.bounceUntil) && now.After(p.capUntil) && (p.sm == nil || !p.sm.on) {
			delete(s.paths, k)
			continue
		}
		used[p.sm] = true
	}
	for k, sm := range s.sites {
		if !sm.on && !used[sm] && !sm.tune.learned() { // what tuning learned stays
			delete(s.sites, k)
		}
	}
}

// Limits returns the effective limits of the path: the configured ones,
// lowered by adaptive back-off and rate rules in force.
func (s *Shaper) Limits(pa outbound.Path) outbound.Limits {
	now := s.now()
	s.mu.Lock()
	defer s.unlock()
	p := s.get(pa, now)
	return s.effective(p, now)
}

func (s *Shaper) effective(p *path, now time.Time) outbound.Limits {
	l := p.base
	br := backoffRate(p) // in backoff, its rate replaces the adaptive cut
	if p.cut {
		if c := int(p.conns); c < l.Connections || l.Connections <= 0 {
			l.Connections = max(1, c)
		}
		if br == 0 && (l.MessageRate <= 0 || p.rate < l.MessageRate) {
			l.MessageRate = p.rate
		}
	}
	if br > 0 && (l.MessageRate <= 0 || br < l.MessageRate) {
		l.MessageRate = br
	}
	if tr := tunedRate(p); br == 0 && tr > 0 && (l.MessageRate <= 0 || tr < l.MessageRate) {
		l.MessageRate = tr
	}
	if tc := tunedConns(p); tc > 0 && tc < l.Connections {
		l.Connections = tc
	}
	if now.Before(p.capUntil) && (l.MessageRate <= 0 || p.capRate < l.MessageRate) {
		l.MessageRate = p.capRate
	}
	return l
}

// Gate tells whether an item of the path may be delivered now.
func (s *Shaper) Gate(pa outbound.Path) Gate {
	now := s.now()
	s.mu.Lock()
	defer s.unlock()
	p := s.paths[pa.Key()]
	if p == nil {
		return Gate{}
	}
	if now.Before(p.bounceUntil) {
		return Gate{Bounce: true, Reply: p.bounceReply}
	}
	if now.Before(p.suspendUntil) {
		return Gate{Until: p.suspendUntil}
	}
	return Gate{}
}

// Observe takes the outcome of one transaction on the path: a throttling
// reply cuts the path's rate and connections, success lets them recover,
// and a reply matching an automation rule starts its action. It reports
// whether a Bounce rule matched this outcome: the caller then bounces the
// recipients it deferred.
func (s *Shaper) Observe(pa outbound.Path, out *outbound.Outcome) (bounce bool) {
	now := s.now()
	s.mu.Lock()
	defer s.unlock()
	p := s.get(pa, now)
	p.meter.add(now)

	throttled, delivered := false, false
	var throttleReply smtpwire.Reply
	// wholeTxn: the reply refused the whole transaction (every recipient
	// got it), as opposed to one recipient among others.
	wholeTxn := len(out.Results) > 0
	for i := range out.Results {
		if out.Results[i].Status == outbound.Delivered || (i > 0 && !sameReply(out.Results[i].Reply, out.Results[0].Reply)) {
			wholeTxn = false
			break
		}
	}
	check := func(r smtpwire.Reply, whole bool) {
		if r.Code == 0 {
			return
		}
		if r.Code >= 400 {
			if s.isThrottle(r, whole) {
				throttled, throttleReply = true, r
			}
			if s.automate(p, r, now) {
				bounce = true
			}
		}
	}
	check(out.SessionReply, true)
	defer func() {
		s.observeMode(p, out, throttled, now)
		s.observeTune(p, out, now)
	}()
	seen := 0
	for i := range out.Results {
		res := &out.Results[i]
		if res.Status == outbound.Delivered {
			delivered = true
		}
		if res.Local {
			continue
		}
		// Recipients of one transaction often share a reply: look at each
		// distinct one once.
		if i > 0 && seen > 0 && sameReply(res.Reply, out.Results[i-1].Reply) {
			continue
		}
		seen++
		check(res.Reply, wholeTxn)
	}
	if s.cfg.Backoff.Disabled || p.tuning.Enabled {
		return bounce // tuning replaces the adaptive cut (tune.go)
	}
	switch {
	case throttled:
		s.cut(p, now, throttleReply)
	case delivered:
		s.recover(p, now)
	}
	return bounce
}

func sameReply(a, b smtpwire.Reply) bool {
	if a.Code != b.Code || a.Enhanced != b.Enhanced || len(a.Lines) != len(b.Lines) {
		return false
	}
	for i := range a.Lines {
		if a.Lines[i] != b.Lines[i] {
			return false
		}
	}
	return true
}

// builtinThrottle matches the wording providers use when they defer mail
// because of its rate rather than its content (Gmail's "unusual rate",
// Yahoo's "try again later", Microsoft's "throttled", …).
var builtinThrottle = regexp.MustCompile(`(?i)rate limit|unusual rate|too many (messages|connections|recipients|emails)|throttl|exceeded|try again later|slow down|temporarily (deferred|rate)`)

// isThrottle reports whether a server reply asks Gannet to slow down: a 421
// (the server closes the session), any 4.7.x (RFC 3463 security or policy
// status, which providers use for rate limiting), a 451 that refuses the
// whole transaction (wholeTxn: the session reply, or the one reply every
// recipient got), or a 4xx whose text says so (builtinThrottle and the
// configured throttle_regex). A lone 451 at RCPT is a per-recipient
// temporary failure (greylisting, a busy mailbox), not a reason to slow the
// whole site down; nor is greylisting (Greylisting), even with a 4.7.1
// or refusing every recipient of the transaction.
func (s *Shaper) isThrottle(r smtpwire.Reply, wholeTxn bool) bool {
	if r.Code/100 != 4 || Greylisting(r) {
		return false
	}
	if r.Code == 421 || strings.HasPrefix(r.Enhanced, "4.7.") || (r.Code == 451 && wholeTxn) {
		return true
	}
	text := r.String()
	if builtinThrottle.MatchString(text) {
		return true
	}
	for _, re := range s.cfg.Backoff.Throttle {
		if re.MatchString(text) {
			return true
		}
	}
	return false
}

// automate applies the first rule matching the reply; true for Bounce.
func (s *Shaper) automate(p *path, r smtpwire.Reply, now time.Time) bool {
	if len(s.cfg.Rules) == 0 {
		return false
	}
	text := r.String()
	for i := range s.cfg.Rules {
		rule := &s.cfg.Rules[i]
		if !rule.matches(p.domain, p.hosts) || rule.Regex == nil || !rule.Regex.MatchString(text) {
			continue
		}
		until := now.Add(rule.Duration)
		switch rule.Action {
		case Suspend:
			if until.After(p.suspendUntil) {
				p.suspendUntil, p.suspendReply = until, r
				s.noteSuspension(p)
			}
		case Bounce:
			p.bounceUntil, p.bounceReply = until, r
			return true
		case Rate:
			p.capUntil, p.capRate = until, max(rule.Rate, s.cfg.Backoff.MinRate)
		case BackoffMode:
			s.automateBackoff(p, rule, r, now)
		}
		return false
	}
	return false
}

// unlimitedCutFloor is the least rate, per second, a cut starts from on a
// path that has no configured rate.
const unlimitedCutFloor = 10.0

// startCut returns the rate a decrease starts from, and on a path not yet
// cut remembers where recovery ends (rateCeil) and its connections.
func (s *Shaper) startCut(p *path, now time.Time) float64 {
	eff := s.effective(p, now)
	rate := eff.MessageRate
	if rate <= 0 {
		// No configured rate: start from the measured one, but not below
		// unlimitedCutFloor, so that one throttling reply at low volume
		// does not bring a site down to a message every few seconds; if
		// the throttling goes on, each further cut lowers it again.
		rate = max(p.meter.rate(now), unlimitedCutFloor)
	}
	if !p.cut {
		p.rateCeil = p.base.MessageRate
		if p.rateCeil <= 0 {
			p.rateCeil = rate // recover to the measured rate, then unlimited
		}
		p.conns = float64(max(1, eff.Connections))
	}
	return rate
}

// cut is the multiplicative decrease, for reply.
func (s *Shaper) cut(p *path, now time.Time, reply smtpwire.Reply) {
	b := &s.cfg.Backoff
	if p.cut && now.Sub(p.lastCut) < b.RecoverInterval {
		return // one cut per interval: in-flight work started at the old rate
	}
	rate := s.startCut(p, now)
	p.cut, p.cutReply = true, reply
	p.rate = max(b.MinRate, rate*b.Factor)
	p.conns = max(1, math.Floor(p.conns*b.Factor))
	p.lastCut, p.lastRaise = now, now
	s.noteCut(p, now)
}

// recover is the additive increase after a success.
func (s *Shaper) recover(p *path, now time.Time) {
	b := &s.cfg.Backoff
	if !p.cut || now.Sub(p.lastRaise) < b.RecoverInterval {
		return
	}
	p.lastRaise = now
	p.rate = min(p.rateCeil, p.rate+b.RecoverStep*p.rateCeil)
	connCeil := float64(max(1, p.base.Connections))
	p.conns = min(connCeil, p.conns+max(1, math.Floor(b.RecoverStep*connCeil)))
	if p.rate >= p.rateCeil && p.conns >= connCeil {
		p.cut = false
	}
	s.noteCut(p, now)
}

// Status returns the state of every known path, sorted by source and site.
func (s *Shaper) Status() []PathStatus {
	now := s.now()
	s.mu.Lock()
	defer s.unlock()
	out := make([]PathStatus, 0, len(s.paths))
	for _, p := range s.paths {
		out = append(out, s.status(p, now))
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Source != out[j].Source {
			return out[i].Source < out[j].Source
		}
		return out[i].Site < out[j].Site
	})
	return out
}

// PathStatus returns the state of one path (zero Site when unknown).
func (s *Shaper) PathStatus(pa outbound.Path) PathStatus {
	now := s.now()
	s.mu.Lock()
	defer s.unlock()
	p := s.paths[pa.Key()]
	if p == nil {
		return PathStatus{}
	}
	return s.status(p, now)
}

func (s *Shaper) status(p *path, now time.Time) PathStatus {
	eff := s.effective(p, now)
	st := PathStatus{Source: p.source, Site: p.site.String(), Connections: eff.Connections,
		EffectiveRate: eff.MessageRate, ConfiguredRate: p.base.MessageRate, Throttled: p.cut}
	if p.cut {
		st.Reason = p.cutReply.String()
	}
	if now.Before(p.suspendUntil) {
		st.Suspended = p.suspendUntil
		if p.suspendReply.Code != 0 {
			st.Reason = p.suspendReply.String()
		}
	}
	if now.Before(p.bounceUntil) {
		st.Bouncing = p.bounceUntil
		st.Reason = p.bounceReply.String()
	}
	if p.sm != nil {
		s.checkModeEnd(p.sm, now)
		st.Backoff = p.sm.on
		if st.TunedRate = tunedRate(p); st.TunedRate > 0 {
			st.TuneReason = p.sm.tune.Reason
		}
		if st.TunedConns = tunedConns(p); st.TunedConns > 0 && p.sm.tune != nil {
			st.ConnsReason = p.sm.tune.ConnsReason
		}
	}
	return st
}

// SuspendSite suspends delivery to a site on every source until until (a
// zero time lifts a suspension): the admin API's suspend.
func (s *Shaper) SuspendSite(site resolver.SiteKey, until time.Time) {
	now := s.now()
	s.mu.Lock()
	defer s.unlock()
	found := false
	for _, p := range s.paths {
		if p.site == site {
			p.suspendUntil, p.suspendReply = until, smtpwire.Reply{}
			found = true
		}
	}
	if !found && !until.IsZero() {
		p := s.get(outbound.Path{Site: site}, now)
		p.suspendUntil = until
	}
}

// Open reports whether the gate lets the item through (no wait, no bounce).
func (g Gate) Open() bool { return g.Until.IsZero() && !g.Bounce }

// ScaleDomain multiplies the current message rate of every path that
// delivers to domain by factor (0 < factor < 1 slows it down): a policy
// script's adjust_domain_rate(domain, -0.3) is factor 0.7. The rate stays
// within [backoff] min_rate and the configured rate, and recovers as after
// an adaptive cut. It reports how many paths it changed (none when no mail
// to domain has gone out since the paths were last forgotten).
func (s *Shaper) ScaleDomain(domain string, factor float64) int {
	if factor <= 0 || math.IsNaN(factor) || math.IsInf(factor, 0) {
		return 0
	}
	now := s.now()
	s.mu.Lock()
	defer s.unlock()
	n := 0
	for _, p := range s.paths {
		if p.domain != domain {
			continue
		}
		rate := s.startCut(p, now)
		p.rate = max(s.cfg.Backoff.MinRate, min(p.rateCeil, rate*factor))
		p.cut = p.rate < p.rateCeil || p.conns < float64(max(1, p.base.Connections))
		p.lastCut, p.lastRaise = now, now
		s.noteCut(p, now)
		n++
	}
	return n
}
