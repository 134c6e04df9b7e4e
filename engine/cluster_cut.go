package engine

import "gannet/engine/shaping"

// The adaptive back-off shared by a cluster ([cluster]): each change of a
// path's cut on this node (engine/shaping's sharedcut.go) goes to the
// delivery loop, which publishes it with the admin rules
// (engine/delivery's cut.go); the changes of the other nodes come back
// through the loop to the shaper's ApplyCut. Where the path's
// max_message_rate is the cluster's (limit_scope "cluster"), the shared
// rate (clusterRates) is lowered by the same share as the cut.

// cutChanged returns shaping.Config.OnCut: nil without a cluster (a cut
// is then this node's alone).
func (e *Engine) cutChanged() func(shaping.CutState) {
	if e.cluster == nil {
		return nil
	}
	return func(st shaping.CutState) {
		e.log.Debug("path's adaptive back-off shared with the cluster", "path", st.Path, "cut", st.Cut, "rate", st.Rate)
		if e.delivery != nil {
			e.delivery.CutChanged(st)
		}
	}
}
