package httpapi

import (
	"context"
	"net/http"
	"net/netip"
	"strings"
)

// Caller is who made a request, as the auth step established it.
type Caller struct {
	Addr    netip.Addr // peer address (4-in-6 unmapped)
	Trusted bool       // Addr is in trusted_hosts
	Keyed   bool       // a valid API key was given
	Tenant  string     // the key's tenant ("" for none or no key)
	Role    string     // the key's role ("admin", "viewer" or ""); a viewer may only read
	// Name, when set, is who the caller is in the log of admin actions
	// (the console names its logged-in user); "" lets the admin API say.
	Name string
	key  string // the bearer token, for the rate limiter
}

type callerKey struct{}

// CallerFrom returns the Caller of an authenticated request (for the Admin
// handler).
func CallerFrom(ctx context.Context) (Caller, bool) {
	c, ok := ctx.Value(callerKey{}).(Caller)
	return c, ok
}

// WithCaller returns ctx carrying c, as an authenticated request's
// context does: for a handler (the console) that calls the Admin handler
// in process on behalf of a caller it authenticated itself.
func WithCaller(ctx context.Context, c Caller) context.Context {
	return context.WithValue(ctx, callerKey{}, c)
}

// peer returns the caller of r as far as its address tells: the address
// and whether it is in trusted_hosts.
func (s *Server) peer(r *http.Request) Caller {
	var c Caller
	if ap, err := netip.ParseAddrPort(r.RemoteAddr); err == nil {
		c.Addr = ap.Addr().Unmap()
	}
	for _, p := range s.opts.TrustedHosts {
		if c.Addr.IsValid() && p.Contains(c.Addr) {
			c.Trusted = true
			break
		}
	}
	return c
}

// authenticate applies the contract's rule: peers in trusted_hosts need no
// key; others need "Authorization: Bearer <key>" matching an [[api_key]].
// A key that is given is always checked, even from a trusted host, so that
// it binds its tenant. There is no X-Forwarded-For: the TCP peer counts.
func (s *Server) authenticate(r *http.Request) (Caller, *apiError) {
	c := s.peer(r)
	auth := r.Header.Get("Authorization")
	if auth == "" {
		if c.Trusted {
			return c, nil
		}
		return c, fail(http.StatusUnauthorized, "authorization required: Authorization: Bearer <api key>")
	}
	scheme, token, ok := strings.Cut(auth, " ")
	token = strings.TrimSpace(token)
	if !ok || !strings.EqualFold(scheme, "Bearer") || token == "" {
		return c, fail(http.StatusUnauthorized, "unsupported authorization: want Bearer <api key>")
	}
	if s.opts.APIKeys == nil {
		return c, fail(http.StatusUnauthorized, "invalid API key")
	}
	tenant, ok := s.opts.APIKeys(token)
	if !ok {
		return c, fail(http.StatusUnauthorized, "invalid API key")
	}
	c.Keyed, c.Tenant, c.key = true, tenant, token
	if s.opts.KeyRole != nil {
		c.Role = s.opts.KeyRole(token)
	}
	return c, nil
}

// bindTenant returns the tenant of a request: the key's when it has one (a
// request naming another is refused), else what the request says.
func bindTenant(c Caller, requested string) (string, *apiError) {
	if c.Keyed && c.Tenant != "" {
		if requested != "" && requested != c.Tenant {
			return "", fail(http.StatusForbidden, "tenant "+quote(requested)+" is not allowed for this API key")
		}
		return c.Tenant, nil
	}
	return requested, nil
}
