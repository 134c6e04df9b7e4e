package shaping

import (
	"sort"
	"strings"
	"time"

	"gannet/engine/outbound"
	"gannet/resolver"
	"gannet/smtpwire"
)

// The suspensions an automation rule makes (action "suspend") are a state
// of a path that a cluster shares: every suspension a rule starts here, or
// makes last longer, is told to Config.OnSuspend after the Shaper's lock is
// released (as OnBackoff is, and in the same order); ApplyRuleSuspension
// puts in force one that another node told its cluster, without telling
// OnSuspend again; RuleSuspensions lists those in force. A rule's
// suspension ends by itself at its Until, on every node alike.

// RuleSuspension is a path an automation rule suspended.
type RuleSuspension struct {
	Source string         `json:"source,omitempty"` // egress source ("": the default)
	Site   string         `json:"site"`             // resolver.SiteKey.String()
	Until  time.Time      `json:"until"`
	Reply  smtpwire.Reply `json:"reply"` // the server reply the rule matched
}

// PathKey is the key of the suspended path (outbound.Path.Key).
func (rs *RuleSuspension) PathKey() string {
	return outbound.Path{Source: rs.Source, Site: siteKeyOf(rs.Site)}.Key()
}

// siteKeyOf is the SiteKey whose String is name: a relay_to "host:port"
// holds a ":", which no MX host name does (resolver.SiteKey.String).
func siteKeyOf(name string) resolver.SiteKey {
	if strings.Contains(name, ":") {
		return resolver.RelaySite(name)
	}
	return resolver.MXSite(strings.Split(name, ","))
}

// noteSuspension records a suspension a rule made on p, for OnSuspend;
// under s.mu.
func (s *Shaper) noteSuspension(p *path) {
	if s.cfg.OnSuspend != nil {
		s.susp = append(s.susp, RuleSuspension{Source: p.source, Site: p.site.String(),
			Until: p.suspendUntil, Reply: p.suspendReply})
	}
}

// RuleSuspensions returns the suspensions of automation rules in force,
// sorted by path.
func (s *Shaper) RuleSuspensions() []RuleSuspension {
	now := s.now()
	s.mu.Lock()
	defer s.unlock()
	var out []RuleSuspension
	for _, p := range s.paths {
		if now.Before(p.suspendUntil) && p.suspendReply.Code != 0 {
			out = append(out, RuleSuspension{Source: p.source, Site: p.site.String(), Until: p.suspendUntil, Reply: p.suspendReply})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].PathKey() < out[j].PathKey() })
	return out
}

// ApplyRuleSuspension puts in force a suspension a rule made on another
// node (nothing is told to OnSuspend). It reports false, changing nothing,
// when it has ended or the path is suspended as long already.
func (s *Shaper) ApplyRuleSuspension(rs RuleSuspension) bool {
	now := s.now()
	s.mu.Lock()
	defer s.unlock()
	if rs.Site == "" || !now.Before(rs.Until) {
		return false
	}
	p := s.get(outbound.Path{Source: rs.Source, Site: siteKeyOf(rs.Site)}, now)
	if !rs.Until.After(p.suspendUntil) {
		return false
	}
	p.suspendUntil, p.suspendReply = rs.Until, rs.Reply
	return true
}
