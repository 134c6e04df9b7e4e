package delivery

import (
	"encoding/json"
	"time"

	"gannet/engine/logrec"
	"gannet/engine/outbound"
	"gannet/engine/shaping"
)

// Backoff mode (engine/shaping) is a state of a site that the loop keeps
// as it keeps its admin rules (rulestore.go): each site in backoff is one
// stored rule of kind "backoff" under "backoff/SITE", written when the
// site enters backoff and deleted when it leaves, put back in force by
// RestoreRules at the next start, and — with Options.Shared, a cluster —
// shared with the other nodes, so that a site in backoff on one node is in
// backoff on all (ApplySharedRule, DropSharedRule). The shaper decides;
// the loop writes the BackoffStart and BackoffEnd records, keeps and
// shares, and retries the deferred mail of a site in backoff after its
// backoff_retry_after.

// SiteBackoff is the sites' backoff mode (*shaping.Shaper has it).
type SiteBackoff interface {
	// RetryAfter returns the retry delay of deferred mail on the path
	// while its site is in backoff; 0: the retry schedule.
	RetryAfter(p outbound.Path) time.Duration
	// RestoreBackoff puts a kept or shared state in force; announce tells
	// its start as a change (then BackoffChanged hears of it). False when
	// it was in force already or has ended.
	RestoreBackoff(st shaping.BackoffState, announce bool) bool
	// EndBackoff returns a site to normal, saying why; false when it was
	// not in backoff.
	EndBackoff(site, why string) bool
	// Backoffs lists the sites in backoff.
	Backoffs() []shaping.BackoffState
}

// ruleBackoff is the kind of a stored backoff state.
const ruleBackoff = "backoff"

// BackoffChanged takes a site entering or leaving backoff mode
// (shaping.Config.OnBackoff): it writes the BackoffStart or BackoffEnd
// record, and stores (or deletes) and shares the state; a later end
// (Update) is stored and shared, without a record.
func (l *Loop) BackoffChanged(ev shaping.BackoffEvent) {
	st := &ev.State
	rec := logrec.Record{Type: logrec.BackoffStart, Site: st.Site, Reason: st.Reason, Timestamp: l.clock.Now()}
	if !ev.Start {
		rec.Type, rec.Reason = logrec.BackoffEnd, ev.EndReason
	}
	if l.opts.Record != nil && !ev.Update {
		l.opts.Record.Write(&rec)
	}
	if ev.Start {
		v, err := encodeBackoff(st)
		l.storeValue(ruleBackoff, st.Site, v, st.Until, err)
	} else {
		l.unstoreRule(ruleBackoff, st.Site)
	}
}

// encodeBackoff is the stored form of a backoff state: an admin rule with
// the site as its id, its start as Created and its end as Expires.
func encodeBackoff(st *shaping.BackoffState) ([]byte, error) {
	return json.Marshal(storedRule{Kind: ruleBackoff, ID: st.Site, Origin: st.Origin, Site: st.Site,
		Reason: st.Reason, Created: st.Since, Expires: st.Until,
		Backoff: &backoffExtra{Rate: st.Rate, RetryAfter: st.RetryAfter.String(), Deliveries: st.Deliveries}})
}

// backoffExtra is what a stored backoff state holds beyond an admin rule.
type backoffExtra struct {
	Rate       float64 `json:"rate,omitempty"`        // per second
	RetryAfter string  `json:"retry_after,omitempty"` // a Go duration
	Deliveries int     `json:"deliveries,omitempty"`
}

// backoffState is the stored rule sr as a backoff state.
func backoffState(sr *storedRule) shaping.BackoffState {
	st := shaping.BackoffState{Site: sr.ID, Origin: sr.Origin, Reason: sr.Reason, Since: sr.Created, Until: sr.Expires}
	if b := sr.Backoff; b != nil {
		st.Rate, st.Deliveries = b.Rate, b.Deliveries
		st.RetryAfter, _ = time.ParseDuration(b.RetryAfter)
	}
	return st
}

// sharedBackoffs adds the sites in backoff to a SharedRules answer.
func (l *Loop) sharedBackoffs(out map[string][]byte) {
	if l.opts.Backoff == nil {
		return
	}
	for _, st := range l.opts.Backoff.Backoffs() {
		if v, err := encodeBackoff(&st); err == nil {
			out[ruleKey(ruleBackoff, st.Site)] = v
		}
	}
}

// retryAfterBackoff returns the retry delay of the path's deferred mail
// while its site is in backoff (0: the retry schedule).
func (l *Loop) retryAfterBackoff(p outbound.Path) time.Duration {
	if l.opts.Backoff == nil || p.Site.IsZero() {
		return 0
	}
	return l.opts.Backoff.RetryAfter(p)
}
