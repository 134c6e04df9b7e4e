package engine

import (
	"gannet/engine/cluster"
	"gannet/engine/suppress"
)

// The suppression list in a cluster ([cluster] redis): every entry added
// or removed on a node (a hard bounce, an asynchronous bounce or a
// complaint, `gannet suppress add|remove|import`, an erasure, an expired
// entry swept) is shared through engine/cluster's Suppressions and put in
// force on every node, in its own spool, within about a second; the RCPT
// lookup stays in memory (suppress.List), with no Redis call. A node
// joining, or whose subscription came back after Redis was away, takes
// the entries it lacks from Redis and shares those Redis lacks.

// shareSuppression makes the suppression list tell its changes to the
// cluster (without [cluster]: nothing). The exchange starts with
// startCluster.
func (e *Engine) shareSuppression() {
	if e.cluster == nil || e.suppress == nil {
		return
	}
	s := e.cluster.Suppressions()
	e.suppress.SetOnChange(func(c suppress.Change) {
		if c.Removed {
			s.Remove(c.Tenant, c.Address, e.now())
			return
		}
		s.Add(cluster.SuppressionEntry{Tenant: c.Tenant, Address: c.Address, Reason: c.Reason,
			Source: c.Source, Created: c.Created})
	})
}

// clusterSuppressions is the cluster.SuppressionStore of the engine: its
// suppression list.
type clusterSuppressions struct{ e *Engine }

func (s clusterSuppressions) EachSuppression(fn func(cluster.SuppressionEntry) bool) error {
	return s.e.suppress.Each(suppress.Filter{AllTenants: true}, func(en suppress.Entry) bool {
		return fn(cluster.SuppressionEntry{Tenant: en.Tenant, Address: en.Address, Reason: en.Reason,
			Source: en.Source, Created: en.Created.Unix()})
	})
}

func (s clusterSuppressions) ApplySuppression(en cluster.SuppressionEntry) {
	var err error
	if en.Removed != 0 {
		err = s.e.suppress.ApplyRemove(en.Tenant, en.Address, en.Removed)
	} else {
		err = s.e.suppress.ApplyAdd(suppress.Change{Tenant: en.Tenant, Address: en.Address, Reason: en.Reason,
			Source: en.Source, Created: en.Created})
	}
	if err != nil {
		s.e.log.Error("suppression list: applying a change made on another node", "tenant", en.Tenant, "err", err)
	}
}
