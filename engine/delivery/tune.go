package delivery

import (
	"encoding/json"
	"time"

	"gannet/engine/shaping"
)

// What the shaper's self-tuning learned of a site (engine/shaping's
// tune.go) is kept with the admin rules, so that a restart starts from it
// rather than from the ceiling: one stored rule of kind "tune" under
// "tune/SITE", rewritten at each change and put back by RestoreRules. It
// expires TuneKeep after its last change, so that a site not heard from
// for that long is searched for again. With a cluster (Options.Shared) it
// is shared as the admin rules are: what one node learned is in force on
// every node (ApplySharedRule), and a node that starts takes the
// cluster's at its first reconcile. The tuned rate stays a rate of each
// node's path to the site (every node offers it): a node's tuning goes on
// from the cluster's rate, and its next change is the cluster's (last
// writer wins).

// SiteTuning takes back what a site's tuning learned (*shaping.Shaper has
// it).
type SiteTuning interface {
	RestoreTune(st shaping.TuneState) bool
	// Learned lists what the tuning sites learned, as they learned it.
	Learned() []shaping.TuneState
}

// ruleTune is the kind of a stored tuning state.
const ruleTune = "tune"

// TuneKeep is how long a learned rate is kept after its last change.
const TuneKeep = 7 * 24 * time.Hour

// tuneExtra is what a stored tuning state holds beyond an admin rule.
type tuneExtra struct {
	Rate           float64 `json:"rate"`                // per second
	Throttled      float64 `json:"throttled,omitempty"` // per second
	Conns          int     `json:"conns,omitempty"`     // the tuned connection limit
	ConnsThrottled int     `json:"conns_throttled,omitempty"`
	ConnsReason    string  `json:"conns_reason,omitempty"`
}

// TuneChanged stores what a site's tuning learned
// (shaping.Config.OnTune), and shares it with a cluster.
func (l *Loop) TuneChanged(st shaping.TuneState) {
	v, err := encodeTune(&st)
	l.storeValue(ruleTune, st.Site, v, st.Changed.Add(TuneKeep), err)
}

// encodeTune is the stored form of what a site's tuning learned.
func encodeTune(st *shaping.TuneState) ([]byte, error) {
	return json.Marshal(storedRule{Kind: ruleTune, ID: st.Site, Site: st.Site, Reason: st.Reason,
		Created: st.Changed, Expires: st.Changed.Add(TuneKeep), Tune: &tuneExtra{Rate: st.Rate, Throttled: st.Throttled,
			Conns: st.Conns, ConnsThrottled: st.ConnsThrottled, ConnsReason: st.ConnsReason}})
}

// sharedTunes adds what the tuning sites learned to a SharedRules answer.
func (l *Loop) sharedTunes(out map[string][]byte) {
	if l.opts.Tuning == nil {
		return
	}
	for _, st := range l.opts.Tuning.Learned() {
		if v, err := encodeTune(&st); err == nil {
			out[ruleKey(ruleTune, st.Site)] = v
		}
	}
}

// applyTune puts in force what another node of the cluster learned of a
// site (its stored form value), and keeps it in the spool.
func (l *Loop) applyTune(sr *storedRule, value []byte) {
	if !l.restoreTune(sr) || l.opts.Rules == nil {
		return
	}
	if err := l.opts.Rules.PutAdminState(ruleKey(ruleTune, sr.ID), value); err != nil {
		l.log.Error("delivery: storing a site's tuned limits; they are lost at the next restart", "site", sr.ID, "err", err)
	}
}

// restoreTune puts a stored tuning state back; false when there is no
// one to take it or it holds neither a rate nor a connection count.
func (l *Loop) restoreTune(sr *storedRule) bool {
	if l.opts.Tuning == nil || sr.Tune == nil {
		return false
	}
	return l.opts.Tuning.RestoreTune(shaping.TuneState{Site: sr.ID, Rate: sr.Tune.Rate, Throttled: sr.Tune.Throttled,
		Reason: sr.Reason, Conns: sr.Tune.Conns, ConnsThrottled: sr.Tune.ConnsThrottled, ConnsReason: sr.Tune.ConnsReason,
		Changed: sr.Created})
}
