package admin

import (
	"net/http"
	"time"

	"gannet/engine/delivery"
)

// ruleOf checks a bounce or suspend request and returns its selector and
// duration (def when neither duration nor expires is given).
func (h *handler) ruleOf(req *RuleRequest, c caller, def time.Duration) (delivery.Selector, time.Duration, *apiError) {
	tenant, err := c.scope(req.Tenant)
	if err != nil {
		return delivery.Selector{}, 0, err
	}
	// The request itself must name something, even for a tenant's key: an
	// empty request is a mistake more often than "all my mail".
	if (delivery.Selector{Domain: req.Domain, Tenant: req.Tenant, Campaign: req.Campaign, Site: req.Site}).Normalize().IsZero() {
		return delivery.Selector{}, 0, fail(http.StatusUnprocessableEntity, "at least one of domain, tenant, campaign or site is required")
	}
	sel := delivery.Selector{Domain: req.Domain, Tenant: tenant, Campaign: req.Campaign, Site: req.Site}.Normalize()
	d := def
	switch {
	case req.Duration != "" && req.Expires != nil:
		return sel, 0, fail(http.StatusUnprocessableEntity, "give duration or expires, not both")
	case req.Duration != "":
		var perr error
		if d, perr = ParseDuration(req.Duration); perr != nil {
			return sel, 0, fail(http.StatusUnprocessableEntity, "duration: %v", perr)
		}
	case req.Expires != nil:
		d = req.Expires.Sub(h.opts.Now())
		if d <= 0 {
			return sel, 0, fail(http.StatusUnprocessableEntity, "expires is in the past")
		}
	}
	return sel, d, nil
}

// entryOf turns a rule into its list entry.
func entryOf(r delivery.AdminRule, now time.Time) RuleEntry {
	e := RuleEntry{
		ID: r.ID, Origin: r.Origin, Domain: r.Selector.Domain, Campaign: r.Selector.Campaign, Tenant: r.Selector.Tenant,
		Site: r.Selector.Site, Reason: r.Reason, Duration: formatLeft(r.Expires, now), Created: r.Created,
		Bounced: r.Bounced, TotalBounced: r.TotalBounced, Held: r.Held, IDs: r.IDs, Target: r.Target,
	}
	if !r.Expires.IsZero() {
		t := r.Expires
		e.Expires = &t
	}
	return e
}

// bounce: POST /api/admin/bounce/v1.
func (h *handler) bounce(w http.ResponseWriter, r *http.Request, c caller) *apiError {
	var req RuleRequest
	if err := decode(w, r, &req); err != nil {
		return err
	}
	sel, d, err := h.ruleOf(&req, c, DefaultBounceDuration)
	if err != nil {
		return err
	}
	rule := h.opts.Loop.Bounce(r.Context(), h.opts.NewID(), delivery.OriginAPI, sel, req.Reason, d)
	h.log.Info("admin bounce", "by", c.who, "id", rule.ID, "selector", sel, "reason", req.Reason, "duration", d, "bounced", rule.TotalBounced)
	bounced := rule.Bounced
	if bounced == nil {
		bounced = map[string]int{}
	}
	writeJSON(w, http.StatusOK, BounceV1Response{ID: rule.ID, Bounced: bounced, TotalBounced: rule.TotalBounced})
	return nil
}

// listBounces: GET /api/admin/bounce/v1.
func (h *handler) listBounces(w http.ResponseWriter, r *http.Request, c caller) *apiError {
	writeJSON(w, http.StatusOK, h.entries(h.opts.Loop.Bounces(), c))
	return nil
}

func (h *handler) entries(rules []delivery.AdminRule, c caller) []RuleEntry {
	now := h.opts.Now()
	out := []RuleEntry{}
	for _, r := range rules {
		if c.tenant == "" || r.Selector.Tenant == c.tenant {
			out = append(out, entryOf(r, now))
		}
	}
	return out
}

// cancelBounce: DELETE /api/admin/bounce/v1 {id}.
func (h *handler) cancelBounce(w http.ResponseWriter, r *http.Request, c caller) *apiError {
	var req CancelRequest
	if err := decode(w, r, &req); err != nil {
		return err
	}
	if req.ID == "" {
		return fail(http.StatusUnprocessableEntity, "id is required")
	}
	if !h.mine(h.opts.Loop.Bounces(), req.ID, c) {
		return fail(http.StatusNotFound, "no bounce with id %q is in force", req.ID)
	}
	rule, ok := h.opts.Loop.CancelBounce(req.ID)
	if !ok {
		return fail(http.StatusNotFound, "no bounce with id %q is in force", req.ID)
	}
	h.log.Info("admin bounce cancelled", "by", c.who, "id", rule.ID)
	writeJSON(w, http.StatusOK, entryOf(rule, h.opts.Now()))
	return nil
}

// mine reports whether rule id exists and the caller may act on it.
func (h *handler) mine(rules []delivery.AdminRule, id string, c caller) bool {
	for _, r := range rules {
		if r.ID == id {
			return c.tenant == "" || r.Selector.Tenant == c.tenant
		}
	}
	return false
}

// suspend: POST /api/admin/suspend/v1.
func (h *handler) suspend(w http.ResponseWriter, r *http.Request, c caller) *apiError {
	var req RuleRequest
	if err := decode(w, r, &req); err != nil {
		return err
	}
	sel, d, err := h.ruleOf(&req, c, DefaultSuspendDuration)
	if err != nil {
		return err
	}
	rule := h.opts.Loop.Suspend(h.opts.NewID(), delivery.OriginAPI, sel, req.Reason, d)
	h.log.Info("admin suspend", "by", c.who, "id", rule.ID, "selector", sel, "reason", req.Reason, "duration", d)
	writeJSON(w, http.StatusOK, SuspendV1Response{ID: rule.ID})
	return nil
}

// listSuspensions: GET /api/admin/suspend/v1.
func (h *handler) listSuspensions(w http.ResponseWriter, r *http.Request, c caller) *apiError {
	out := h.entries(h.opts.Loop.Suspensions(), c)
	// The shaper's automatic suspensions concern sites every tenant
	// shares: the operator's to see.
	if h.opts.Automatic != nil && c.tenant == "" {
		out = append(out, h.opts.Automatic()...)
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// resume: DELETE /api/admin/suspend/v1 with {id}, or with a selector: every
// suspension whose selector is exactly that one.
func (h *handler) resume(w http.ResponseWriter, r *http.Request, c caller) *apiError {
	var req CancelRequest
	if err := decode(w, r, &req); err != nil {
		return err
	}
	all := h.opts.Loop.Suspensions()
	var ids []string
	if req.ID != "" {
		if req.Domain != "" || req.Tenant != "" || req.Campaign != "" || req.Site != "" {
			return fail(http.StatusUnprocessableEntity, "give id or a selector, not both")
		}
		if !h.mine(all, req.ID, c) {
			return fail(http.StatusNotFound, "no suspension with id %q is in force", req.ID)
		}
		ids = []string{req.ID}
	} else {
		tenant, err := c.scope(req.Tenant)
		if err != nil {
			return err
		}
		want := delivery.Selector{Domain: req.Domain, Tenant: tenant, Campaign: req.Campaign, Site: req.Site}.Normalize()
		if (delivery.Selector{Domain: req.Domain, Tenant: req.Tenant, Campaign: req.Campaign, Site: req.Site}).Normalize().IsZero() {
			return fail(http.StatusUnprocessableEntity, "id, or at least one of domain, tenant, campaign or site, is required")
		}
		for _, s := range all {
			if s.Selector == want {
				ids = append(ids, s.ID)
			}
		}
		if len(ids) == 0 {
			return fail(http.StatusNotFound, "no suspension with that selector is in force")
		}
	}
	resumed := []string{}
	for _, id := range ids {
		if _, ok := h.opts.Loop.Resume(id); ok {
			resumed = append(resumed, id)
			h.log.Info("admin resume", "by", c.who, "id", id)
		}
	}
	if len(resumed) == 0 {
		return fail(http.StatusNotFound, "no suspension with id %q is in force", req.ID)
	}
	writeJSON(w, http.StatusOK, ResumeV1Response{Resumed: resumed})
	return nil
}
