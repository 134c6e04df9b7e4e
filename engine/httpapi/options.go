package httpapi

import (
	"log/slog"
	"net/http"
	"net/netip"
	"time"
)

// Services a listener can serve (config.ServiceInject, …).
const (
	ServiceInject  = "inject"
	ServiceAdmin   = "admin"
	ServiceMetrics = "metrics"
	ServiceConsole = "console"
)

// Defaults for zero Options fields.
const (
	DefaultMaxBodyBytes      = 32 << 20
	DefaultMaxMessageBytes   = 20 << 20
	DefaultMaxInjectBytes    = 256 << 20
	DefaultMaxRecipients     = 10000
	DefaultReadHeaderTimeout = 10 * time.Second
	DefaultReadTimeout       = 2 * time.Minute
	DefaultWriteTimeout      = 2 * time.Minute
	DefaultIdleTimeout       = 2 * time.Minute
	DefaultMaxHeaderBytes    = 64 << 10
)

// Options configure one HTTP listener ([[http_listener]]).
type Options struct {
	Listen       string         // "host:port"; port 0 picks a free one
	TrustedHosts []netip.Prefix // peers that need no API key
	// TrustedProxies are the proxies in front of the listener: from one of
	// them, the client is the rightmost X-Forwarded-For address outside
	// them (ForwardedClient), and that address is the request's
	// RemoteAddr for everything (TrustedHosts, OnRefusal, Intercept, the
	// inject API's Received). From any other peer X-Forwarded-For is
	// ignored.
	TrustedProxies []netip.Prefix
	// ProxyProtocol makes every connection start with a PROXY protocol
	// header (v1 or v2) from a TrustedProxies address, whose client is the
	// connection's peer; other connections are closed and reported to
	// OnProxyRefused (reason ProxyUntrusted, ProxyMalformed, ProxyTimeout).
	// A reload changes it for new connections.
	ProxyProtocol  bool
	OnProxyRefused func(reason string, peer netip.AddrPort, err error)
	// Services served on this listener: ServiceInject, ServiceAdmin,
	// ServiceMetrics. Paths of others answer 404. nil means all three.
	Services []string
	// APIKeys checks a bearer token and returns the tenant it binds ("" for
	// none). The comparison must be constant time (config.APIKey.Matches).
	APIKeys func(bearer string) (tenant string, ok bool)
	// KeyRole returns the role of a valid bearer token ("admin",
	// "viewer" or ""): a "viewer" key may only GET the admin API. Nil:
	// no key has a role.
	KeyRole  func(bearer string) string
	Injector Injector
	// Draining, when set, reports that the node takes no new mail (gannet
	// drain): inject answers 503 with Retry-After, and the liveness check
	// 503 {"status":"draining"}.
	Draining func() bool
	Metrics  http.Handler // GET /metrics; nil: 404
	// Admin serves every path under /api/admin/ (the caller is in the
	// request context: CallerFrom); nil: 404.
	Admin http.Handler
	// Console serves /console and every path under /console/ when the
	// listener lists ServiceConsole; it does its own authentication
	// (sessions), and finds the peer's address and whether it is in
	// trusted_hosts with CallerFrom. Nil: 404.
	Console http.Handler

	MaxBodyBytes int64 // request body limit (413 past it); 0: 32 MiB
	// MaxMessageBytes bounds each message a request builds (413 past it);
	// 0: 20 MiB. MaxInjectBytes bounds all that one request builds: the
	// messages of every recipient of /api/inject/v1 together (413 past
	// it, and nothing is spooled); 0: 256 MiB. Building stops as soon as
	// either would be passed (buildBudget).
	MaxMessageBytes int64
	MaxInjectBytes  int64
	MaxRecipients   int     // per request (422 past it); 0: 10000
	RatePerKey      float64 // requests per second per API key (429 past it); 0: unlimited
	RateBurst       int     // bucket size; 0: max(1, RatePerKey)

	Now      func() time.Time // Date headers and rate limiting; nil: time.Now
	Hostname string           // right side of generated Message-IDs; "": os.Hostname()
	NewID    func() string    // left side of generated Message-IDs; nil: 128 random bits
	Logger   *slog.Logger     // internal errors; nil: discarded

	// Intercept, when set, sees every request first, before the API's own
	// checks of the caller (a policy script's http_request hook): it
	// returns true when it has answered the request. It must not read the
	// request body.
	Intercept func(w http.ResponseWriter, r *http.Request) bool

	// OnRefusal, when set, is called after each request to the inject
	// endpoints answered with a 4xx or 5xx (the engine's Rejection
	// records): the peer, the method and path, the status, the error
	// text of the answer and the caller's tenant ("" when unknown).
	OnRefusal func(peer netip.Addr, method, path string, status int, msg, tenant string)

	// Suppressed, when set, is asked about each recipient of an
	// injection with the caller's tenant and the envelope sender: ok true
	// refuses that recipient (the suppression list), reply saying why; the
	// others are injected. Nil: no recipient is refused.
	Suppressed func(tenant, sender, rcpt string) (reply string, ok bool)

	ReadHeaderTimeout, ReadTimeout, WriteTimeout, IdleTimeout time.Duration // 0: defaults above
}
