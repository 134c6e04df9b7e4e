package admin

import (
	"net/http"
	"strings"

	"gannet/engine/delivery"
)

// hold: POST /api/admin/hold/v1 — mail the selector or the ids name is not
// delivered until released (engine/delivery, hold.go). Ids not queued (or
// another tenant's) are refused with 404.
func (h *handler) hold(w http.ResponseWriter, r *http.Request, c caller) *apiError {
	var req HoldRequest
	if err := decode(w, r, &req); err != nil {
		return err
	}
	named := delivery.Selector{Domain: req.Domain, Tenant: req.Tenant, Campaign: req.Campaign, Site: req.Site}.Normalize()
	var ids []string
	switch {
	case len(req.IDs) > 0 && !named.IsZero():
		return fail(http.StatusUnprocessableEntity, "give ids or a selector (domain, tenant, campaign, site), not both")
	case len(req.IDs) > MaxRetryIDs:
		return fail(http.StatusUnprocessableEntity, "at most %d ids per request", MaxRetryIDs)
	case len(req.IDs) > 0:
		var err *apiError
		if ids, err = cleanIDs(req.IDs); err != nil {
			return err
		}
		if missing := h.opts.Loop.Known(ids, c.tenant); len(missing) > 0 {
			return fail(http.StatusNotFound, "no queued message with id %s", quoteList(missing))
		}
	case named.IsZero():
		return fail(http.StatusUnprocessableEntity, "ids, or at least one of domain, tenant, campaign or site, is required")
	}
	tenant, err := c.scope(req.Tenant)
	if err != nil {
		return err
	}
	sel := named
	sel.Tenant = tenant
	rule := h.opts.Loop.Hold(h.opts.NewID(), delivery.OriginAPI, sel, ids, req.Reason)
	h.log.Info("admin hold", "by", c.who, "id", rule.ID, "selector", sel, "ids", ids, "reason", req.Reason)
	writeJSON(w, http.StatusOK, HoldV1Response{ID: rule.ID})
	return nil
}

// cleanIDs trims ids, refuses an empty one, and drops repeats.
func cleanIDs(in []string) ([]string, *apiError) {
	out := make([]string, 0, len(in))
	seen := map[string]bool{}
	for _, id := range in {
		id = strings.TrimSpace(id)
		if id == "" {
			return nil, fail(http.StatusUnprocessableEntity, "ids: an empty id")
		}
		if !seen[id] {
			seen[id] = true
			out = append(out, id)
		}
	}
	return out, nil
}

// listHolds: GET /api/admin/hold/v1.
func (h *handler) listHolds(w http.ResponseWriter, r *http.Request, c caller) *apiError {
	writeJSON(w, http.StatusOK, h.entries(h.opts.Loop.Holds(), c))
	return nil
}

// release: DELETE /api/admin/hold/v1 with {id}, {ids} (holds' ids or held
// messages' ids) or a selector (every hold made with exactly it). Anything
// named that is not held is refused with 404 before anything is released.
func (h *handler) release(w http.ResponseWriter, r *http.Request, c caller) *apiError {
	var req ReleaseRequest
	if err := decode(w, r, &req); err != nil {
		return err
	}
	named := delivery.Selector{Domain: req.Domain, Tenant: req.Tenant, Campaign: req.Campaign, Site: req.Site}.Normalize()
	if req.ID != "" {
		req.IDs = append(req.IDs, req.ID)
	}
	holds := []delivery.AdminRule{}
	for _, hr := range h.opts.Loop.Holds() {
		if c.tenant == "" || hr.Selector.Tenant == c.tenant {
			holds = append(holds, hr)
		}
	}
	var ruleIDs, msgIDs []string
	switch {
	case len(req.IDs) > 0 && !named.IsZero():
		return fail(http.StatusUnprocessableEntity, "give id(s) or a selector, not both")
	case len(req.IDs) > MaxRetryIDs:
		return fail(http.StatusUnprocessableEntity, "at most %d ids per request", MaxRetryIDs)
	case len(req.IDs) > 0:
		ids, err := cleanIDs(req.IDs)
		if err != nil {
			return err
		}
		isRule, isMsg := map[string]bool{}, map[string]bool{}
		for _, hr := range holds {
			isRule[hr.ID] = true
			for _, m := range hr.IDs {
				isMsg[m] = true
			}
		}
		var missing []string
		for _, id := range ids {
			switch {
			case isRule[id]:
				ruleIDs = append(ruleIDs, id)
			case isMsg[id]:
				msgIDs = append(msgIDs, id)
			default:
				missing = append(missing, id)
			}
		}
		if len(missing) > 0 {
			return fail(http.StatusNotFound, "no hold with id, and no message held by id, %s", quoteList(missing))
		}
	case named.IsZero():
		return fail(http.StatusUnprocessableEntity, "id, ids, or at least one of domain, tenant, campaign or site, is required")
	default:
		tenant, err := c.scope(req.Tenant)
		if err != nil {
			return err
		}
		want := named
		want.Tenant = tenant
		for _, hr := range holds {
			if len(hr.IDs) == 0 && hr.Selector == want {
				ruleIDs = append(ruleIDs, hr.ID)
			}
		}
		if len(ruleIDs) == 0 {
			return fail(http.StatusNotFound, "no hold with that selector is in force")
		}
	}
	released := []string{}
	for _, id := range ruleIDs {
		if _, ok := h.opts.Loop.Release(id); ok {
			released = append(released, id)
		}
	}
	if len(msgIDs) > 0 {
		released = append(released, h.opts.Loop.ReleaseMessages(msgIDs, c.tenant)...)
	}
	h.log.Info("admin release", "by", c.who, "released", released)
	writeJSON(w, http.StatusOK, ReleaseV1Response{Released: released})
	return nil
}
