package delivery

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"gannet/engine/shaping"
)

// Admin rules that outlive a restart. Every suspension, every bounce with
// a duration and every hold is written to Options.Rules when it is made
// (before the caller is answered) and deleted when it ends (resumed,
// cancelled, released, expired); RestoreRules, called by the engine before
// the queue loads, puts back in force those that have not expired, with
// their ids, origins, creation and expiry times. A suspension restored
// holds the loaded mail as it comes due; a bounce restored bounces it as
// it comes due (its sweep ran before the restart; its counts start again
// from zero).
//
// Each rule is one value, JSON, under the key "<kind>/<id>".

// Origins of an admin rule (AdminRule.Origin).
const (
	OriginAPI    = "api"    // the admin API or CLI
	OriginPolicy = "policy" // a policy script (kumo.suspend, kumo.bounce)
	OriginRule   = "rule"   // a shaping rule's automation ([[shaping.rule]]); not a loop rule, listed by the engine
)

// Kinds of stored rules.
const (
	ruleSuspend = "suspend"
	ruleBounce  = "bounce"
	ruleHold    = "hold"
	ruleWarmup  = "warmup" // not a rule: a start date kept by engine/warmup
)

// storedRule is the durable form of one rule.
type storedRule struct {
	Kind     string    `json:"kind"`
	ID       string    `json:"id"`
	Origin   string    `json:"origin,omitempty"`
	Domain   string    `json:"domain,omitempty"`
	Tenant   string    `json:"tenant,omitempty"`
	Campaign string    `json:"campaign,omitempty"`
	Site     string    `json:"site,omitempty"`
	Reason   string    `json:"reason,omitempty"`
	Created  time.Time `json:"created"`
	Expires  time.Time `json:"expires,omitzero"`
	IDs      []string  `json:"ids,omitempty"`    // holds by message id
	Target   string    `json:"target,omitempty"` // xfer rules (xfer.go)
	// Backoff is what a backoff state (kind "backoff", backoff.go) holds
	// beyond the fields above.
	Backoff *backoffExtra `json:"backoff,omitempty"`
	// Tune is what a tuning state (kind "tune", tune.go) holds.
	Tune *tuneExtra `json:"tune,omitempty"`
	// Cut is what a shared cut state (kind "cut", cut.go) holds.
	Cut *shaping.CutState `json:"cut,omitempty"`
	// Rate is what a tenant rate (kind "rate", scriptrate.go) holds.
	Rate *rateExtra `json:"rate,omitempty"`
}

func ruleKey(kind, id string) string { return kind + "/" + id }

// decodeRule decodes the stored form of the rule under key.
func decodeRule(key string, v []byte) (storedRule, error) {
	var sr storedRule
	if err := json.Unmarshal(v, &sr); err != nil {
		return sr, err
	}
	if sr.ID == "" || ruleKey(sr.Kind, sr.ID) != key {
		return sr, fmt.Errorf("a rule %q under the key %q", ruleKey(sr.Kind, sr.ID), key)
	}
	return sr, nil
}

// encodeRule is the stored form of a rule.
func encodeRule(kind string, r *AdminRule) ([]byte, error) {
	return json.Marshal(storedRule{Kind: kind, ID: r.ID, Origin: r.Origin, Domain: r.Selector.Domain,
		Tenant: r.Selector.Tenant, Campaign: r.Selector.Campaign, Site: r.Selector.Site, Reason: r.Reason,
		Created: r.Created, Expires: r.Expires, IDs: r.IDs, Target: r.Target})
}

// storeRule writes a rule and shares it (Options.Shared); a failure to
// write is logged (the rule is in force in memory, and is lost at the
// next restart).
func (l *Loop) storeRule(kind string, r *AdminRule) {
	if l.opts.Rules == nil && l.opts.Shared == nil {
		return
	}
	v, err := encodeRule(kind, r)
	l.storeValue(kind, r.ID, v, r.Expires, err)
}

// storeValue writes the stored form v of a rule (encoded with error err)
// and shares it.
func (l *Loop) storeValue(kind, id string, v []byte, expires time.Time, err error) {
	if l.opts.Rules == nil && l.opts.Shared == nil {
		return
	}
	key := ruleKey(kind, id)
	if err == nil && l.opts.Shared != nil {
		l.opts.Shared.Put(key, v, expires)
	}
	if err == nil && l.opts.Rules != nil {
		err = l.opts.Rules.PutAdminState(key, v)
	}
	if err != nil {
		l.log.Error("delivery: storing an admin rule; it is in force until the next restart only",
			"kind", kind, "id", id, "err", err)
	}
}

// unstoreRule deletes a rule that ended, and shares its end.
func (l *Loop) unstoreRule(kind, id string) {
	if l.opts.Shared != nil {
		l.opts.Shared.Delete(ruleKey(kind, id))
	}
	if l.opts.Rules == nil {
		return
	}
	if err := l.opts.Rules.DeleteAdminState(ruleKey(kind, id)); err != nil {
		l.log.Error("delivery: deleting an ended admin rule", "kind", kind, "id", id, "err", err)
	}
}

// RestoreRules puts the stored rules that have not expired back in force
// and deletes the others; call it once, before Load and Start. It returns
// how many it restored. A value that does not decode is logged and
// deleted.
func (l *Loop) RestoreRules() (int, error) {
	if l.opts.Rules == nil {
		return 0, nil
	}
	now := l.clock.Now()
	var rules []storedRule
	var drop []string
	err := l.opts.Rules.AdminStates(func(key string, v []byte) error {
		sr, err := decodeRule(key, v)
		if err != nil {
			l.log.Error("delivery: dropping a stored admin rule that does not decode", "key", key, "err", err)
			drop = append(drop, key)
			return nil
		}
		rules = append(rules, sr)
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("delivery: reading the stored admin rules: %w", err)
	}
	n := 0
	for _, sr := range rules {
		switch {
		case !sr.Expires.IsZero() && !sr.Expires.After(now):
			drop = append(drop, ruleKey(sr.Kind, sr.ID))
		case sr.Kind == ruleWarmup:
			// an egress source's warm-up start date: the engine's (engine/warmup)
		case sr.Kind == ruleBackoff:
			if l.opts.Backoff == nil || !l.opts.Backoff.RestoreBackoff(backoffState(&sr), false) {
				drop = append(drop, ruleKey(sr.Kind, sr.ID))
			} else {
				n++
			}
		case sr.Kind == ruleRate:
			if l.putRate(&sr) {
				n++
			} else {
				drop = append(drop, ruleKey(sr.Kind, sr.ID))
			}
		case sr.Kind == ruleTune:
			if l.restoreTune(&sr) {
				n++
			} else {
				drop = append(drop, ruleKey(sr.Kind, sr.ID))
			}
		case l.putInForce(&sr, now) == nil:
			l.log.Error("delivery: dropping a stored admin rule of unknown kind", "kind", sr.Kind, "id", sr.ID)
			drop = append(drop, ruleKey(sr.Kind, sr.ID))
		default:
			n++
		}
	}
	var errs []error
	for _, k := range drop {
		if err := l.opts.Rules.DeleteAdminState(k); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		l.log.Error("delivery: deleting expired admin rules", "err", errors.Join(errs...))
	}
	return n, nil
}

// putInForce puts a stored rule in force (a bounce with a duration, a
// suspension, a hold) and returns it; nil for any other.
func (l *Loop) putInForce(sr *storedRule, now time.Time) *adminRule {
	r := &adminRule{AdminRule: AdminRule{ID: sr.ID, Origin: sr.Origin, Reason: sr.Reason,
		Created: sr.Created, Expires: sr.Expires, IDs: sr.IDs, Target: sr.Target,
		Selector: Selector{Domain: sr.Domain, Tenant: sr.Tenant, Campaign: sr.Campaign, Site: sr.Site}}}
	l.admin.mu.Lock()
	defer l.admin.mu.Unlock()
	switch {
	case sr.Kind == ruleSuspend:
		l.addSuspendLocked(r, now)
	case sr.Kind == ruleHold:
		l.addHoldLocked(r)
	case sr.Kind == ruleBounce && !sr.Expires.IsZero():
		l.addBounceLocked(r)
	case sr.Kind == ruleXfer && sr.Target != "":
		l.addXferLocked(r)
	default:
		return nil
	}
	return r
}

// SharedRules returns the rules in force here that a cluster shares
// (RuleSharer), by key, in their stored form.
func (l *Loop) SharedRules() map[string][]byte {
	now := l.clock.Now()
	l.admin.mu.Lock()
	defer l.admin.mu.Unlock()
	out := make(map[string][]byte, len(l.admin.suspends)+len(l.admin.bounces)+len(l.admin.holds))
	add := func(kind string, rules map[string]*adminRule) {
		for id, r := range rules {
			if kind == ruleBounce && !r.Expires.After(now) {
				continue
			}
			if v, err := encodeRule(kind, &r.AdminRule); err == nil {
				out[ruleKey(kind, id)] = v
			}
		}
	}
	add(ruleSuspend, l.admin.suspends)
	add(ruleBounce, l.admin.bounces)
	add(ruleHold, l.admin.holds)
	l.sharedBackoffs(out)
	l.sharedTunes(out)
	l.sharedRates(out)
	return out
}

// ApplySharedRule puts in force here a rule another node of the cluster
// made (its key and stored form, as Options.Shared was given them there),
// and stores it; a rule already in force is left as it is, but for the
// message ids of a hold, which are updated. A bounce sweeps this node's
// queue as it does where it was made.
func (l *Loop) ApplySharedRule(key string, value []byte) {
	sr, err := decodeRule(key, value)
	if err != nil {
		l.log.Error("delivery: ignoring a shared admin rule that does not decode", "key", key, "err", err)
		return
	}
	if sr.Kind == ruleXfer {
		return // a node's own (xfer.go): never the cluster's
	}
	now := l.clock.Now()
	if !sr.Expires.IsZero() && !sr.Expires.After(now) {
		return
	}
	switch sr.Kind {
	case ruleCut:
		l.applyCut(&sr)
		return
	case ruleTune:
		l.applyTune(&sr, value)
		return
	case ruleRate:
		l.applyRate(&sr, value)
		return
	}
	if sr.Kind == ruleBackoff {
		// In force here: its start is recorded, stored (and not shared
		// again) through BackoffChanged.
		if l.opts.Backoff != nil {
			l.opts.Backoff.RestoreBackoff(backoffState(&sr), true)
		}
		return
	}
	l.admin.mu.Lock()
	var have *adminRule
	switch sr.Kind {
	case ruleSuspend:
		have = l.admin.suspends[sr.ID]
	case ruleBounce:
		have = l.admin.bounces[sr.ID]
	case ruleHold:
		have = l.admin.holds[sr.ID]
	}
	changed := have != nil && sr.Kind == ruleHold && !slices.Equal(have.IDs, sr.IDs)
	var upd AdminRule
	if changed {
		have.IDs = sr.IDs
		upd = have.AdminRule
	}
	l.admin.mu.Unlock()
	if changed {
		l.storeRule(ruleHold, &upd)
	}
	if have != nil {
		return
	}
	r := l.putInForce(&sr, now)
	if r == nil {
		l.log.Error("delivery: ignoring a shared admin rule of unknown kind", "kind", sr.Kind, "id", sr.ID)
		return
	}
	l.storeRule(sr.Kind, &r.AdminRule)
	if sr.Kind == ruleBounce {
		go func() {
			l.waitLoaded()
			l.sweep(l.runCtx, r, now)
			l.admin.mu.Lock()
			l.pruneHeldLocked()
			l.admin.mu.Unlock()
		}()
	}
}

// DropSharedRule ends here a rule that ended on another node of the
// cluster; an unknown key is no error.
func (l *Loop) DropSharedRule(key string) {
	kind, id, _ := strings.Cut(key, "/")
	switch kind {
	case ruleSuspend:
		l.Resume(id)
	case ruleBounce:
		l.CancelBounce(id)
	case ruleHold:
		l.Release(id)
	case ruleBackoff:
		if l.opts.Backoff != nil {
			l.opts.Backoff.EndBackoff(id, "ended on another node")
		}
	}
}

// validOrigin returns origin, or OriginAPI when empty.
func validOrigin(origin string) string {
	if origin = strings.TrimSpace(origin); origin == "" {
		return OriginAPI
	}
	return origin
}
