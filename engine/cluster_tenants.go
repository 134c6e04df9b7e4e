package engine

import (
	"time"

	"gannet/engine/config"
)

// A tenant's max_message_rate in a cluster ([cluster]; limit_scope
// "cluster", the default, in [[tenant]]) is the fleet's: a
// cluster.RateLimiter per tenant (PREFIXrate:tenant:NAME), leased a batch
// of tokens at a time, so that a message costs no Redis call. Each node's
// own reservation of the rate (delivery.Options.TenantRate) applies as
// well, so that a node alone never goes past it either.

// clusterTenantRates is delivery.Options.SharedTenantRate; it rechecks
// the rate at every take (kumo.limit_sending changes it).
type clusterTenantRates sharedRates

// TakeTenant spends one token of the tenant's shared rate
// (delivery.SharedTenantRate).
func (r *clusterTenantRates) TakeTenant(tenant string) (bool, time.Duration) {
	if tenant == "" {
		return true, 0
	}
	return (*sharedRates)(r).take("tenant:"+tenant, 1, func() float64 {
		if t := r.e.conf().Tenant(tenant); t != nil && t.LimitScope == config.LimitScopeNode {
			return 0
		}
		return r.e.tenantRate(tenant)
	})
}
