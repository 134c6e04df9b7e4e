package shaping

import (
	"math"
	"regexp"
	"strings"
	"testing"
	"time"

	"gannet/engine/outbound"
	"gannet/resolver"
	"gannet/smtpwire"
)

type clock struct{ t time.Time }

func (c *clock) now() time.Time          { return c.t }
func (c *clock) advance(d time.Duration) { c.t = c.t.Add(d) }

func newTestShaper(base outbound.Limits, mod func(*Config)) (*Shaper, *clock) {
	c := &clock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	cfg := Config{
		Base: func(string, []string) outbound.Limits { return base },
		Now:  c.now,
	}
	if mod != nil {
		mod(&cfg)
	}
	return New(cfg), c
}

func outcome(st outbound.Status, code int, enh, text string) *outbound.Outcome {
	return &outbound.Outcome{Results: []outbound.Result{{Rcpt: "a@x.test", Status: st,
		Reply: smtpwire.Reply{Code: code, Enhanced: enh, Lines: []string{text}}}}}
}

func ok() *outbound.Outcome { return outcome(outbound.Delivered, 250, "2.0.0", "OK") }

const site = "mx1.x.test,mx2.x.test"

// pathTo is the path from source to the MX site of mxHosts (joined by ",")
// for domain.
func pathTo(source, mxHosts, domain string) outbound.Path {
	return outbound.Path{Source: source, Site: resolver.MXSite(strings.Split(mxHosts, ",")), Domain: domain}
}

func near(a, b float64) bool { return math.Abs(a-b) < 1e-9 }

// TestBackoffCutAndRecover: a 421 cuts rate and connections by the factor;
// successes bring them back one step per interval up to the configured
// limits, and no further.
func TestBackoffCutAndRecover(t *testing.T) {
	s, c := newTestShaper(outbound.Limits{Connections: 10, MessageRate: 100}, nil)
	if l := s.Limits(pathTo("", site, "x.test")); l.Connections != 10 || l.MessageRate != 100 {
		t.Fatalf("initial limits %+v", l)
	}
	s.Observe(pathTo("", site, "x.test"), outcome(outbound.Transient, 421, "4.7.0", "Too many messages, slow down"))
	l := s.Limits(pathTo("", site, "x.test"))
	if l.Connections != 7 || !near(l.MessageRate, 70) {
		t.Fatalf("after a 421: %+v, want 7 connections and 70/s", l)
	}
	// A second throttle in the same interval does not cut again.
	s.Observe(pathTo("", site, "x.test"), outcome(outbound.Transient, 451, "4.7.1", "rate limited"))
	if l := s.Limits(pathTo("", site, "x.test")); !near(l.MessageRate, 70) {
		t.Fatalf("second cut within the interval: %+v", l)
	}
	c.advance(time.Second)
	s.Observe(pathTo("", site, "x.test"), outcome(outbound.Transient, 451, "4.7.1", "rate limited"))
	if l := s.Limits(pathTo("", site, "x.test")); !near(l.MessageRate, 49) || l.Connections != 4 {
		t.Fatalf("second cut: %+v, want 49/s and 4 connections", l)
	}
	if st := s.PathStatus(pathTo("", site, "")); !st.Throttled || !near(st.EffectiveRate, 49) || st.ConfiguredRate != 100 {
		t.Fatalf("status %+v", st)
	}
	// Recovery: +10/s and +1 connection per second of successes.
	prev := 49.0
	for i := 0; i < 20; i++ {
		c.advance(time.Second)
		s.Observe(pathTo("", site, "x.test"), ok())
		l := s.Limits(pathTo("", site, "x.test"))
		if l.MessageRate < prev || l.MessageRate > 100 || l.Connections > 10 {
			t.Fatalf("step %d: %+v", i, l)
		}
		prev = l.MessageRate
	}
	if l := s.Limits(pathTo("", site, "x.test")); l.MessageRate != 100 || l.Connections != 10 {
		t.Fatalf("recovered to %+v, want the configured 10 connections and 100/s", l)
	}
	if st := s.PathStatus(pathTo("", site, "")); st.Throttled {
		t.Fatalf("still throttled after recovery: %+v", st)
	}
}

// TestBackoffUnlimitedUsesMeasuredRate: with no configured rate, the cut
// starts from the measured rate and recovery ends at unlimited again.
func TestBackoffUnlimitedUsesMeasuredRate(t *testing.T) {
	s, c := newTestShaper(outbound.Limits{Connections: 4}, nil)
	for sec := 0; sec < 3; sec++ {
		for i := 0; i < 20; i++ {
			c.advance(50 * time.Millisecond)
			s.Observe(pathTo("", site, "x.test"), ok())
		}
	}
	c.advance(10 * time.Millisecond)
	s.Observe(pathTo("", site, "x.test"), outcome(outbound.Transient, 421, "4.3.2", "try later"))
	l := s.Limits(pathTo("", site, "x.test"))
	if l.MessageRate < 0.7*15 || l.MessageRate > 0.7*25 {
		t.Fatalf("cut rate %v, want about 0.7 × 20/s", l.MessageRate)
	}
	for i := 0; i < 15; i++ {
		c.advance(time.Second)
		s.Observe(pathTo("", site, "x.test"), ok())
	}
	if l := s.Limits(pathTo("", site, "x.test")); l.MessageRate != 0 || l.Connections != 4 {
		t.Fatalf("after recovery %+v, want unlimited and 4 connections", l)
	}
}

// TestNotThrottle: local replies, 5xx and ordinary 4xx do not cut; a
// throttle_regex makes a 450 count.
func TestNotThrottle(t *testing.T) {
	s, _ := newTestShaper(outbound.Limits{Connections: 5, MessageRate: 10}, func(c *Config) {
		c.Backoff.Throttle = []*regexp.Regexp{regexp.MustCompile(`(?i)too fast`)}
	})
	local := outcome(outbound.Transient, 451, "4.4.2", "connection lost")
	local.Results[0].Local = true
	for _, o := range []*outbound.Outcome{
		local,
		outcome(outbound.Bounced, 550, "5.1.1", "no such user"),
		outcome(outbound.Transient, 450, "4.2.0", "mailbox busy"),
	} {
		s.Observe(pathTo("", site, "x.test"), o)
		if l := s.Limits(pathTo("", site, "x.test")); l.MessageRate != 10 {
			t.Fatalf("%v cut the rate to %v", o.Results[0].Reply, l.MessageRate)
		}
	}
	s.Observe(pathTo("", site, "x.test"), outcome(outbound.Transient, 450, "4.2.0", "you send too fast"))
	if l := s.Limits(pathTo("", site, "x.test")); !near(l.MessageRate, 7) {
		t.Fatalf("throttle_regex: rate %v, want 7", l.MessageRate)
	}
	// A 421 greeting (no transaction) is a throttle too.
	s2, _ := newTestShaper(outbound.Limits{Connections: 5, MessageRate: 10}, nil)
	o := &outbound.Outcome{SessionReply: smtpwire.Reply{Code: 421, Enhanced: "4.7.0", Lines: []string{"too many connections"}},
		Results: []outbound.Result{{Status: outbound.Transient, Local: true, Reply: smtpwire.Reply{Code: 451, Enhanced: "4.4.0"}}}}
	s2.Observe(pathTo("", site, "x.test"), o)
	if l := s2.Limits(pathTo("", site, "x.test")); l.Connections != 3 {
		t.Fatalf("421 greeting: %+v, want 3 connections", l)
	}
}

// TestRules: suspend, bounce and rate rules match by domain or MX suffix
// and expire after their duration.
func TestRules(t *testing.T) {
	s, c := newTestShaper(outbound.Limits{Connections: 5, MessageRate: 50}, func(cfg *Config) {
		cfg.Backoff.Disabled = true
		cfg.Rules = []Rule{
			{MXSuffixes: []string{".x.test"}, Regex: regexp.MustCompile(`\[TS01\]`), Action: Suspend, Duration: time.Hour},
			{Domains: []string{"y.test"}, Regex: regexp.MustCompile(`blocked`), Action: Bounce, Duration: time.Minute},
			{Regex: regexp.MustCompile(`unusual rate`), Action: Rate, Rate: 1, Duration: 30 * time.Minute},
		}
	})
	// Suspend by MX suffix.
	if g := s.Gate(pathTo("", site, "x.test")); !g.Open() {
		t.Fatalf("gate before any rule: %+v", g)
	}
	s.Observe(pathTo("", site, "x.test"), outcome(outbound.Transient, 421, "4.7.0", "[TS01] deferred due to complaints"))
	if g := s.Gate(pathTo("", site, "x.test")); !g.Until.Equal(c.t.Add(time.Hour)) {
		t.Fatalf("suspend: gate %+v", g)
	}
	if st := s.PathStatus(pathTo("", site, "")); st.Suspended.IsZero() {
		t.Fatal("status does not show the suspension")
	}
	// The suspend rule does not apply to another MX.
	s.Observe(pathTo("", "mx.other.test", "other.test"), outcome(outbound.Transient, 421, "4.7.0", "[TS01] deferred"))
	if g := s.Gate(pathTo("", "mx.other.test", "other.test")); !g.Open() {
		t.Fatalf("rule for .x.test applied to mx.other.test: %+v", g)
	}
	// Bounce by domain: Observe reports it, Gate bounces for a minute.
	if !s.Observe(pathTo("", "mx.y.test", "y.test"), outcome(outbound.Transient, 451, "4.7.1", "you are blocked")) {
		t.Fatal("Observe did not report the bounce rule")
	}
	if g := s.Gate(pathTo("", "mx.y.test", "y.test")); !g.Bounce || g.Reply.Code != 451 {
		t.Fatalf("bounce gate %+v", g)
	}
	// Rate for every destination.
	s.Observe(pathTo("", "mx.z.test", "z.test"), outcome(outbound.Transient, 450, "4.7.0", "unusual rate of mail"))
	if l := s.Limits(pathTo("", "mx.z.test", "z.test")); l.MessageRate != 1 {
		t.Fatalf("rate rule: %+v", l)
	}
	c.advance(31 * time.Minute)
	if l := s.Limits(pathTo("", "mx.z.test", "z.test")); l.MessageRate != 50 {
		t.Fatalf("rate rule after its duration: %+v", l)
	}
	if g := s.Gate(pathTo("", "mx.y.test", "y.test")); !g.Open() {
		t.Fatalf("bounce rule after its duration: %+v", g)
	}
	c.advance(30 * time.Minute)
	if g := s.Gate(pathTo("", site, "x.test")); !g.Open() {
		t.Fatalf("suspension after its duration: %+v", g)
	}
}

// TestPathsAreSeparate: the state of one egress source's path does not
// touch another's, and the base limits see the MX hosts of the site.
func TestPathsAreSeparate(t *testing.T) {
	var gotHosts []string
	s, _ := newTestShaper(outbound.Limits{}, func(c *Config) {
		c.Base = func(domain string, hosts []string) outbound.Limits {
			gotHosts = hosts
			if MatchMXSuffix(hosts, []string{".x.test"}) {
				return outbound.Limits{Connections: 3, MessageRate: 10}
			}
			return outbound.Limits{Connections: 9, MessageRate: 90}
		}
	})
	if l := s.Limits(pathTo("ip1", site, "x.test")); l.Connections != 3 {
		t.Fatalf("provider limits %+v (hosts %v)", l, gotHosts)
	}
	s.Observe(pathTo("ip1", site, "x.test"), outcome(outbound.Transient, 421, "4.7.0", "slow down"))
	if l := s.Limits(pathTo("ip2", site, "x.test")); l.Connections != 3 || l.MessageRate != 10 {
		t.Fatalf("ip2 changed by ip1's throttle: %+v", l)
	}
	if l := s.Limits(pathTo("ip1", site, "x.test")); l.Connections != 2 {
		t.Fatalf("ip1 after throttle: %+v", l)
	}
	if l := s.Limits(pathTo("", "mx.other.test", "other.test")); l.Connections != 9 {
		t.Fatalf("other site %+v", l)
	}
	if n := len(s.Status()); n != 3 {
		t.Fatalf("%d paths in Status, want 3", n)
	}
}

func TestMatchMXSuffix(t *testing.T) {
	for _, c := range []struct {
		hosts, suffixes []string
		want            bool
	}{
		{[]string{"aspmx.l.google.com", "alt1.aspmx.l.google.com."}, []string{".google.com"}, true},
		{[]string{"aspmx.l.google.com", "mx.other.test"}, []string{".google.com"}, false},
		{[]string{"google.com"}, []string{".google.com"}, true},
		{[]string{"notgoogle.com"}, []string{".google.com"}, false},
		{[]string{"MX.Yahoodns.NET"}, []string{"yahoodns.net"}, true},
		{nil, []string{".google.com"}, false},
	} {
		if got := MatchMXSuffix(c.hosts, c.suffixes); got != c.want {
			t.Errorf("MatchMXSuffix(%v, %v) = %v", c.hosts, c.suffixes, got)
		}
	}
}

func BenchmarkShaperLimitsObserve(b *testing.B) {
	s, _ := newTestShaper(outbound.Limits{Connections: 10, MessageRate: 100}, nil)
	o := ok()
	p := pathTo("", site, "x.test")
	b.ReportAllocs()
	for b.Loop() {
		s.Limits(p)
		s.Observe(p, o)
	}
}

// TestThrottleReplies: which deferrals count as "slow down". A lone 451 at
// RCPT among delivered recipients (greylisting, a busy mailbox) does not cut
// the site, nor does greylisting (even a 4.7.1 to every recipient); a 451
// refusing the whole transaction, a 421, any other 4.7.x and a 4xx speaking
// of rates do.
func TestThrottleReplies(t *testing.T) {
	mixed := &outbound.Outcome{Results: []outbound.Result{
		{Rcpt: "a@x.test", Status: outbound.Delivered, Reply: smtpwire.Reply{Code: 250, Enhanced: "2.0.0", Lines: []string{"OK"}}},
		{Rcpt: "b@x.test", Status: outbound.Transient, Reply: smtpwire.Reply{Code: 451, Enhanced: "4.3.0", Lines: []string{"mailbox busy"}}},
	}}
	cases := []struct {
		name string
		out  *outbound.Outcome
		cut  bool
	}{
		{"451 for one recipient of two", mixed, false},
		{"451 for the whole transaction", outcome(outbound.Transient, 451, "4.3.0", "local error"), true},
		{"421", outcome(outbound.Transient, 421, "4.3.2", "closing"), true},
		{"450 4.7.1", outcome(outbound.Transient, 450, "4.7.1", "Client host rejected: policy"), true},
		{"450 4.7.1 greylisted", outcome(outbound.Transient, 450, "4.7.1", "greylisted"), false},
		{"451 4.7.1 greylisting for the whole transaction", outcome(outbound.Transient, 451, "4.7.1", "Greylisted, try again later"), false},
		{"421 speaking of greylisting", outcome(outbound.Transient, 421, "4.7.0", "greylisted, closing"), true},
		{"450 with rate wording", outcome(outbound.Transient, 450, "4.2.1", "Rate limit exceeded, try again later"), true},
		{"452 mailbox full", outcome(outbound.Transient, 452, "4.2.2", "mailbox full"), false},
		{"550", outcome(outbound.Bounced, 550, "5.1.1", "no such user"), false},
	}
	for _, tc := range cases {
		s, _ := newTestShaper(outbound.Limits{Connections: 10, MessageRate: 100}, nil)
		s.Observe(pathTo("", site, "x.test"), tc.out)
		got := s.PathStatus(pathTo("", site, "")).Throttled
		if got != tc.cut {
			t.Errorf("%s: throttled %v, want %v", tc.name, got, tc.cut)
		}
	}
}

// TestCutFloorWithoutConfiguredRate: on a path with no configured rate and
// little traffic, one throttling reply cuts from unlimitedCutFloor (not from
// the measured trickle), and further throttling keeps cutting.
func TestCutFloorWithoutConfiguredRate(t *testing.T) {
	s, c := newTestShaper(outbound.Limits{Connections: 4}, nil)
	s.Observe(pathTo("", site, "x.test"), outcome(outbound.Transient, 421, "4.7.0", "slow down"))
	if l := s.Limits(pathTo("", site, "x.test")); !near(l.MessageRate, unlimitedCutFloor*0.7) || l.Connections != 2 {
		t.Fatalf("after one 421 at low volume: %+v, want %.1f/s and 2 connections", l, unlimitedCutFloor*0.7)
	}
	c.advance(time.Second)
	s.Observe(pathTo("", site, "x.test"), outcome(outbound.Transient, 421, "4.7.0", "slow down"))
	if l := s.Limits(pathTo("", site, "x.test")); !near(l.MessageRate, unlimitedCutFloor*0.49) {
		t.Fatalf("after a second 421: %+v", l)
	}
}

// TestRelaySiteHasNoMXHosts: the path to the relay_to smarthost has no MX
// host names, so its "host:port" never meets an MX-suffix table or rule,
// as it did when it was taken for an MX host name (an MX site of that name
// shows what that did).
func TestRelaySiteHasNoMXHosts(t *testing.T) {
	var asked []string
	newShaper := func() *Shaper {
		s, _ := newTestShaper(outbound.Limits{}, func(c *Config) {
			c.Backoff.Disabled = true
			c.Base = func(_ string, mxHosts []string) outbound.Limits {
				asked = mxHosts
				return outbound.Limits{Connections: 3}
			}
			c.Rules = []Rule{{MXSuffixes: []string{"relay.test:2525"}, Regex: regexp.MustCompile(`\[TS01\]`), Action: Suspend, Duration: time.Hour}}
		})
		return s
	}
	complaint := outcome(outbound.Transient, 421, "4.7.0", "[TS01] deferred")
	s := newShaper()
	relay := outbound.Path{Site: resolver.RelaySite("smtp.relay.test:2525"), Domain: "x.test"}
	if l := s.Limits(relay); l.Connections != 3 || asked != nil {
		t.Fatalf("limits %+v, MX hosts %q: want the domain's limits with no MX host", l, asked)
	}
	s.Observe(relay, complaint)
	if g := s.Gate(relay); !g.Open() {
		t.Errorf("an MX-suffix rule matched the relay_to smarthost: gate %+v", g)
	}
	s = newShaper()
	mx := outbound.Path{Site: resolver.MXSite([]string{"smtp.relay.test:2525"}), Domain: "x.test"}
	s.Observe(mx, complaint)
	if g := s.Gate(mx); g.Open() || len(asked) != 1 {
		t.Errorf("taken for an MX host name (%q), the smarthost escaped the rule: gate %+v", asked, g)
	}
}

// TestScaleDomain: adjust_domain_rate(d, -0.3) scales the rate of the
// domain's paths by 0.7 (and again on a second call), leaves other
// domains alone, stays above min_rate, and recovers like a cut.
func TestScaleDomain(t *testing.T) {
	s, c := newTestShaper(outbound.Limits{Connections: 10, MessageRate: 100}, func(cfg *Config) { cfg.Backoff.MinRate = 20 })
	x, y := pathTo("", site, "x.test"), pathTo("", "mx.y.test", "y.test")
	s.Observe(x, ok())
	s.Observe(y, ok())
	if n := s.ScaleDomain("nowhere.test", 0.7); n != 0 {
		t.Fatalf("unknown domain changed %d paths", n)
	}
	if n := s.ScaleDomain("x.test", 0.7); n != 1 {
		t.Fatalf("changed %d paths, want 1", n)
	}
	if l := s.Limits(x); !near(l.MessageRate, 70) || l.Connections != 10 {
		t.Fatalf("after one scale: %+v, want 70/s, 10 connections", l)
	}
	if l := s.Limits(y); !near(l.MessageRate, 100) {
		t.Fatalf("other domain: %+v", l)
	}
	s.ScaleDomain("x.test", 0.7)
	if l := s.Limits(x); !near(l.MessageRate, 49) {
		t.Fatalf("after two scales: %+v, want 49/s", l)
	}
	for range 5 {
		s.ScaleDomain("x.test", 0.5)
	}
	if l := s.Limits(x); !near(l.MessageRate, 20) {
		t.Fatalf("floor: %+v, want min_rate 20/s", l)
	}
	for range 20 {
		c.advance(time.Second)
		s.Observe(x, ok())
	}
	if l := s.Limits(x); !near(l.MessageRate, 100) || s.PathStatus(x).Throttled {
		t.Fatalf("after recovery: %+v", l)
	}
	if s.ScaleDomain("x.test", 0) != 0 || s.ScaleDomain("x.test", math.NaN()) != 0 {
		t.Fatal("a factor of 0 or NaN must change nothing")
	}
}

// TestStatusSaysWhy: the state of a path names the reply that caused what
// is in force — the last throttling reply of a back-off, the reply a rule
// suspended it for — and nothing once it has recovered.
func TestStatusSaysWhy(t *testing.T) {
	s, c := newTestShaper(outbound.Limits{Connections: 10, MessageRate: 10}, func(cfg *Config) {
		cfg.Rules = []Rule{{Regex: regexp.MustCompile(`\[TS01\]`), Action: Suspend, Duration: time.Hour}}
	})
	p := pathTo("", site, "x.test")
	if st := s.PathStatus(p); st.Reason != "" {
		t.Fatalf("reason before anything: %q", st.Reason)
	}
	s.Observe(p, outcome(outbound.Transient, 421, "4.7.0", "Too many messages, slow down"))
	if st := s.PathStatus(p); !st.Throttled || st.Reason != "421 4.7.0 Too many messages, slow down" {
		t.Fatalf("back-off: %+v", st)
	}
	for range 20 {
		c.advance(2 * time.Second)
		s.Observe(p, ok())
	}
	if st := s.PathStatus(p); st.Throttled || st.Reason != "" {
		t.Fatalf("recovered: %+v", st)
	}
	s.Observe(p, outcome(outbound.Transient, 421, "4.7.0", "[TS01] deferred due to complaints"))
	if st := s.PathStatus(p); st.Suspended.IsZero() || st.Reason != "421 4.7.0 [TS01] deferred due to complaints" {
		t.Fatalf("suspended by a rule: %+v", st)
	}
	// An admin suspension has no reply behind it (the admin API has the
	// reason).
	other := pathTo("", "mx.other.test", "other.test")
	s.Limits(other)
	s.SuspendSite(other.Site, c.t.Add(time.Minute))
	if st := s.PathStatus(other); st.Suspended.IsZero() || st.Reason != "" {
		t.Fatalf("suspended by the admin API: %+v", st)
	}
}
