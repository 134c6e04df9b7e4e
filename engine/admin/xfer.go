package admin

import (
	"context"
	"net"
	"net/http"
	"strconv"
	"strings"

	"gannet/engine/delivery"
)

// PathXfer hands queued mail to another node (gannet xfer; engine/delivery,
// xfer.go).
const PathXfer = "/api/admin/xfer/v1"

// XferLoop is what the xfer endpoint needs of the delivery loop
// (*delivery.Loop).
type XferLoop interface {
	Xfer(ctx context.Context, id string, sel delivery.Selector, target, reason string) (delivery.AdminRule, delivery.RetryResult)
	CancelXfer(id string) (delivery.AdminRule, bool)
	Xfers() []delivery.AdminRule
}

// XferRequest is the body of POST /api/admin/xfer/v1: the other node's
// SMTP listener ("host:port") and a selector.
type XferRequest struct {
	To       string `json:"to"`
	Domain   string `json:"domain,omitempty"`
	Campaign string `json:"campaign,omitempty"`
	Tenant   string `json:"tenant,omitempty"`
	Site     string `json:"site,omitempty"`
	Reason   string `json:"reason,omitempty"`
}

// XferV1Response answers POST /api/admin/xfer/v1: the rule's id and the
// deferred mail made due at once.
type XferV1Response struct {
	ID         string `json:"id"`
	Target     string `json:"target"`
	Retried    int    `json:"retried"`    // messages
	Recipients int    `json:"recipients"` // their pending recipients made due
}

// routeXfer is the xfer endpoint's methods; nil without Options.Xfer.
func (h *handler) routeXfer() route {
	if h.opts.Xfer == nil {
		return nil
	}
	return route{http.MethodGet: h.listXfers, http.MethodPost: h.xfer, http.MethodDelete: h.cancelXfer}
}

// xfer: POST /api/admin/xfer/v1. Operators only: it sends mail to a host
// the request names.
func (h *handler) xfer(w http.ResponseWriter, r *http.Request, c caller) *apiError {
	if err := operatorOnly(c, "xfer sends mail to another host"); err != nil {
		return err
	}
	var req XferRequest
	if err := decode(w, r, &req); err != nil {
		return err
	}
	target, err := xferTarget(req.To)
	if err != nil {
		return err
	}
	if h.opts.OwnSMTP != nil {
		for _, a := range h.opts.OwnSMTP() {
			if strings.EqualFold(a, target) {
				return fail(http.StatusUnprocessableEntity, "to: %s is this node's own SMTP listener: name another node", target)
			}
		}
	}
	sel := delivery.Selector{Domain: req.Domain, Tenant: req.Tenant, Campaign: req.Campaign, Site: req.Site}.Normalize()
	if sel.IsZero() {
		return fail(http.StatusUnprocessableEntity, "at least one of domain, tenant, campaign or site is required")
	}
	rule, res := h.opts.Xfer.Xfer(r.Context(), h.opts.NewID(), sel, target, req.Reason)
	h.log.Info("admin xfer", "by", c.who, "id", rule.ID, "selector", sel, "target", target, "reason", req.Reason,
		"retried", res.Messages, "recipients", res.Recipients)
	writeJSON(w, http.StatusOK, XferV1Response{ID: rule.ID, Target: target, Retried: res.Messages, Recipients: res.Recipients})
	return nil
}

// xferTarget checks the "to" of an xfer request: host:port, a port number.
func xferTarget(to string) (string, *apiError) {
	to = strings.TrimSpace(to)
	host, port, err := net.SplitHostPort(to)
	if err != nil || host == "" {
		return "", fail(http.StatusUnprocessableEntity, "to: want the other node's SMTP listener as host:port, not %q", to)
	}
	if n, err := strconv.Atoi(port); err != nil || n <= 0 || n > 65535 {
		return "", fail(http.StatusUnprocessableEntity, "to: bad port in %q", to)
	}
	return net.JoinHostPort(strings.ToLower(host), port), nil
}

// listXfers: GET /api/admin/xfer/v1.
func (h *handler) listXfers(w http.ResponseWriter, r *http.Request, c caller) *apiError {
	if err := operatorOnly(c, "xfer rules are the operator's"); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, h.entries(h.opts.Xfer.Xfers(), c))
	return nil
}

// cancelXfer: DELETE /api/admin/xfer/v1 {id}.
func (h *handler) cancelXfer(w http.ResponseWriter, r *http.Request, c caller) *apiError {
	if err := operatorOnly(c, "xfer rules are the operator's"); err != nil {
		return err
	}
	var req CancelRequest
	if err := decode(w, r, &req); err != nil {
		return err
	}
	if req.ID == "" {
		return fail(http.StatusUnprocessableEntity, "id is required")
	}
	rule, ok := h.opts.Xfer.CancelXfer(req.ID)
	if !ok {
		return fail(http.StatusNotFound, "no xfer with id %q is in force", req.ID)
	}
	h.log.Info("admin xfer cancelled", "by", c.who, "id", rule.ID, "target", rule.Target)
	writeJSON(w, http.StatusOK, entryOf(rule, h.opts.Now()))
	return nil
}
