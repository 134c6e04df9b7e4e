package console

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"net/http"
	"net/url"
	"sync"
	"time"

	"gannet/engine/httpapi"
)

// Roles of a console user.
const (
	RoleAdmin  = "admin"  // may act
	RoleViewer = "viewer" // may only look
)

// Cookie names.
const (
	sessionCookie = "gannet_console"
	loginCookie   = "gannet_console_login" // the login form's double-submit token
)

// maxSessions bounds the sessions kept; the oldest goes first.
const maxSessions = 1000

// session is one logged-in browser (or a trusted host's).
type session struct {
	token   string
	Role    string // RoleAdmin or RoleViewer
	Who     string // in the log of admin actions
	CSRF    string // the token every POST must carry
	expires time.Time
	// key is the API key the session logged in with ("" for a trusted
	// host's): checked again at every request, so that a reload that
	// removes the key or changes its role ends or changes the session.
	key string
}

// sessions holds the sessions by token.
type sessions struct {
	mu sync.Mutex
	m  map[string]*session
}

// newToken returns 256 random bits, URL-safe.
func newToken() string {
	var b [32]byte
	rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

func (s *sessions) add(role, who, key string, expires time.Time) *session {
	ss := &session{token: newToken(), Role: role, Who: who, CSRF: newToken(), expires: expires, key: key}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil {
		s.m = map[string]*session{}
	}
	if len(s.m) >= maxSessions {
		var oldest *session
		for _, v := range s.m {
			if oldest == nil || v.expires.Before(oldest.expires) {
				oldest = v
			}
		}
		delete(s.m, oldest.token)
	}
	s.m[ss.token] = ss
	return ss
}

func (s *sessions) get(token string, now time.Time) *session {
	s.mu.Lock()
	defer s.mu.Unlock()
	ss := s.m[token]
	if ss == nil {
		return nil
	}
	if now.After(ss.expires) {
		delete(s.m, token)
		return nil
	}
	return ss
}

func (s *sessions) remove(token string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.m, token)
}

// equal compares secrets in constant time.
func equal(a, b string) bool {
	return a != "" && subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}

// setCookie sets a cookie of the console: HttpOnly, SameSite=Strict,
// Secure under TLS, scoped to /console/.
func setCookie(w http.ResponseWriter, r *http.Request, name, value string, maxAge int) {
	http.SetCookie(w, &http.Cookie{Name: name, Value: value, Path: "/console/", MaxAge: maxAge,
		HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil})
}

// session returns the request's session: its cookie's, or for a client
// in trusted_hosts without one a new admin session (set as a cookie, so
// that its forms carry a CSRF token too). Nil: the client must log in.
func (c *Console) session(w http.ResponseWriter, r *http.Request) *session {
	now := c.opts.Now()
	if ck, err := r.Cookie(sessionCookie); err == nil {
		if ss := c.sessions.get(ck.Value, now); ss != nil {
			if ss.key == "" {
				return ss
			}
			if role, ok := c.opts.Login(ss.key); ok && role == ss.Role {
				return ss
			}
			c.sessions.remove(ss.token) // the key is gone or its role changed
		}
	}
	caller, _ := httpapi.CallerFrom(r.Context())
	if !caller.Trusted {
		return nil
	}
	ss := c.sessions.add(RoleAdmin, "console, trusted host "+caller.Addr.String(), "", now.Add(c.opts.SessionTTL))
	setCookie(w, r, sessionCookie, ss.token, int(c.opts.SessionTTL/time.Second))
	return ss
}

// sameOrigin reports whether a POST comes from a page of this console: a
// browser sends Origin (or at least Referer) with every POST; when one is
// there it must name this host.
func sameOrigin(r *http.Request) bool {
	src := r.Header.Get("Origin")
	if src == "" || src == "null" {
		src = r.Header.Get("Referer")
	}
	if src == "" {
		return r.Header.Get("Origin") == "" // a client that sends neither (not a browser)
	}
	u, err := url.Parse(src)
	return err == nil && u.Host == r.Host
}

// loginPage: GET /console/login.
func (c *Console) loginPage(w http.ResponseWriter, r *http.Request) {
	tok := newToken()
	setCookie(w, r, loginCookie, tok, 600)
	c.render(w, r, http.StatusOK, "login", nil, map[string]any{"LoginToken": tok, "Next": safeNext(r.URL.Query().Get("next"))})
}

// login: POST /console/login with key and the double-submit token.
func (c *Console) login(w http.ResponseWriter, r *http.Request) {
	if !c.parseForm(w, r) {
		return
	}
	ck, err := r.Cookie(loginCookie)
	if err != nil || !equal(ck.Value, r.PostForm.Get("login_token")) || !sameOrigin(r) {
		c.refuse(w, r, nil, http.StatusForbidden, "The login form has expired or came from another site: load the login page again.")
		return
	}
	key := r.PostForm.Get("key")
	role, ok := c.opts.Login(key)
	if !ok || role != RoleAdmin && role != RoleViewer {
		c.opts.Logger.Warn("console login refused", "addr", r.RemoteAddr)
		tok := newToken()
		setCookie(w, r, loginCookie, tok, 600)
		c.render(w, r, http.StatusUnauthorized, "login", nil, map[string]any{"LoginToken": tok, "Error": "That key is not a console key (an [[api_key]] with role = \"admin\" or \"viewer\").", "Next": safeNext(r.PostForm.Get("next"))})
		return
	}
	caller, _ := httpapi.CallerFrom(r.Context())
	ss := c.sessions.add(role, "console "+role+" from "+caller.Addr.String(), key, c.opts.Now().Add(c.opts.SessionTTL))
	setCookie(w, r, loginCookie, "", -1)
	setCookie(w, r, sessionCookie, ss.token, int(c.opts.SessionTTL/time.Second))
	c.opts.Logger.Info("console login", "role", role, "addr", caller.Addr.String())
	http.Redirect(w, r, safeNext(r.PostForm.Get("next")), http.StatusSeeOther)
}

// logout: POST /console/logout.
func (c *Console) logout(w http.ResponseWriter, r *http.Request, ss *session) {
	c.sessions.remove(ss.token)
	setCookie(w, r, sessionCookie, "", -1)
	http.Redirect(w, r, "/console/login", http.StatusSeeOther)
}

// safeNext keeps a redirect target inside the console.
func safeNext(next string) string {
	u, err := url.Parse(next)
	if err != nil || next == "" || u.Scheme != "" || u.Host != "" || len(u.Path) < len("/console/") || u.Path[:len("/console/")] != "/console/" {
		return "/console/"
	}
	return u.RequestURI()
}

// checkCSRF reports whether a POST carries the session's CSRF token (and,
// when the browser says where it comes from, comes from this console).
func checkCSRF(r *http.Request, ss *session) bool {
	return equal(ss.CSRF, r.PostForm.Get("csrf")) && sameOrigin(r)
}
