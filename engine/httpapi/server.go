package httpapi

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Server is one HTTP listener of the inject, admin and metrics API.
type Server struct {
	opts    Options
	limiter *rateLimiter
	log     *slog.Logger
	handler http.Handler
	// next, when set by Replace, serves the requests that arrive from then
	// on (a reload that changed this listener's settings).
	next atomic.Pointer[Server]

	mu   sync.Mutex
	ln   net.Listener
	srv  *http.Server
	done chan struct{}
}

// New returns a server for opts; Start listens. Zero options take the
// defaults documented on Options.
func New(opts Options) *Server {
	if opts.Services == nil {
		opts.Services = []string{ServiceInject, ServiceAdmin, ServiceMetrics}
	}
	if opts.MaxBodyBytes <= 0 {
		opts.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if opts.MaxMessageBytes <= 0 {
		opts.MaxMessageBytes = DefaultMaxMessageBytes
	}
	if opts.MaxInjectBytes <= 0 {
		opts.MaxInjectBytes = DefaultMaxInjectBytes
	}
	if opts.MaxRecipients <= 0 {
		opts.MaxRecipients = DefaultMaxRecipients
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Hostname == "" {
		opts.Hostname, _ = os.Hostname()
		if opts.Hostname == "" {
			opts.Hostname = "localhost"
		}
	}
	if opts.NewID == nil {
		opts.NewID = randomID
	}
	setDefault(&opts.ReadHeaderTimeout, DefaultReadHeaderTimeout)
	setDefault(&opts.ReadTimeout, DefaultReadTimeout)
	setDefault(&opts.WriteTimeout, DefaultWriteTimeout)
	setDefault(&opts.IdleTimeout, DefaultIdleTimeout)
	s := &Server{opts: opts, log: opts.Logger}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	s.limiter = newRateLimiter(opts.RatePerKey, opts.RateBurst, opts.Now)
	s.handler = http.HandlerFunc(s.serve)
	return s
}

func setDefault(d *time.Duration, v time.Duration) {
	if *d <= 0 {
		*d = v
	}
}

// randomID returns 128 random bits in lower-case base32 (26 characters).
func randomID() string {
	var b [16]byte
	rand.Read(b[:])
	return strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b[:]))
}

// Handler returns the API as an http.Handler (what Start serves), for tests
// and for embedding in another server.
func (s *Server) Handler() http.Handler { return s.handler }

// Start listens on Options.Listen and serves in the background.
func (s *Server) Start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.srv != nil {
		return errors.New("httpapi: already started")
	}
	if s.opts.Injector == nil && slices.Contains(s.opts.Services, ServiceInject) {
		return errors.New("httpapi: the inject service needs an Injector")
	}
	ln, err := net.Listen("tcp", s.opts.Listen)
	if errors.Is(err, syscall.EADDRINUSE) {
		return fmt.Errorf("http_listener: %s is already in use (another process listens there)", s.opts.Listen)
	}
	if err != nil {
		return fmt.Errorf("http_listener %s: %w", s.opts.Listen, err)
	}
	// Always wrapped: a reload may turn ProxyProtocol on for this socket.
	ln = &proxyListener{Listener: ln, srv: s}
	s.ln = ln
	s.srv = &http.Server{
		Handler:           http.HandlerFunc(s.serveCurrent),
		ReadHeaderTimeout: s.opts.ReadHeaderTimeout,
		ReadTimeout:       s.opts.ReadTimeout,
		WriteTimeout:      s.opts.WriteTimeout,
		IdleTimeout:       s.opts.IdleTimeout,
		MaxHeaderBytes:    DefaultMaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
	s.done = make(chan struct{})
	go func(srv *http.Server, done chan struct{}) {
		defer close(done)
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("http api stopped", "listen", ln.Addr().String(), "err", err)
		}
	}(s.srv, s.done)
	return nil
}

// serveCurrent serves a request with the server's settings, or with those
// of the server that replaced them (Replace).
func (s *Server) serveCurrent(w http.ResponseWriter, r *http.Request) {
	s.current().handler.ServeHTTP(w, r)
}

// current is the server whose settings are in force: s, or the one that
// replaced it.
func (s *Server) current() *Server {
	if n := s.next.Load(); n != nil {
		return n
	}
	return s
}

// Replace serves the requests that arrive from now on with n's settings
// (n is never started: s keeps its socket and connections); requests in
// progress finish with the settings they started with. For a reload that
// changes a listener but not its address. n.Options.Listen is ignored.
func (s *Server) Replace(n *Server) {
	s.next.Store(n)
}

// Addr returns the listening address ("127.0.0.1:8000"), or "" before Start.
func (s *Server) Addr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln == nil {
		return ""
	}
	return s.ln.Addr().String()
}

// Shutdown stops accepting, lets requests in progress finish until ctx ends
// (then closes them) and waits for the serving goroutine.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	srv, done := s.srv, s.done
	s.mu.Unlock()
	if srv == nil {
		return nil
	}
	err := srv.Shutdown(ctx)
	if err != nil {
		srv.Close()
	}
	<-done
	return err
}

// DrainRetryAfter is the Retry-After (seconds) of an inject refused while
// the node drains.
const DrainRetryAfter = 30

// Paths of the API (contract.md, "HTTP").
const (
	pathMessage     = "/v1/message"
	pathInject      = "/api/inject/v1"
	pathLiveness    = "/api/check-liveness/v1"
	pathMetrics     = "/metrics"
	pathAdminPrefix = "/api/admin/"
	pathConsole     = "/console"
)

// serve routes a request: path and service (404), method (405), caller
// (401), rate (429), then the endpoint. Every answer of ours is JSON, and a
// panic becomes a 500 JSON answer rather than a dropped connection.
func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	if len(s.opts.TrustedProxies) > 0 {
		// Behind a trusted proxy the client is the one X-Forwarded-For
		// names: every check below reads r.RemoteAddr.
		if ap, err := netip.ParseAddrPort(r.RemoteAddr); err == nil {
			client := ForwardedClient(ap.Addr(), r.Header.Values("X-Forwarded-For"), s.opts.TrustedProxies)
			if client != ap.Addr().Unmap() {
				r = r.WithContext(r.Context()) // a copy: the handler's own request is left as it is
				r.RemoteAddr = netip.AddrPortFrom(client, 0).String()
			}
		}
	}
	sw := &statusWriter{ResponseWriter: w}
	if f := s.opts.OnRefusal; f != nil && (r.URL.Path == pathMessage || r.URL.Path == pathInject) {
		defer func() {
			if sw.status < 400 {
				return
			}
			c, _ := CallerFrom(r.Context()) // r carries the caller once authenticated
			peer := c.Addr
			if !peer.IsValid() {
				if ap, err := netip.ParseAddrPort(r.RemoteAddr); err == nil {
					peer = ap.Addr().Unmap()
				}
			}
			f(peer, r.Method, r.URL.Path, sw.status, sw.errMsg, c.Tenant)
		}()
	}
	defer func() {
		if v := recover(); v != nil {
			if v == http.ErrAbortHandler {
				panic(v)
			}
			s.log.Error("http api panic", "path", r.URL.Path, "panic", v)
			if !sw.wrote {
				writeError(sw, http.StatusInternalServerError, "internal error")
			}
		}
	}()
	if f := s.opts.Intercept; f != nil && f(sw, r) {
		return
	}
	path := r.URL.Path
	var service string
	var methods []string
	switch {
	case path == pathLiveness:
		if !allowMethod(sw, r, http.MethodGet, http.MethodHead) {
			return
		}
		if s.opts.Draining != nil && s.opts.Draining() {
			// 503: a load balancer's health check takes the node out of
			// rotation while it drains (contract.md, "HTTP").
			WriteJSON(sw, http.StatusServiceUnavailable, map[string]string{"status": "draining"})
			return
		}
		WriteJSON(sw, http.StatusOK, map[string]string{"status": "ok"})
		return
	case path == pathMessage || path == pathInject:
		service, methods = ServiceInject, []string{http.MethodPost}
	case path == pathMetrics:
		service, methods = ServiceMetrics, []string{http.MethodGet, http.MethodHead}
	case strings.HasPrefix(path, pathAdminPrefix):
		service = ServiceAdmin // the admin handler checks its own methods
	case path == pathConsole || strings.HasPrefix(path, pathConsole+"/"):
		// The console answers in HTML and authenticates by itself
		// (login and session cookie), so it is served before the
		// bearer-key check.
		if !slices.Contains(s.opts.Services, ServiceConsole) || s.opts.Console == nil {
			writeError(sw, http.StatusNotFound, "the console service is not enabled on this listener")
			return
		}
		s.opts.Console.ServeHTTP(sw, r.WithContext(WithCaller(r.Context(), s.peer(r))))
		return
	default:
		writeError(sw, http.StatusNotFound, "no such endpoint: "+path)
		return
	}
	if !slices.Contains(s.opts.Services, service) {
		writeError(sw, http.StatusNotFound, "the "+service+" service is not enabled on this listener")
		return
	}
	if methods != nil && !allowMethod(sw, r, methods...) {
		return
	}
	if service == ServiceInject && s.opts.Draining != nil && s.opts.Draining() {
		sw.Header().Set("Retry-After", strconv.Itoa(DrainRetryAfter))
		writeError(sw, http.StatusServiceUnavailable, "this node is draining and takes no new mail: send it to another node or retry later")
		return
	}
	caller, aerr := s.authenticate(r)
	if aerr != nil {
		sw.Header().Set("WWW-Authenticate", `Bearer realm="gannet"`)
		writeAPIError(sw, aerr)
		return
	}
	if caller.Keyed {
		if ok, wait := s.limiter.allow(caller.key); !ok {
			sw.Header().Set("Retry-After", strconv.Itoa(int(wait/time.Second)+1))
			writeError(sw, http.StatusTooManyRequests, "rate limit exceeded for this API key")
			return
		}
	}
	r = r.WithContext(WithCaller(r.Context(), caller))
	switch service {
	case ServiceMetrics:
		if s.opts.Metrics == nil {
			writeError(sw, http.StatusNotFound, "metrics are not available")
			return
		}
		s.opts.Metrics.ServeHTTP(sw, r)
	case ServiceAdmin:
		if s.opts.Admin == nil {
			writeError(sw, http.StatusNotFound, "the admin API is not available")
			return
		}
		s.opts.Admin.ServeHTTP(sw, r)
	case ServiceInject:
		if s.opts.Injector == nil {
			writeError(sw, http.StatusServiceUnavailable, "injection is not available")
			return
		}
		body, aerr := s.readBody(sw, r)
		if aerr != nil {
			writeAPIError(sw, aerr)
			return
		}
		if path == pathMessage {
			s.handleMessage(sw, r, caller, body)
		} else {
			s.handleInject(sw, r, caller, body)
		}
	}
}

// allowMethod answers 405 with Allow when r's method is not one of methods.
func allowMethod(w http.ResponseWriter, r *http.Request, methods ...string) bool {
	if slices.Contains(methods, r.Method) {
		return true
	}
	w.Header().Set("Allow", strings.Join(methods, ", "))
	writeError(w, http.StatusMethodNotAllowed, "method "+r.Method+" not allowed; use "+strings.Join(methods, " or "))
	return false
}

// drainTooLarge is how much of a refused, too large body is read and thrown
// away before the 413 is sent. A server that answers and closes while the
// client is still writing makes the kernel reset the connection, and the
// client then sees "connection reset" instead of the 413 (RFC 9110 §15.5.14
// asks for a clear answer). Bodies larger than this still get the reset; the
// server's read timeout bounds how long draining can take.
const drainTooLarge = 4 << 20

// readBody reads the whole body within MaxBodyBytes: 413 past it.
func (s *Server) readBody(w http.ResponseWriter, r *http.Request) ([]byte, *apiError) {
	limit := s.opts.MaxBodyBytes
	tooBig := fail(http.StatusRequestEntityTooLarge, "request body larger than "+strconv.FormatInt(limit, 10)+" bytes")
	if r.ContentLength > limit {
		if r.ContentLength <= limit+drainTooLarge {
			_, _ = io.CopyN(io.Discard, r.Body, r.ContentLength)
		}
		return nil, tooBig
	}
	rd := http.MaxBytesReader(w, r.Body, limit)
	var body []byte
	if r.ContentLength > 0 {
		body = make([]byte, 0, r.ContentLength+1)
	}
	for {
		if len(body) == cap(body) {
			body = append(body, 0)[:len(body)]
		}
		n, err := rd.Read(body[len(body):cap(body)])
		body = body[:len(body)+n]
		if err == io.EOF {
			return body, nil
		}
		if err != nil {
			var mbe *http.MaxBytesError
			if errors.As(err, &mbe) {
				// A body without Content-Length that ran past the limit:
				// drain a bounded rest, as above.
				_, _ = io.CopyN(io.Discard, r.Body, drainTooLarge)
				return nil, tooBig
			}
			return nil, fail(http.StatusBadRequest, "could not read the request body")
		}
	}
}

// quote is strconv.Quote, short for messages.
func quote(s string) string { return strconv.Quote(s) }
