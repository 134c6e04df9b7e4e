package admin

import (
	"net/http"
	"time"

	"gannet/engine/shaping"
)

// PathBackoff is the per-site view of backoff mode: GET lists the sites in
// backoff (?site=S: that one), DELETE ?site=S returns one to normal.
const PathBackoff = "/api/admin/backoff/v1"

// BackoffEntry is a site in backoff mode, in the queue summary (backoff)
// and at PathBackoff.
type BackoffEntry struct {
	Site string `json:"site"`
	// Origin: "rule" (a [[shaping_rule]] with action "backoff") or
	// "deferral-rate" (backoff_on_deferral_rate).
	Origin string `json:"origin"`
	// Reason: the reply the rule matched, or "deferral rate 0.42 over 5m
	// (63/150)".
	Reason string    `json:"reason"`
	Since  time.Time `json:"since"`
	// Until is when it returns to normal at the latest (absent: only after
	// ToNormalAfterDeliveries deliveries).
	Until *time.Time `json:"until,omitempty"`
	// Rate is the site's message rate per second (per egress source)
	// while in backoff; 0: its normal limits.
	Rate float64 `json:"rate"`
	// RetryAfter is the retry delay of its deferred mail ("0s": the retry
	// schedule).
	RetryAfter string `json:"retry_after"`
	// ToNormalAfterDeliveries is how many deliveries end it (0: not
	// deliveries); Delivered how many were made since the last throttling
	// reply.
	ToNormalAfterDeliveries int `json:"to_normal_after_deliveries"`
	Delivered               int `json:"delivered"`
}

// BackoffEntryOf is the entry of a backoff state.
func BackoffEntryOf(st shaping.BackoffState) BackoffEntry {
	e := BackoffEntry{Site: st.Site, Origin: st.Origin, Reason: st.Reason, Since: st.Since, Rate: st.Rate,
		RetryAfter: st.RetryAfter.String(), ToNormalAfterDeliveries: st.Deliveries, Delivered: st.Delivered}
	if !st.Until.IsZero() {
		u := st.Until
		e.Until = &u
	}
	return e
}

// BackoffResponse is the answer of GET PathBackoff.
type BackoffResponse struct {
	Sites []BackoffEntry `json:"sites"`
}

// backoffs returns the sites in backoff (none without Options.Backoffs).
func (h *handler) backoffs() []BackoffEntry {
	if h.opts.Backoffs == nil {
		return []BackoffEntry{}
	}
	out := h.opts.Backoffs()
	if out == nil {
		out = []BackoffEntry{}
	}
	return out
}

// listBackoff serves GET PathBackoff.
func (h *handler) listBackoff(w http.ResponseWriter, r *http.Request, c caller) *apiError {
	if err := operatorOnly(c, "the sites' backoff is the operator's"); err != nil {
		return err
	}
	site := r.URL.Query().Get("site")
	out := BackoffResponse{Sites: []BackoffEntry{}}
	for _, e := range h.backoffs() {
		if site == "" || e.Site == site {
			out.Sites = append(out.Sites, e)
		}
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// endBackoff serves DELETE PathBackoff?site=S: 404 when S is not in
// backoff.
func (h *handler) endBackoff(w http.ResponseWriter, r *http.Request, c caller) *apiError {
	if err := operatorOnly(c, "the sites' backoff is the operator's"); err != nil {
		return err
	}
	site := r.URL.Query().Get("site")
	if site == "" {
		return fail(http.StatusUnprocessableEntity, "name the site: ?site=SITE")
	}
	if h.opts.EndBackoff == nil || !h.opts.EndBackoff(site) {
		return fail(http.StatusNotFound, "site %q is not in backoff", site)
	}
	h.log.Info("backoff ended by an operator", "site", site, "by", c.who)
	writeJSON(w, http.StatusOK, map[string]string{"ended": site})
	return nil
}
