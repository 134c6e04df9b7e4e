package delivery

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
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
	IDs      []string  `json:"ids,omitempty"` // holds by message id
}

func ruleKey(kind, id string) string { return kind + "/" + id }

// storeRule writes a rule; a failure is logged (the rule is in force in
// memory, and is lost at the next restart).
func (l *Loop) storeRule(kind string, r *AdminRule) {
	if l.opts.Rules == nil {
		return
	}
	v, err := json.Marshal(storedRule{Kind: kind, ID: r.ID, Origin: r.Origin, Domain: r.Selector.Domain,
		Tenant: r.Selector.Tenant, Campaign: r.Selector.Campaign, Site: r.Selector.Site, Reason: r.Reason,
		Created: r.Created, Expires: r.Expires, IDs: r.IDs})
	if err == nil {
		err = l.opts.Rules.PutAdminState(ruleKey(kind, r.ID), v)
	}
	if err != nil {
		l.log.Error("delivery: storing an admin rule; it is in force until the next restart only",
			"kind", kind, "id", r.ID, "err", err)
	}
}

// unstoreRule deletes a rule that ended.
func (l *Loop) unstoreRule(kind, id string) {
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
		var sr storedRule
		if err := json.Unmarshal(v, &sr); err != nil || sr.ID == "" || ruleKey(sr.Kind, sr.ID) != key {
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
		expired := !sr.Expires.IsZero() && !sr.Expires.After(now)
		r := &adminRule{AdminRule: AdminRule{ID: sr.ID, Origin: sr.Origin, Reason: sr.Reason,
			Created: sr.Created, Expires: sr.Expires, IDs: sr.IDs,
			Selector: Selector{Domain: sr.Domain, Tenant: sr.Tenant, Campaign: sr.Campaign, Site: sr.Site}}}
		switch {
		case expired:
			drop = append(drop, ruleKey(sr.Kind, sr.ID))
			continue
		case sr.Kind == ruleSuspend:
			l.admin.mu.Lock()
			l.addSuspendLocked(r, now)
			l.admin.mu.Unlock()
		case sr.Kind == ruleHold:
			l.admin.mu.Lock()
			l.addHoldLocked(r)
			l.admin.mu.Unlock()
		case sr.Kind == ruleBounce && !sr.Expires.IsZero():
			l.admin.mu.Lock()
			l.addBounceLocked(r)
			l.admin.mu.Unlock()
		default:
			l.log.Error("delivery: dropping a stored admin rule of unknown kind", "kind", sr.Kind, "id", sr.ID)
			drop = append(drop, ruleKey(sr.Kind, sr.ID))
			continue
		}
		n++
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

// validOrigin returns origin, or OriginAPI when empty.
func validOrigin(origin string) string {
	if origin = strings.TrimSpace(origin); origin == "" {
		return OriginAPI
	}
	return origin
}
