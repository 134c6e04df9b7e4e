package admin

import "net/http"

// PathReload is the configuration reload (what SIGHUP does).
const PathReload = "/api/admin/reload/v1"

// ReloadResponse answers POST /api/admin/reload/v1: what the reload
// changed. With Errors nothing was applied: the running configuration
// stays as it was (HTTP 422).
type ReloadResponse struct {
	File         string   `json:"file"`          // the configuration file re-read; "" for the embedded default
	Applied      []string `json:"applied"`       // what changed and is in force now
	NeedsRestart []string `json:"needs_restart"` // changed, but in force only after a restart
	Errors       []string `json:"errors"`        // why the file was refused (FILE:LINE: key: problem)
}

// reload serves POST /api/admin/reload/v1: re-read the configuration and
// apply it. Operators only.
func (h *handler) reload(w http.ResponseWriter, r *http.Request, c caller) *apiError {
	if err := operatorOnly(c, "reload is the operator's"); err != nil {
		return err
	}
	if h.opts.Reload == nil {
		return fail(http.StatusNotFound, "reload is not available")
	}
	res := h.opts.Reload()
	status := http.StatusOK
	if len(res.Errors) > 0 {
		status = http.StatusUnprocessableEntity
	}
	h.log.Info("reload requested", "by", c.who, "applied", len(res.Applied), "errors", len(res.Errors))
	writeJSON(w, status, res)
	return nil
}
