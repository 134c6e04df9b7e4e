package admin

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"gannet/engine/config"
	"gannet/engine/delivery"
	"gannet/engine/httpapi"
	"gannet/engine/trace"
	"gannet/queue"
)

// Loop is what the admin API needs of the delivery loop (*delivery.Loop).
type Loop interface {
	Summary(tenant string) delivery.Summary
	Inspect(ctx context.Context, id string) (delivery.MessageInfo, bool)
	Bounce(ctx context.Context, id, origin string, sel delivery.Selector, reason string, d time.Duration) delivery.AdminRule
	CancelBounce(id string) (delivery.AdminRule, bool)
	Bounces() []delivery.AdminRule
	Suspend(id, origin string, sel delivery.Selector, reason string, d time.Duration) delivery.AdminRule
	Resume(id string) (delivery.AdminRule, bool)
	Suspensions() []delivery.AdminRule
	RetryNow(ctx context.Context, sel delivery.Selector) delivery.RetryResult
	RetryNowIDs(ids []string, tenant string) (delivery.RetryResult, []string)
	Known(ids []string, tenant string) (missing []string)
	Hold(id, origin string, sel delivery.Selector, ids []string, reason string) delivery.AdminRule
	Release(id string) (delivery.AdminRule, bool)
	ReleaseMessages(ids []string, tenant string) []string
	Holds() []delivery.AdminRule
	List(ctx context.Context, f delivery.ListFilter) delivery.ListResult
	MatchIDs(ctx context.Context, f delivery.ListFilter) []string
	BounceMessages(ids []string, tenant, reason string) (delivery.ActionResult, []string)
	DeleteMessages(ids []string, tenant, reason string) (delivery.ActionResult, []string)
	Enqueue(m *queue.Message) error
}

// Bodies reads a spooled message (*queue.Spool).
type Bodies interface {
	Body(m *queue.Message) ([]byte, error)
}

// Quarantine reads the spool's record of the messages it took out because
// they are corrupt (*queue.Spool).
type Quarantine interface {
	Quarantined(id string) (queue.Corruption, bool, error)
	QuarantinedIDs(limit int) ([]string, int, error)
}

// Defaults of Options.
const (
	DefaultBounceDuration  = 5 * time.Minute
	DefaultSuspendDuration = time.Hour
	MaxRequestBytes        = 1 << 20
)

// Options configure the handler.
type Options struct {
	Loop  Loop   // required
	Spool Bodies // for want_body; nil: no bodies
	// Quarantine shows corrupt messages in inspect and the summary; nil:
	// none are shown.
	Quarantine Quarantine
	// Dead serves the dead letters (/api/admin/dead-letters/v1, state=dead
	// in the queue list); nil: there are none.
	Dead DeadLetters
	// TenantRate returns a tenant's max_message_rate per second (0:
	// unlimited), shown in the summary. Nil: none.
	TenantRate func(tenant string) float64
	// Automatic lists the suspensions that shaping rules made by
	// themselves (origin "rule"), shown with the admin ones in GET
	// /api/admin/suspend/v1. Nil: none.
	Automatic func() []RuleEntry
	// Backoffs lists the sites in backoff mode (the queue summary's
	// backoff, GET /api/admin/backoff/v1); EndBackoff returns one to
	// normal (DELETE). Nil: none, and 404.
	Backoffs   func() []BackoffEntry
	EndBackoff func(site string) bool
	// Tunes lists what the sites' self-tuning learned (the queue
	// summary's tuned and its sites' tuned_rate). Nil: none.
	Tunes func() []TuneEntry
	// Warmup lists the warm-up allowances of the warming egress sources
	// (the queue summary's warmup). Nil: none.
	Warmup func() []WarmupEntry
	// TLSReports serves /api/admin/tls-reports/v1 (nil: 404, no TLS
	// reporting); TLSReportsOn says whether [tls] tlsrpt is on.
	TLSReports   TLSReports
	TLSReportsOn func() bool
	// Trace is the hub of the live SMTP traces (GET
	// /api/admin/trace/v1/server and …/client). Nil: 404.
	Trace *trace.Hub
	// LogLevel and SetLogLevel read and change the operational log's
	// level (/api/admin/log-level/v1). Nil: 404.
	LogLevel    func() string
	SetLogLevel func(level string) (string, error)
	// Reload re-reads the configuration and applies it
	// (/api/admin/reload/v1). Nil: 404.
	Reload func() ReloadResponse
	// Draining and SetDraining read and change whether the node takes
	// new mail (/api/admin/drain/v1). Nil: 404.
	Draining    func() bool
	SetDraining func(on bool)
	Now         func() time.Time // nil: time.Now
	NewID       func() string    // rule ids; nil: random UUIDs (version 4)
	Logger      *slog.Logger     // nil: discarded

	// Suppression serves /api/admin/suppression/v1 (and …/import,
	// …/export). Nil: 404.
	Suppression Suppression
	// Erase carries out an erasure request (/api/admin/erase/v1): address
	// as given, suppress whether to add it to the global suppression
	// list, who the caller. Nil: 404.
	Erase func(address string, suppress bool, who string) (EraseResponse, error)

	// Cluster lists the cluster's nodes (/api/admin/cluster/v1). Nil:
	// the node is not clustered (the answer says so).
	Cluster Cluster
	// Events shows the event sinks (/api/admin/events/v1). Nil: none.
	Events Events

	// Xfer makes, lists and cancels the xfer rules that hand queued mail
	// to another node (/api/admin/xfer/v1). Nil: 404.
	Xfer XferLoop
	// OwnSMTP returns this node's SMTP listener addresses ("host:port"),
	// which an xfer may not name as its target (the mail would go round
	// for ever). Nil: none.
	OwnSMTP func() []string
}

// handler serves /api/admin/….
type handler struct {
	opts Options
	log  *slog.Logger
}

// New returns the admin API handler, to be mounted as httpapi.Options.Admin.
func New(opts Options) http.Handler {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.NewID == nil {
		opts.NewID = newUUID
	}
	h := &handler{opts: opts, log: opts.Logger}
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	return h
}

// newUUID returns a random (version 4) UUID, the form of KumoMTA's rule ids.
func newUUID() string {
	var b [16]byte
	rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// apiError is a refusal with its status.
type apiError struct {
	status int
	msg    string
}

func (e *apiError) Error() string { return e.msg }

func fail(status int, format string, a ...any) *apiError {
	return &apiError{status: status, msg: fmt.Sprintf(format, a...)}
}

// route is one endpoint: its methods and their functions.
type route map[string]func(w http.ResponseWriter, r *http.Request, c caller) *apiError

func (h *handler) routes(path string) route {
	switch path {
	case PathQueueSummary:
		return route{http.MethodGet: h.queueSummary}
	case PathInspectMessage:
		return route{http.MethodGet: h.inspectMessage}
	case PathBounce:
		return route{http.MethodGet: h.listBounces, http.MethodPost: h.bounce, http.MethodDelete: h.cancelBounce}
	case PathSuspend:
		return route{http.MethodGet: h.listSuspensions, http.MethodPost: h.suspend, http.MethodDelete: h.resume}
	case PathRetry:
		return route{http.MethodPost: h.retry}
	case PathHold:
		return route{http.MethodGet: h.listHolds, http.MethodPost: h.hold, http.MethodDelete: h.release}
	case PathQueue:
		return route{http.MethodGet: h.queueList}
	case PathQueueBounce:
		return route{http.MethodPost: h.queueBounce}
	case PathQueueDelete:
		return route{http.MethodPost: h.queueDelete}
	case PathDeadLetters:
		return route{http.MethodGet: h.deadLetters, http.MethodPost: h.deadRequeue, http.MethodDelete: h.deadPurge}
	case PathTLSReports:
		return route{http.MethodGet: h.listTLSReports, http.MethodPost: h.sendTLSReports}
	case PathTraceServer:
		return route{http.MethodGet: h.traceStream(trace.Server)}
	case PathTraceClient:
		return route{http.MethodGet: h.traceStream(trace.Client)}
	case PathLogLevel:
		return route{http.MethodGet: h.logLevel, http.MethodPost: h.setLogLevel}
	case PathReload:
		return route{http.MethodPost: h.reload}
	case PathDrain:
		return route{http.MethodGet: h.drainState, http.MethodPost: h.drain}
	case PathCluster:
		return route{http.MethodGet: h.clusterStatus}
	case PathSuppression:
		return route{http.MethodGet: h.listSuppression, http.MethodPost: h.addSuppression, http.MethodDelete: h.removeSuppression}
	case PathSuppressionImport:
		return route{http.MethodPost: h.importSuppression}
	case PathSuppressionExport:
		return route{http.MethodGet: h.exportSuppression}
	case PathErase:
		return route{http.MethodPost: h.erase}
	case PathBackoff:
		return route{http.MethodGet: h.listBackoff, http.MethodDelete: h.endBackoff}
	case PathEvents:
		return route{http.MethodGet: h.eventsStatus}
	case PathXfer:
		return h.routeXfer()
	}
	return nil
}

// ServeHTTP routes by path (404) and method (405 with Allow).
func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rt := h.routes(r.URL.Path)
	if rt == nil {
		writeJSON(w, http.StatusNotFound, ErrorResponse{"no such admin endpoint: " + r.URL.Path})
		return
	}
	method := r.Method
	if method == http.MethodHead {
		method = http.MethodGet
	}
	fn := rt[method]
	if fn == nil {
		var allow []string
		for _, m := range []string{http.MethodGet, http.MethodPost, http.MethodDelete} {
			if rt[m] != nil {
				allow = append(allow, m)
			}
		}
		w.Header().Set("Allow", strings.Join(allow, ", "))
		writeJSON(w, http.StatusMethodNotAllowed, ErrorResponse{"method " + r.Method + " not allowed; use " + strings.Join(allow, " or ")})
		return
	}
	c := callerOf(r)
	if c.viewer && method != http.MethodGet {
		// A viewer's key (role = "viewer") may look, never act.
		writeJSON(w, http.StatusForbidden, ErrorResponse{"a viewer key may only read (GET): " + r.Method + " " + r.URL.Path + " is refused"})
		return
	}
	if err := fn(w, r, c); err != nil {
		writeJSON(w, err.status, ErrorResponse{err.msg})
	}
}

// caller is who asks: a tenant-bound caller acts on its tenant only.
type caller struct {
	tenant string // "" for an operator of everything
	// who names the caller in the log of every action: "api key of
	// tenant T", "api key", or "trusted host ADDR" (or the name the
	// console gives its user).
	who string
	// viewer: the key's role is "viewer"; it may only GET.
	viewer bool
}

func callerOf(r *http.Request) caller {
	c, ok := httpapi.CallerFrom(r.Context())
	var out caller
	switch {
	case !ok:
		return caller{who: "unknown caller " + r.RemoteAddr}
	case c.Keyed && c.Tenant != "":
		out = caller{tenant: c.Tenant, who: "api key of tenant " + c.Tenant + " from " + c.Addr.String()}
	case c.Keyed:
		out = caller{who: "api key from " + c.Addr.String()}
	default:
		out = caller{who: "trusted host " + c.Addr.String()}
	}
	if c.Name != "" {
		out.who = c.Name
	}
	out.viewer = c.Role == config.RoleViewer
	return out
}

// owns reports whether the caller may see or act on mail of tenant.
func (c caller) owns(tenant string) bool { return c.tenant == "" || c.tenant == tenant }

// scope fills in the caller's tenant, refusing another (403).
func (c caller) scope(tenant string) (string, *apiError) {
	if c.tenant == "" {
		return tenant, nil
	}
	if tenant != "" && tenant != c.tenant {
		return "", fail(http.StatusForbidden, "tenant %q is not allowed for this API key", tenant)
	}
	return c.tenant, nil
}

// decode reads a JSON request body strictly: one object, known fields
// only, at most MaxRequestBytes.
func decode(w http.ResponseWriter, r *http.Request, v any) *apiError {
	return decodeBody(w, r, v, false)
}

// decodeOptional is decode for a request whose body may be empty (v is
// then left as it is).
func decodeOptional(w http.ResponseWriter, r *http.Request, v any) *apiError {
	return decodeBody(w, r, v, true)
}

func decodeBody(w http.ResponseWriter, r *http.Request, v any, emptyOK bool) *apiError {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxRequestBytes))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return fail(http.StatusRequestEntityTooLarge, "request body larger than %d bytes", MaxRequestBytes)
		}
		return fail(http.StatusBadRequest, "reading the request: %v", err)
	}
	if len(bytes.TrimSpace(body)) == 0 {
		if emptyOK {
			return nil
		}
		return fail(http.StatusBadRequest, "a JSON object is required")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fail(http.StatusBadRequest, "bad JSON: %v", err)
	}
	if dec.More() {
		return fail(http.StatusBadRequest, "bad JSON: more than one value")
	}
	return nil
}

// operatorOnly refuses a tenant's API key an action that is the
// operator's (it reaches past one tenant's mail): what says which.
func operatorOnly(c caller, what string) *apiError {
	if c.tenant != "" {
		return fail(http.StatusForbidden, "%s: an operator key or a trusted host is required", what)
	}
	return nil
}

// writeJSON writes v with status, as every answer of the HTTP API is written.
func writeJSON(w http.ResponseWriter, status int, v any) { httpapi.WriteJSON(w, status, v) }

// ParseDuration reads a rule duration: a Go duration ("20m", "1h30m") or
// a whole number of days ("2d").
func ParseDuration(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(days)
		if err != nil || n < 0 || n > 3650 {
			return 0, fmt.Errorf("bad duration %q", s)
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("bad duration %q: want a Go duration such as 20m or 72h, or days such as 2d", s)
	}
	return d, nil
}

// formatLeft formats the time left until t, rounded to the second.
func formatLeft(t, now time.Time) string {
	if t.IsZero() {
		return ""
	}
	return max(0, t.Sub(now)).Round(time.Second).String()
}
