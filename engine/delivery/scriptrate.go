package delivery

import (
	"encoding/json"
	"sync"
	"time"
)

// A tenant's message rate set by a policy script (kumo.limit_sending)
// replaces its [[tenant]] max_message_rate. It is kept with the admin
// rules, one rule of kind "rate" under "rate/TENANT", so that a restart
// keeps it, and with a cluster (Options.Shared) it is shared as they are:
// a rate set on one node is the tenant's rate on every node. The script
// calls it often (at every session, typically): a value the same as the
// one in force is written again only once RateRefresh has passed, and a
// rate no script has set for RateKeep is dropped (the [[tenant]] rate is
// back). Nodes whose scripts set different rates for a tenant take the
// last one set anywhere.

// ruleRate is the kind of a stored tenant rate.
const ruleRate = "rate"

// RateKeep is how long a tenant rate a script set is kept after it was
// last set; RateRefresh how often the same rate is written again.
const (
	RateKeep    = 7 * 24 * time.Hour
	RateRefresh = time.Hour
)

// rateExtra is what a stored tenant rate holds beyond an admin rule.
type rateExtra struct {
	PerSecond float64 `json:"per_second"`
}

// scriptRates are the tenant rates set by policy scripts, by tenant.
type scriptRates struct {
	mu sync.Mutex
	m  map[string]scriptRate
}

type scriptRate struct {
	perSecond float64
	set       time.Time
}

// SetTenantRate sets tenant's message rate per second (a policy script's
// kumo.limit_sending), keeps it and shares it.
func (l *Loop) SetTenantRate(tenant string, perSecond float64) {
	now := l.clock.Now()
	r := &l.scriptRates
	r.mu.Lock()
	old, ok := r.m[tenant]
	if ok && old.perSecond == perSecond && now.Sub(old.set) < RateRefresh {
		r.mu.Unlock()
		return
	}
	if r.m == nil {
		r.m = map[string]scriptRate{}
	}
	r.m[tenant] = scriptRate{perSecond: perSecond, set: now}
	r.mu.Unlock()
	v, err := encodeRate(tenant, scriptRate{perSecond: perSecond, set: now})
	l.storeValue(ruleRate, tenant, v, now.Add(RateKeep), err)
}

// ScriptTenantRate returns the message rate per second a policy script
// set for tenant; false when none did.
func (l *Loop) ScriptTenantRate(tenant string) (float64, bool) {
	r := &l.scriptRates
	r.mu.Lock()
	defer r.mu.Unlock()
	sr, ok := r.m[tenant]
	if ok && l.clock.Now().Sub(sr.set) >= RateKeep {
		return 0, false
	}
	return sr.perSecond, ok
}

// encodeRate is the stored form of a tenant rate.
func encodeRate(tenant string, r scriptRate) ([]byte, error) {
	return json.Marshal(storedRule{Kind: ruleRate, ID: tenant, Tenant: tenant, Created: r.set, Expires: r.set.Add(RateKeep),
		Rate: &rateExtra{PerSecond: r.perSecond}})
}

// putRate puts a stored or shared tenant rate in force, unless one set
// later (or the same) is; false when it holds none.
func (l *Loop) putRate(sr *storedRule) bool {
	if sr.Rate == nil {
		return false
	}
	r := &l.scriptRates
	r.mu.Lock()
	defer r.mu.Unlock()
	if old, ok := r.m[sr.ID]; ok && (old.set.After(sr.Created) || old.set.Equal(sr.Created) && old.perSecond == sr.Rate.PerSecond) {
		return false
	}
	if r.m == nil {
		r.m = map[string]scriptRate{}
	}
	r.m[sr.ID] = scriptRate{perSecond: sr.Rate.PerSecond, set: sr.Created}
	return true
}

// applyRate puts in force a tenant rate set on another node of the
// cluster (its stored form value), and keeps it.
func (l *Loop) applyRate(sr *storedRule, value []byte) {
	if !l.putRate(sr) || l.opts.Rules == nil {
		return
	}
	if err := l.opts.Rules.PutAdminState(ruleKey(ruleRate, sr.ID), value); err != nil {
		l.log.Error("delivery: storing a tenant's rate; it is lost at the next restart", "tenant", sr.ID, "err", err)
	}
}

// sharedRates adds the tenant rates in force to a SharedRules answer.
func (l *Loop) sharedRates(out map[string][]byte) {
	r := &l.scriptRates
	r.mu.Lock()
	defer r.mu.Unlock()
	now := l.clock.Now()
	for tenant, sr := range r.m {
		if now.Sub(sr.set) >= RateKeep {
			continue
		}
		if v, err := encodeRate(tenant, sr); err == nil {
			out[ruleKey(ruleRate, tenant)] = v
		}
	}
}
