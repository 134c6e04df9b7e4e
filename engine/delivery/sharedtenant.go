package delivery

import "time"

// SharedTenantRate is the tenants' message rates shared by the nodes of a
// cluster (engine/cluster): [[tenant]] max_message_rate as the fleet's
// limit, besides the node's own (Options.TenantRate).
type SharedTenantRate interface {
	// TakeTenant spends one token of the tenant's shared rate: true, or
	// false and how long until one may be there. True for a tenant whose
	// rate is not shared.
	TakeTenant(tenant string) (bool, time.Duration)
}

// sharedTenantHold takes a token of the item's tenant from the rate the
// cluster shares, once per transaction (an item another limit holds
// afterwards keeps it): true when there was none, and the item went back
// to the scheduled queue until one may be there.
func (l *Loop) sharedTenantHold(it *workItem, now time.Time) bool {
	st := l.opts.SharedTenantRate
	if st == nil || it.tenantToken {
		return false
	}
	ok, d := st.TakeTenant(it.ms.env.tenant)
	if !ok {
		if l.opts.TenantRate != nil {
			it.slot = now.Add(d) // its tenant's slot on this node stays booked
		}
		l.requeue(it, now.Add(d), now)
		return true
	}
	it.tenantToken = true
	return false
}
