package delivery

import (
	"encoding/json"
	"time"

	"gannet/engine/shaping"
)

// The adaptive back-off of a path (engine/shaping's sharedcut.go) is
// shared with a cluster as the admin rules are (Options.Shared): each
// change of a path's cut is one rule of kind "cut" under "cut/PATH",
// written by CutChanged and put in force on the other nodes by
// ApplySharedRule (PathCuts.ApplyCut). It is not kept in the spool: a cut
// is of the moment, and a node that restarts starts from its configured
// limits, or from a cut the cluster still holds for a path once it uses
// it (the entry lasts CutKeep after the change; the reconcile of every
// heartbeat brings it).

// PathCuts puts in force the adaptive back-off of a path shared by
// another node (*shaping.Shaper has it).
type PathCuts interface {
	ApplyCut(st shaping.CutState) bool
}

// ruleCut is the kind of a shared cut state.
const ruleCut = "cut"

// CutKeep is how long the cluster keeps a path's cut state after its
// last change.
const CutKeep = time.Minute

// CutChanged shares a change of a path's adaptive back-off
// (shaping.Config.OnCut); nothing without a cluster.
func (l *Loop) CutChanged(st shaping.CutState) {
	if l.opts.Shared == nil {
		return
	}
	expires := st.At.Add(CutKeep)
	v, err := json.Marshal(storedRule{Kind: ruleCut, ID: st.Path, Created: st.At, Expires: expires, Cut: &st})
	if err == nil {
		l.opts.Shared.Put(ruleKey(ruleCut, st.Path), v, expires)
	}
}

// applyCut puts in force a cut state shared by another node.
func (l *Loop) applyCut(sr *storedRule) {
	if l.opts.Cuts != nil && sr.Cut != nil && sr.Cut.Path == sr.ID {
		l.opts.Cuts.ApplyCut(*sr.Cut)
	}
}
