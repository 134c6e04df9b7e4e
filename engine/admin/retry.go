package admin

import (
	"net/http"
	"strconv"
	"strings"

	"gannet/engine/delivery"
)

// retry: POST /api/admin/retry/v1 — "retry now": the deferred mail that the
// selector or the ids name is due at once, its retry counters kept
// (engine/delivery, retry.go). Ids that are not queued (or are another
// tenant's, for a tenant's key) are refused with 404 and nothing is done.
func (h *handler) retry(w http.ResponseWriter, r *http.Request, c caller) *apiError {
	var req RetryRequest
	if err := decode(w, r, &req); err != nil {
		return err
	}
	named := delivery.Selector{Domain: req.Domain, Tenant: req.Tenant, Campaign: req.Campaign, Site: req.Site}.Normalize()
	switch {
	case len(req.IDs) > 0 && !named.IsZero():
		return fail(http.StatusUnprocessableEntity, "give ids or a selector (domain, tenant, campaign, site), not both")
	case len(req.IDs) > MaxRetryIDs:
		return fail(http.StatusUnprocessableEntity, "at most %d ids per request", MaxRetryIDs)
	case len(req.IDs) > 0:
		ids := make([]string, 0, len(req.IDs))
		seen := map[string]bool{}
		for _, id := range req.IDs {
			id = strings.TrimSpace(id)
			if id == "" {
				return fail(http.StatusUnprocessableEntity, "ids: an empty id")
			}
			if !seen[id] {
				seen[id] = true
				ids = append(ids, id)
			}
		}
		if missing := h.opts.Loop.Known(ids, c.tenant); len(missing) > 0 {
			return fail(http.StatusNotFound, "no queued message with id %s", quoteList(missing))
		}
		res, _ := h.opts.Loop.RetryNowIDs(ids, c.tenant)
		h.log.Info("admin retry", "by", c.who, "ids", ids, "retried", res.Messages, "recipients", res.Recipients)
		writeJSON(w, http.StatusOK, RetryV1Response{Retried: res.Messages, Recipients: res.Recipients})
		return nil
	case named.IsZero():
		return fail(http.StatusUnprocessableEntity, "ids, or at least one of domain, tenant, campaign or site, is required")
	}
	tenant, err := c.scope(req.Tenant)
	if err != nil {
		return err
	}
	sel := named
	sel.Tenant = tenant
	res := h.opts.Loop.RetryNow(r.Context(), sel)
	h.log.Info("admin retry", "by", c.who, "selector", sel, "retried", res.Messages, "recipients", res.Recipients)
	writeJSON(w, http.StatusOK, RetryV1Response{Retried: res.Messages, Recipients: res.Recipients})
	return nil
}

// quoteList quotes the first ids of a list for an error message.
func quoteList(ids []string) string {
	const show = 10
	var b strings.Builder
	for i, id := range ids {
		if i == show {
			b.WriteString(" and more")
			break
		}
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(strconv.Quote(id))
	}
	return b.String()
}
