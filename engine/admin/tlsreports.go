package admin

import (
	"context"
	"net/http"
	"strings"
	"time"

	"gannet/engine/tlsrpt"
)

// PathTLSReports is the TLS reports endpoint (RFC 8460; engine/tlsrpt).
const PathTLSReports = "/api/admin/tls-reports/v1"

// TLSReports is what the admin API needs of TLS reporting (the engine's).
type TLSReports interface {
	// List returns every day kept, newest first.
	List() []tlsrpt.DaySummary
	// Show returns one domain's counts on day, its report's state and the
	// report as it is (or would be) sent; false when nothing was counted.
	Show(day, domain string) (TLSReportDetail, bool)
	// SendNow sends day's reports at once.
	SendNow(ctx context.Context, day string) error
}

// TLSReportList is the answer of GET /api/admin/tls-reports/v1.
type TLSReportList struct {
	Enabled bool                `json:"enabled"`
	Days    []tlsrpt.DaySummary `json:"days"`
}

// TLSReportDetail is the answer of GET /api/admin/tls-reports/v1?domain=D.
type TLSReportDetail struct {
	Day    string               `json:"day"`
	Domain string               `json:"domain"`
	Counts *tlsrpt.DomainCounts `json:"counts"`
	// Report is the state of the day's report (nil before it is made).
	Report *tlsrpt.SentReport `json:"report,omitempty"`
	// JSON is the report as built from the counts now (RFC 8460 §4).
	JSON *tlsrpt.Report `json:"json"`
}

// TLSReportSendRequest is the body of POST /api/admin/tls-reports/v1.
type TLSReportSendRequest struct {
	Day string `json:"day"` // YYYY-MM-DD (UTC); "": today
}

// tlsReportsOK refuses when there is no TLS reporting or the caller is a tenant.
func (h *handler) tlsReportsOK(c caller) *apiError {
	if h.opts.TLSReports == nil {
		return fail(http.StatusNotFound, "TLS reporting is not running (it needs MX delivery: no [delivery] relay_to)")
	}
	return operatorOnly(c, "TLS reports cover every tenant's mail")
}

// listTLSReports: GET /api/admin/tls-reports/v1[?domain=D[&day=YYYY-MM-DD]].
func (h *handler) listTLSReports(w http.ResponseWriter, r *http.Request, c caller) *apiError {
	if err := h.tlsReportsOK(c); err != nil {
		return err
	}
	q := r.URL.Query()
	domain := strings.TrimSpace(q.Get("domain"))
	day := strings.TrimSpace(q.Get("day"))
	if day == "" {
		day = tlsrpt.Day(h.opts.Now())
	}
	if _, err := time.Parse(tlsrpt.DayFormat, day); err != nil {
		return fail(http.StatusBadRequest, "day %q: want YYYY-MM-DD", day)
	}
	if domain == "" {
		on := true
		if h.opts.TLSReportsOn != nil {
			on = h.opts.TLSReportsOn()
		}
		writeJSON(w, http.StatusOK, TLSReportList{Enabled: on, Days: h.opts.TLSReports.List()})
		return nil
	}
	d, ok := h.opts.TLSReports.Show(day, domain)
	if !ok {
		return fail(http.StatusNotFound, "nothing counted for %s on %s", domain, day)
	}
	writeJSON(w, http.StatusOK, d)
	return nil
}

// sendTLSReports: POST /api/admin/tls-reports/v1 {day} — the day's reports
// are sent now; the answer is the day as List shows it.
func (h *handler) sendTLSReports(w http.ResponseWriter, r *http.Request, c caller) *apiError {
	if err := h.tlsReportsOK(c); err != nil {
		return err
	}
	var req TLSReportSendRequest
	if err := decode(w, r, &req); err != nil {
		return err
	}
	if req.Day == "" {
		req.Day = tlsrpt.Day(h.opts.Now())
	}
	if _, err := time.Parse(tlsrpt.DayFormat, req.Day); err != nil {
		return fail(http.StatusUnprocessableEntity, "day %q: want YYYY-MM-DD", req.Day)
	}
	if err := h.opts.TLSReports.SendNow(r.Context(), req.Day); err != nil {
		return fail(http.StatusUnprocessableEntity, "%v", err)
	}
	h.log.Info("TLS reports sent now", "day", req.Day, "by", c.who)
	for _, d := range h.opts.TLSReports.List() {
		if d.Day == req.Day {
			writeJSON(w, http.StatusOK, d)
			return nil
		}
	}
	writeJSON(w, http.StatusOK, tlsrpt.DaySummary{Day: req.Day})
	return nil
}
