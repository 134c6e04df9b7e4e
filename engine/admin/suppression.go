package admin

import (
	"errors"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"gannet/engine/suppress"
)

// The suppression list and erasure (GDPR art. 17) endpoints.
const (
	PathSuppression       = "/api/admin/suppression/v1"
	PathSuppressionImport = "/api/admin/suppression/v1/import"
	PathSuppressionExport = "/api/admin/suppression/v1/export"
	PathErase             = "/api/admin/erase/v1"
)

// Suppression is what the API needs of the suppression list
// (*suppress.List).
type Suppression interface {
	Each(f suppress.Filter, fn func(suppress.Entry) bool) error
	Get(tenant, address string) (suppress.Entry, bool, error)
	Add(tenant, address, reason, source string) error
	Remove(tenant, address string) (bool, error)
	Import(r io.Reader, tenant, source string) (suppress.ImportResult, error)
	Export(w io.Writer, f suppress.Filter) (int, error)
}

// SuppressionEntryRequest is the body of POST (add) and DELETE (remove)
// /api/admin/suppression/v1. Tenant "" is the global list (operators
// only); a tenant's API key acts on its own list.
type SuppressionEntryRequest struct {
	Tenant  string `json:"tenant"`
	Address string `json:"address"`
	Reason  string `json:"reason"` // add only
}

// SuppressionListResponse answers GET /api/admin/suppression/v1.
type SuppressionListResponse struct {
	Entries []suppress.Entry `json:"entries"`
	// Next is the cursor of the next page (the after parameter); "" at
	// the end.
	Next string `json:"next"`
}

// SuppressionAddResponse answers POST /api/admin/suppression/v1.
type SuppressionAddResponse struct {
	Entry suppress.Entry `json:"entry"`
}

// SuppressionRemoveResponse answers DELETE /api/admin/suppression/v1.
type SuppressionRemoveResponse struct {
	Removed bool `json:"removed"`
}

// EraseRequest is the body of POST /api/admin/erase/v1.
type EraseRequest struct {
	Address    string `json:"address"`
	NoSuppress bool   `json:"no_suppress"` // do not add it to the global suppression list
}

// EraseResponse answers POST /api/admin/erase/v1. It never holds the
// address itself.
type EraseResponse struct {
	AddressSHA256     string   `json:"address_sha256"`      // hex SHA-256 of the folded address
	QueuedMessages    int      `json:"queued_messages"`     // queued messages from or to it, acted on
	QueuedRecipients  int      `json:"queued_recipients"`   // their recipients removed
	DeadLetters       int      `json:"dead_letters"`        // dead letters from or to it, purged
	Suppressed        bool     `json:"suppressed"`          // added to the global suppression list
	LogFilesMentioned []string `json:"log_files_mentioned"` // retained log files (names under [log] path) that still hold it
}

// suppressionListParams are the query parameters of a list or export.
var suppressionListParams = map[string]bool{"tenant": true, "global": true, "address": true, "limit": true, "after": true}

// suppressionFilter reads which lists a list or export shows: tenant=T
// one tenant's list, global=true the global list, neither every list (an
// operator) or the caller's own (a tenant's key).
func suppressionFilter(q url.Values, c caller, export bool) (suppress.Filter, *apiError) {
	for k := range q {
		if !suppressionListParams[k] || export && (k == "limit" || k == "after") {
			return suppress.Filter{}, fail(http.StatusUnprocessableEntity, "unknown parameter %q", k)
		}
	}
	global, _ := strconv.ParseBool(q.Get("global"))
	f := suppress.Filter{Address: q.Get("address"), After: q.Get("after")}
	switch {
	case global && q.Get("tenant") != "":
		return f, fail(http.StatusUnprocessableEntity, "give tenant or global, not both")
	case global:
		if err := operatorOnly(c, "the global suppression list"); err != nil {
			return f, err
		}
	case q.Get("tenant") != "" || c.tenant != "":
		t, err := c.scope(q.Get("tenant"))
		if err != nil {
			return f, err
		}
		f.Tenant = t
	default:
		f.AllTenants = true
	}
	return f, nil
}

func (h *handler) suppression() (Suppression, *apiError) {
	if h.opts.Suppression == nil {
		return nil, fail(http.StatusNotFound, "the suppression list is not available")
	}
	return h.opts.Suppression, nil
}

// listSuppression serves GET /api/admin/suppression/v1.
func (h *handler) listSuppression(w http.ResponseWriter, r *http.Request, c caller) *apiError {
	s, aerr := h.suppression()
	if aerr != nil {
		return aerr
	}
	q := r.URL.Query()
	f, aerr := suppressionFilter(q, c, false)
	if aerr != nil {
		return aerr
	}
	limit := 100
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 10000 {
			return fail(http.StatusUnprocessableEntity, "limit %q: want 1 to 10000", v)
		}
		limit = n
	}
	out := SuppressionListResponse{Entries: []suppress.Entry{}}
	more := false
	err := s.Each(f, func(e suppress.Entry) bool {
		if len(out.Entries) == limit {
			more = true
			return false
		}
		out.Entries = append(out.Entries, e)
		return true
	})
	if errors.Is(err, suppress.ErrBadCursor) {
		return fail(http.StatusUnprocessableEntity, "after %q: %v", f.After, err)
	}
	if err != nil {
		return fail(http.StatusInternalServerError, "reading the suppression list: %v", err)
	}
	if more {
		out.Next = out.Entries[len(out.Entries)-1].Cursor()
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// entryRequest reads an add or remove request and settles its tenant.
func entryRequest(w http.ResponseWriter, r *http.Request, c caller) (SuppressionEntryRequest, *apiError) {
	var req SuppressionEntryRequest
	if err := decode(w, r, &req); err != nil {
		return req, err
	}
	if strings.TrimSpace(req.Address) == "" {
		return req, fail(http.StatusUnprocessableEntity, "address is required")
	}
	t, err := c.scope(req.Tenant)
	if err != nil {
		return req, err
	}
	req.Tenant = t
	return req, nil
}

// addSuppression serves POST /api/admin/suppression/v1.
func (h *handler) addSuppression(w http.ResponseWriter, r *http.Request, c caller) *apiError {
	s, aerr := h.suppression()
	if aerr != nil {
		return aerr
	}
	req, aerr := entryRequest(w, r, c)
	if aerr != nil {
		return aerr
	}
	if err := s.Add(req.Tenant, req.Address, req.Reason, suppress.SourceAdmin); err != nil {
		if errors.Is(err, suppress.ErrBadAddress) {
			return fail(http.StatusUnprocessableEntity, "address: %v", err)
		}
		return fail(http.StatusInternalServerError, "adding to the suppression list: %v", err)
	}
	e, _, err := s.Get(req.Tenant, req.Address)
	if err != nil {
		return fail(http.StatusInternalServerError, "reading the suppression list: %v", err)
	}
	h.log.Info("admin suppression add", "by", c.who, "tenant", req.Tenant, "address", e.Address)
	writeJSON(w, http.StatusOK, SuppressionAddResponse{Entry: e})
	return nil
}

// removeSuppression serves DELETE /api/admin/suppression/v1.
func (h *handler) removeSuppression(w http.ResponseWriter, r *http.Request, c caller) *apiError {
	s, aerr := h.suppression()
	if aerr != nil {
		return aerr
	}
	req, aerr := entryRequest(w, r, c)
	if aerr != nil {
		return aerr
	}
	ok, err := s.Remove(req.Tenant, req.Address)
	if err != nil {
		return fail(http.StatusInternalServerError, "removing from the suppression list: %v", err)
	}
	h.log.Info("admin suppression remove", "by", c.who, "tenant", req.Tenant, "address", req.Address, "removed", ok)
	writeJSON(w, http.StatusOK, SuppressionRemoveResponse{Removed: ok})
	return nil
}

// importSuppression serves POST /api/admin/suppression/v1/import: the
// body is the file (suppress: one address a line, or CSV
// address,tenant,reason), read as a stream; tenant=T puts every line on
// T's list (a tenant's key: always its own).
func (h *handler) importSuppression(w http.ResponseWriter, r *http.Request, c caller) *apiError {
	s, aerr := h.suppression()
	if aerr != nil {
		return aerr
	}
	for k := range r.URL.Query() {
		if k != "tenant" {
			return fail(http.StatusUnprocessableEntity, "unknown parameter %q", k)
		}
	}
	t, aerr := c.scope(r.URL.Query().Get("tenant"))
	if aerr != nil {
		return aerr
	}
	res, err := s.Import(r.Body, t, suppress.SourceImport)
	h.log.Info("admin suppression import", "by", c.who, "tenant", t, "lines", res.Lines, "added", res.Added, "failed", res.Failed, "err", err)
	if err != nil {
		return fail(http.StatusUnprocessableEntity, "import stopped after %d entries added: %v", res.Added, err)
	}
	writeJSON(w, http.StatusOK, res)
	return nil
}

// exportSuppression serves GET /api/admin/suppression/v1/export: the
// chosen lists as CSV (text/csv), written as they are read.
func (h *handler) exportSuppression(w http.ResponseWriter, r *http.Request, c caller) *apiError {
	s, aerr := h.suppression()
	if aerr != nil {
		return aerr
	}
	f, aerr := suppressionFilter(r.URL.Query(), c, true)
	if aerr != nil {
		return aerr
	}
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	if _, err := s.Export(w, f); err != nil {
		// The status is sent: the client sees a cut answer.
		h.log.Error("admin suppression export", "by", c.who, "err", err)
	}
	return nil
}

// erase serves POST /api/admin/erase/v1 (operators only).
func (h *handler) erase(w http.ResponseWriter, r *http.Request, c caller) *apiError {
	if err := operatorOnly(c, "erasure"); err != nil {
		return err
	}
	if h.opts.Erase == nil {
		return fail(http.StatusNotFound, "erasure is not available")
	}
	var req EraseRequest
	if err := decode(w, r, &req); err != nil {
		return err
	}
	if strings.TrimSpace(req.Address) == "" {
		return fail(http.StatusUnprocessableEntity, "address is required")
	}
	res, err := h.opts.Erase(req.Address, !req.NoSuppress, c.who)
	if err != nil {
		if errors.Is(err, suppress.ErrBadAddress) {
			return fail(http.StatusUnprocessableEntity, "address: %v", err)
		}
		return fail(http.StatusInternalServerError, "erasure (partly done: %d messages, %d dead letters): %v", res.QueuedMessages, res.DeadLetters, err)
	}
	writeJSON(w, http.StatusOK, res)
	return nil
}
