package delivery

import (
	"sync"
	"time"

	"gannet/engine/outbound"
)

// tenantLimits holds one GCRA limiter per tenant with a message rate
// ([[tenant]] max_message_rate). The loop books a slot for an item before
// its transaction; a slot in the future sends the item back to the
// scheduled queue until then, so one noisy tenant only delays its own
// mail and never occupies a site worker while it waits.
type tenantLimits struct {
	now func() time.Time
	mu  sync.Mutex
	m   map[string]*outbound.RateLimiter
}

func newTenantLimits(now func() time.Time) *tenantLimits {
	return &tenantLimits{now: now, m: make(map[string]*outbound.RateLimiter)}
}

// reserve books the tenant's next slot at rate (per second) and returns
// how long until it.
func (t *tenantLimits) reserve(tenant string, rate float64) time.Duration {
	t.mu.Lock()
	l := t.m[tenant]
	if l == nil {
		l = outbound.NewRateLimiter(rate, 1, t.now)
		t.m[tenant] = l
	}
	t.mu.Unlock()
	l.SetRate(rate)
	return l.Reserve()
}
