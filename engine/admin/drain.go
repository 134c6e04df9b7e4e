package admin

import (
	"net/http"
)

// PathDrain is where a node is drained (for rolling restarts).
const PathDrain = "/api/admin/drain/v1"

// DrainRequest is the body of POST /api/admin/drain/v1; an empty body
// drains.
type DrainRequest struct {
	Off bool `json:"off"` // take mail again
}

// DrainResponse answers GET and POST /api/admin/drain/v1.
type DrainResponse struct {
	Draining bool `json:"draining"`
}

// drainState serves GET /api/admin/drain/v1.
func (h *handler) drainState(w http.ResponseWriter, r *http.Request, c caller) *apiError {
	if h.opts.Draining == nil {
		return fail(http.StatusNotFound, "draining is not available")
	}
	writeJSON(w, http.StatusOK, DrainResponse{Draining: h.opts.Draining()})
	return nil
}

// drain serves POST /api/admin/drain/v1: the node stops taking new mail
// (SMTP 421 4.3.2, HTTP inject 503) and goes on delivering what it holds;
// {"off": true} takes mail again.
func (h *handler) drain(w http.ResponseWriter, r *http.Request, c caller) *apiError {
	if err := operatorOnly(c, "draining is the operator's"); err != nil {
		return err
	}
	if h.opts.SetDraining == nil {
		return fail(http.StatusNotFound, "draining is not available")
	}
	var req DrainRequest // an empty body: start draining
	if err := decodeOptional(w, r, &req); err != nil {
		return err
	}
	h.opts.SetDraining(!req.Off)
	if req.Off {
		h.log.Info("drain ended: taking mail again", "by", c.who)
	} else {
		h.log.Info("draining: new mail refused, queued mail still delivered", "by", c.who)
	}
	writeJSON(w, http.StatusOK, DrainResponse{Draining: h.opts.Draining()})
	return nil
}
