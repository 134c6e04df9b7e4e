package shaping

import (
	"encoding/json"
	"regexp"
	"testing"
	"time"

	"gannet/engine/outbound"
	"gannet/resolver"
)

// TestRuleSuspensionShared: a suspension a rule makes on one shaper is
// told to OnSuspend once (and again when the rule makes it longer), goes
// through JSON, and closes the same path's gate on another shaper until
// its end, without being told there again; an older copy changes nothing.
func TestRuleSuspensionShared(t *testing.T) {
	rules := []Rule{{MXSuffixes: []string{".x.test"}, Regex: regexp.MustCompile(`\[TS01\]`), Action: Suspend, Duration: time.Hour}}
	var toldA, toldB []RuleSuspension
	a, ca := newTestShaper(outbound.Limits{Connections: 5}, func(cfg *Config) {
		cfg.Rules = rules
		cfg.OnSuspend = func(rs RuleSuspension) { toldA = append(toldA, rs) }
	})
	b, cb := newTestShaper(outbound.Limits{Connections: 5}, func(cfg *Config) {
		cfg.Rules = rules
		cfg.OnSuspend = func(rs RuleSuspension) { toldB = append(toldB, rs) }
	})
	a.Observe(pathTo("ip1", site, "x.test"), outcome(outbound.Transient, 421, "4.7.0", "[TS01] deferred"))
	a.Observe(pathTo("ip1", site, "x.test"), ok()) // not a suspension
	if len(toldA) != 1 || toldA[0].Source != "ip1" || toldA[0].Site != site || !toldA[0].Until.Equal(ca.t.Add(time.Hour)) ||
		toldA[0].Reply.Code != 421 {
		t.Fatalf("told %+v, want one suspension of ip1|%s for an hour by the 421", toldA, site)
	}
	if got := a.RuleSuspensions(); len(got) != 1 || got[0].PathKey() != pathTo("ip1", site, "").Key() {
		t.Fatalf("RuleSuspensions = %+v", got)
	}
	v, err := json.Marshal(toldA[0])
	if err != nil {
		t.Fatal(err)
	}
	var rs RuleSuspension
	if err := json.Unmarshal(v, &rs); err != nil {
		t.Fatal(err)
	}
	if !b.ApplyRuleSuspension(rs) {
		t.Fatal("ApplyRuleSuspension: not applied")
	}
	if b.ApplyRuleSuspension(rs) {
		t.Fatal("ApplyRuleSuspension of the same suspension again: applied")
	}
	if g := b.Gate(pathTo("ip1", site, "x.test")); !g.Until.Equal(rs.Until) {
		t.Fatalf("gate on b %+v, want closed until %v", g, rs.Until)
	}
	if g := b.Gate(pathTo("ip2", site, "x.test")); !g.Open() {
		t.Fatalf("gate of another source on b %+v, want open", g)
	}
	if st := b.PathStatus(pathTo("ip1", site, "")); st.Reason != "421 4.7.0 [TS01] deferred" {
		t.Fatalf("status reason on b %q", st.Reason)
	}
	if len(toldB) != 0 {
		t.Fatalf("b told %+v of a suspension it was given", toldB)
	}
	// The rule fires again later on a: longer, told again.
	ca.advance(10 * time.Minute)
	a.Observe(pathTo("ip1", site, "x.test"), outcome(outbound.Transient, 421, "4.7.0", "[TS01] deferred"))
	if len(toldA) != 2 || !toldA[1].Until.Equal(ca.t.Add(time.Hour)) {
		t.Fatalf("told %+v, want a second, longer suspension", toldA)
	}
	// Ended by itself on b at its end.
	cb.advance(time.Hour)
	if g := b.Gate(pathTo("ip1", site, "x.test")); !g.Open() {
		t.Fatalf("gate on b after the end %+v", g)
	}
	if b.ApplyRuleSuspension(rs) {
		t.Fatal("an ended suspension applied")
	}
}

// TestSiteKeyOf: the SiteKey of a site's string form is the site's.
func TestSiteKeyOf(t *testing.T) {
	for _, k := range []outbound.Path{pathTo("", site, ""), pathTo("", "mx.y.test", ""),
		{Site: resolver.RelaySite("relay.test:2525")}} {
		if got := siteKeyOf(k.Site.String()); got != k.Site {
			t.Errorf("siteKeyOf(%q) = %#v, want %#v", k.Site.String(), got, k.Site)
		}
	}
}
