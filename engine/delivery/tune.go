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
// is this node's own (not shared with a cluster: each node tunes its own
// share of a site) and expires TuneKeep after its last change, so that a
// site not heard from for that long is searched for again.

// SiteTuning takes back what a site's tuning learned (*shaping.Shaper has
// it).
type SiteTuning interface {
	RestoreTune(st shaping.TuneState) bool
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
// (shaping.Config.OnTune).
func (l *Loop) TuneChanged(st shaping.TuneState) {
	if l.opts.Rules == nil {
		return
	}
	v, err := json.Marshal(storedRule{Kind: ruleTune, ID: st.Site, Site: st.Site, Reason: st.Reason,
		Created: st.Changed, Expires: st.Changed.Add(TuneKeep), Tune: &tuneExtra{Rate: st.Rate, Throttled: st.Throttled,
			Conns: st.Conns, ConnsThrottled: st.ConnsThrottled, ConnsReason: st.ConnsReason}})
	if err == nil {
		err = l.opts.Rules.PutAdminState(ruleKey(ruleTune, st.Site), v)
	}
	if err != nil {
		l.log.Error("delivery: storing a site's tuned limits; they are lost at the next restart", "site", st.Site, "err", err)
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
