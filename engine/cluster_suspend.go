package engine

import (
	"encoding/json"
	"strings"

	"gannet/engine/shaping"
)

// The suspensions of the shaping rules' automation ([[shaping_rule]]
// action "suspend", origin "rule") in a cluster: they travel with the
// admin rules (engine/cluster's Rules: one hash, one channel, the same
// reconcile), as the kind shapingSuspendKind, so that a rule that fires on
// one node suspends the site on every node. They are the shaper's, not
// the delivery loop's: clusterRuleStore sends them there. Each ends by
// itself at its Until, everywhere alike; a rule firing again makes it
// last longer, and that is shared too. Like on a node alone, they do not
// outlive a restart (a node that starts while one is in force gets it
// back from the cluster).

// shapingSuspendKind is the kind of a rule suspension among the shared
// rules: its key is "shaping-suspend/" and the path's key.
const shapingSuspendKind = "shaping-suspend"

// ruleSuspended is shaping.Config.OnSuspend: a rule suspended a path
// here.
func (e *Engine) ruleSuspended(rs shaping.RuleSuspension) {
	e.log.Warn("path suspended by a shaping rule", "source", rs.Source, "site", rs.Site,
		"until", rs.Until, "reply", rs.Reply.String())
	if e.cluster == nil {
		return
	}
	rs.Until = rs.Until.UTC()
	v, err := json.Marshal(rs)
	if err != nil {
		return
	}
	e.cluster.Rules().Put(shapingSuspendKind+"/"+rs.PathKey(), v, rs.Until)
}

// clusterRuleStore is the cluster.RuleStore of the engine: the delivery
// loop's admin rules and backoff states, and the shaper's rule
// suspensions.
type clusterRuleStore struct{ e *Engine }

func (s clusterRuleStore) SharedRules() map[string][]byte {
	out := s.e.delivery.SharedRules()
	for _, rs := range s.e.shaper.RuleSuspensions() {
		rs.Until = rs.Until.UTC()
		if v, err := json.Marshal(rs); err == nil {
			out[shapingSuspendKind+"/"+rs.PathKey()] = v
		}
	}
	return out
}

func (s clusterRuleStore) ApplySharedRule(key string, value []byte) {
	if !isRuleSuspension(key) {
		s.e.delivery.ApplySharedRule(key, value)
		return
	}
	var rs shaping.RuleSuspension
	if err := json.Unmarshal(value, &rs); err != nil {
		s.e.log.Error("cluster: ignoring a shared rule suspension that does not decode", "key", key, "err", err)
		return
	}
	if s.e.shaper.ApplyRuleSuspension(rs) {
		s.e.log.Warn("path suspended by a shaping rule on another node", "source", rs.Source, "site", rs.Site,
			"until", rs.Until, "reply", rs.Reply.String())
	}
}

func (s clusterRuleStore) DropSharedRule(key string) {
	if !isRuleSuspension(key) { // a rule suspension ends by itself
		s.e.delivery.DropSharedRule(key)
	}
}

func isRuleSuspension(key string) bool {
	return strings.HasPrefix(key, shapingSuspendKind+"/")
}
