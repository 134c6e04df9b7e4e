package console

import (
	"bytes"
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"gannet/engine/admin"
	"gannet/engine/httpapi"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// MaxFormBytes bounds the body of a POST to the console.
const MaxFormBytes = 16 << 10

// DefaultSessionTTL is how long a login lasts.
const DefaultSessionTTL = 12 * time.Hour

// Path is the state of one delivery path (egress source, MX site).
type Path struct {
	Site, Source string
	Ready        int     // messages due, waiting for a connection
	InFlight     int     // taken by a worker
	Rate         float64 // messages per second allowed now; 0: unlimited
	Configured   float64 // the configured rate; 0: unlimited
	ConnLimit    int     // connections allowed now
	Connections  int     // transactions in progress
	Throttled    bool    // backed off by throttling replies, not yet recovered
	Suspended    time.Time
	Reason       string // the reply that caused the back-off or suspension
}

// Live is the relay's current state, cheap to read (no walk of the
// queue's messages): the engine's delivery loop and shaper.
type Live interface {
	Depth() Depth
	Paths() []Path
	// DomainConnections returns the transactions in progress per
	// destination domain.
	DomainConnections() map[string]int
}

// Options configure the console.
type Options struct {
	// API is the admin API's handler (engine/admin): every queue query
	// and every action goes through it. Required.
	API     http.Handler
	Live    Live     // required
	History *History // required; Run fills it
	Recent  *Recent  // required; feed it the log records
	// LogDir returns the directory of the log files ([log] path), which
	// searches and message pages read (newest first, for a few seconds)
	// when the recent records do not hold enough. Nil or "": not read.
	LogDir func() string
	// Login returns the role of a console key ([[api_key]] role);
	// ok false for no such key. It is asked again at every request of a
	// session. Nil: no one can log in (trusted hosts need not).
	Login      func(key string) (role string, ok bool)
	SessionTTL time.Duration    // 0: DefaultSessionTTL
	Now        func() time.Time // nil: time.Now
	Logger     *slog.Logger     // nil: discarded
}

// Console is the console's handler, mounted at /console.
type Console struct {
	opts     Options
	tmpl     map[string]*template.Template
	static   http.Handler
	sessions sessions
}

// New returns the console.
func New(opts Options) *Console {
	if opts.SessionTTL <= 0 {
		opts.SessionTTL = DefaultSessionTTL
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Login == nil {
		opts.Login = func(string) (string, bool) { return "", false }
	}
	c := &Console{opts: opts, tmpl: map[string]*template.Template{}}
	base := template.Must(template.New("").Funcs(funcs).ParseFS(templateFS, "templates/layout.html"))
	pages, _ := fs.Glob(templateFS, "templates/*.html")
	for _, p := range pages {
		name := strings.TrimSuffix(strings.TrimPrefix(p, "templates/"), ".html")
		if name == "layout" {
			continue
		}
		c.tmpl[name] = template.Must(template.Must(base.Clone()).ParseFS(templateFS, p))
	}
	sub, _ := fs.Sub(staticFS, "static")
	c.static = http.StripPrefix("/console/static/", http.FileServer(http.FS(sub)))
	return c
}

// Filter is a message search.
type Filter struct {
	ID, Sender, Recipient, Tenant, Campaign string
}

// securityHeaders are set on every answer.
func securityHeaders(h http.Header) {
	h.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "+
		"connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "same-origin")
}

// ServeHTTP routes /console/….
func (c *Console) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	securityHeaders(w.Header())
	path := r.URL.Path
	if path == "/console" {
		http.Redirect(w, r, "/console/", http.StatusMovedPermanently)
		return
	}
	if strings.HasPrefix(path, "/console/static/") {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			c.methodNotAllowed(w, r, http.MethodGet)
			return
		}
		w.Header().Set("Cache-Control", "max-age=300")
		c.static.ServeHTTP(w, r)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	if path == "/console/login" {
		switch r.Method {
		case http.MethodGet, http.MethodHead:
			c.loginPage(w, r)
		case http.MethodPost:
			c.login(w, r)
		default:
			c.methodNotAllowed(w, r, http.MethodGet, http.MethodPost)
		}
		return
	}
	ss := c.session(w, r)
	if ss == nil {
		if r.Method == http.MethodPost {
			c.refuse(w, r, nil, http.StatusForbidden, "Not logged in.")
			return
		}
		http.Redirect(w, r, "/console/login?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
		return
	}
	if r.Method == http.MethodPost {
		if !c.parseForm(w, r) {
			return
		}
		if !checkCSRF(r, ss) {
			c.opts.Logger.Warn("console request refused: no valid CSRF token", "path", path, "addr", r.RemoteAddr)
			c.refuse(w, r, ss, http.StatusForbidden, "This form was not sent by a page of this console (no valid CSRF token): nothing was done.")
			return
		}
		switch path {
		case "/console/logout":
			c.logout(w, r, ss)
		case "/console/action":
			c.action(w, r, ss)
		default:
			c.notFound(w, r, ss)
		}
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		c.methodNotAllowed(w, r, http.MethodGet, http.MethodPost)
		return
	}
	switch path {
	case "/console/":
		c.overview(w, r, ss)
	case "/console/destinations":
		c.destinations(w, r, ss)
	case "/console/messages":
		c.messages(w, r, ss)
	case "/console/message":
		c.message(w, r, ss)
	case "/console/tenants":
		c.tenants(w, r, ss)
	case "/console/confirm":
		c.confirm(w, r, ss)
	default:
		c.notFound(w, r, ss)
	}
}

// parseForm reads a POST's form within MaxFormBytes.
func (c *Console) parseForm(w http.ResponseWriter, r *http.Request) bool {
	r.Body = http.MaxBytesReader(w, r.Body, MaxFormBytes)
	if err := r.ParseForm(); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			c.refuse(w, r, nil, http.StatusRequestEntityTooLarge, fmt.Sprintf("The form is larger than %d bytes.", MaxFormBytes))
			return false
		}
		c.refuse(w, r, nil, http.StatusBadRequest, "The form could not be read.")
		return false
	}
	return true
}

func (c *Console) methodNotAllowed(w http.ResponseWriter, r *http.Request, allow ...string) {
	w.Header().Set("Allow", strings.Join(allow, ", "))
	c.refuse(w, r, nil, http.StatusMethodNotAllowed, "Method "+r.Method+" is not allowed here.")
}

func (c *Console) notFound(w http.ResponseWriter, r *http.Request, ss *session) {
	c.refuse(w, r, ss, http.StatusNotFound, "There is no such page in the console.")
}

// refuse answers with the error page.
func (c *Console) refuse(w http.ResponseWriter, r *http.Request, ss *session, status int, msg string) {
	c.render(w, r, status, "error", ss, map[string]any{"Status": status, "Message": msg})
}

// page is what every template gets.
type page struct {
	Title   string
	Nav     string
	Session *session
	CanAct  bool
	Data    any
	Now     time.Time
}

// render executes a page into a buffer first, so that a template error
// is a clean 500 rather than half a page.
func (c *Console) render(w http.ResponseWriter, r *http.Request, status int, name string, ss *session, data any) {
	t := c.tmpl[name]
	p := page{Title: name, Nav: name, Session: ss, CanAct: ss != nil && ss.Role == RoleAdmin, Data: data, Now: c.opts.Now()}
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, "layout", p); err != nil {
		c.opts.Logger.Error("console template", "page", name, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		w.Write(buf.Bytes())
	}
}

// apiResult is the admin API's answer to an in-process call.
type apiResult struct {
	status int
	body   bytes.Buffer
	header http.Header
}

func (a *apiResult) Header() http.Header         { return a.header }
func (a *apiResult) Write(b []byte) (int, error) { return a.body.Write(b) }
func (a *apiResult) WriteHeader(status int)      { a.status = status }

// callAPI calls the admin API in process as the session's user: method
// and path (with query), a JSON body (nil: none), the answer decoded into
// out. The error is the API's refusal.
func (c *Console) callAPI(ctx context.Context, ss *session, method, path string, body, out any) error {
	var rd *bytes.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	} else {
		rd = bytes.NewReader(nil)
	}
	req, err := http.NewRequestWithContext(ctx, method, path, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	role := ss.Role
	req = req.WithContext(httpapi.WithCaller(ctx, httpapi.Caller{Role: role, Name: ss.Who, Keyed: true}))
	res := &apiResult{status: http.StatusOK, header: http.Header{}}
	c.opts.API.ServeHTTP(res, req)
	if res.status >= 300 {
		var e admin.ErrorResponse
		if json.Unmarshal(res.body.Bytes(), &e) == nil && e.Error != "" {
			return &apiError{status: res.status, msg: e.Error}
		}
		return &apiError{status: res.status, msg: http.StatusText(res.status)}
	}
	if out != nil {
		return json.Unmarshal(res.body.Bytes(), out)
	}
	return nil
}

// apiError is a refusal of the admin API.
type apiError struct {
	status int
	msg    string
}

func (e *apiError) Error() string { return e.msg }

// statusOf returns the HTTP status of an error of callAPI (500 for
// others).
func statusOf(err error) int {
	var ae *apiError
	if errors.As(err, &ae) {
		return ae.status
	}
	return http.StatusInternalServerError
}
