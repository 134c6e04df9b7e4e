package shaping

import (
	"time"

	"gannet/engine/outbound"
	"gannet/smtpwire"
)

// The adaptive back-off shared by a cluster. Every change of a path's cut
// — a cut on a throttling reply, a step of recovery, the end of the cut, a
// policy script's ScaleDomain — is told to Config.OnCut as a CutState,
// after the Shaper's lock is released, as OnBackoff and OnTune are. A
// cluster (engine/delivery's cut.go, engine/cluster's Rules) publishes it,
// and the other nodes put it in force on their own path with ApplyCut: a
// throttle seen by one node slows the path on every node, and the fleet
// recovers together.
//
// Changes come at most once per RecoverInterval per path and node (one
// cut, or one raise, per interval), so that the cluster hears of a path
// about once a second while it is cut, and never per reply. What a node
// applies is the latest state it heard (last writer wins, by the time the
// change was made), with one exception: a raise does not undo a cut made
// here, or applied here, less than RecoverInterval ago, so that a node that
// recovers does not cancel the cut another node has just made.

// CutState is the adaptive back-off state of one path, as a cluster
// shares it.
type CutState struct {
	Path  string         `json:"path"`            // outbound.Path.Key
	Cut   bool           `json:"cut"`             // false: back to the configured limits
	Rate  float64        `json:"rate,omitempty"`  // messages per second while cut
	Ceil  float64        `json:"ceil,omitempty"`  // where recovery ends (configured or measured rate)
	Conns float64        `json:"conns,omitempty"` // connection limit while cut
	Reply smtpwire.Reply `json:"reply"`           // the throttling reply of the last cut
	At    time.Time      `json:"at"`              // when the change was made
}

// noteCut collects the cut state of p for Config.OnCut; under s.mu.
func (s *Shaper) noteCut(p *path, now time.Time) {
	p.cutAt = now
	if s.cfg.OnCut == nil {
		return
	}
	key := outbound.Path{Source: p.source, Site: p.site}.Key()
	s.cuts = append(s.cuts, CutState{Path: key, Cut: p.cut, Rate: p.rate, Ceil: p.rateCeil, Conns: p.conns,
		Reply: p.cutReply, At: now})
}

// ApplyCut puts in force on this node the cut state another node shared
// (nothing is told to OnCut). It reports whether it changed anything: a
// state older than the path's last change is not applied, nor one of a
// path this node has not delivered on (it has no state to change), nor a
// raise within RecoverInterval of the last cut here.
func (s *Shaper) ApplyCut(st CutState) bool {
	now := s.now()
	s.mu.Lock()
	defer s.unlock()
	p := s.paths[st.Path]
	if p == nil || p.tuning.Enabled || s.cfg.Backoff.Disabled || st.At.Before(p.cutAt) ||
		st.At.Equal(p.cutAt) && st.Cut == p.cut && st.Rate == p.rate { // old news, or heard already
		return false
	}
	lower := st.Cut && (!p.cut || st.Rate < p.rate)
	if !lower && p.cut && now.Sub(p.lastCut) < s.cfg.Backoff.RecoverInterval {
		return false // a raise against a fresh cut: the cut holds
	}
	if !st.Cut {
		if !p.cut {
			return false
		}
		p.cut, p.cutAt = false, st.At
		return true
	}
	p.cutAt = st.At
	if !p.cut {
		s.startCut(p, now) // the ceiling and connections of this node
	}
	if p.base.MessageRate <= 0 && st.Ceil > 0 {
		p.rateCeil = st.Ceil
	}
	p.cut, p.rate, p.cutReply = true, max(s.cfg.Backoff.MinRate, st.Rate), st.Reply
	if st.Conns > 0 && (lower && st.Conns < p.conns || !lower) {
		p.conns = st.Conns
	}
	if lower {
		p.lastCut = now
	}
	p.lastRaise = now // the fleet raises once per interval, not once per node
	return true
}

// CutFactor returns the share of its configured message rate the path's
// adaptive back-off leaves it (1: not cut, or no configured rate): what a
// cluster applies to the rate the path shares.
func (s *Shaper) CutFactor(pa outbound.Path) float64 {
	s.mu.Lock()
	defer s.unlock()
	p := s.paths[pa.Key()]
	if p == nil || !p.cut || p.base.MessageRate <= 0 || p.rate >= p.base.MessageRate {
		return 1
	}
	return p.rate / p.base.MessageRate
}
