package console

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"gannet/engine/admin"
	"gannet/engine/httpapi"
	"gannet/engine/logrec"
)

// fakeLive is a Live of fixed state.
type fakeLive struct {
	depth Depth
	paths []Path
	conns map[string]int
}

func (f *fakeLive) Depth() Depth                      { return f.depth }
func (f *fakeLive) Paths() []Path                     { return f.paths }
func (f *fakeLive) DomainConnections() map[string]int { return f.conns }

// apiCall is one request the console made of the admin API.
type apiCall struct {
	Method, Path string
	Body         map[string]any
	Caller       httpapi.Caller
}

// stubAPI stands in for the admin API's handler: it records each request
// and answers with the JSON its answers map holds for "METHOD PATH" (200
// {} otherwise).
type stubAPI struct {
	mu      sync.Mutex
	calls   []apiCall
	answers map[string]any
}

func (s *stubAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	c, _ := httpapi.CallerFrom(r.Context())
	call := apiCall{Method: r.Method, Path: r.URL.Path, Caller: c}
	if b, _ := io.ReadAll(r.Body); len(b) > 0 {
		json.Unmarshal(b, &call.Body)
	}
	s.mu.Lock()
	s.calls = append(s.calls, call)
	ans, ok := s.answers[r.Method+" "+r.URL.Path]
	s.mu.Unlock()
	if !ok {
		ans = map[string]any{}
	}
	if e, isErr := ans.(admin.ErrorResponse); isErr {
		httpapi.WriteJSON(w, http.StatusNotFound, e)
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, ans)
}

func (s *stubAPI) actions() []apiCall {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []apiCall
	for _, c := range s.calls {
		if c.Method != http.MethodGet {
			out = append(out, c)
		}
	}
	return out
}

// testConsole is a console with a stub API and the keys "admin-key" and
// "viewer-key".
type testConsole struct {
	*Console
	api    *stubAPI
	live   *fakeLive
	recent *Recent
	now    time.Time
	keys   map[string]string // console keys → role ("" for an API key without one)
}

func newTestConsole(t testing.TB) *testConsole {
	tc := &testConsole{api: &stubAPI{answers: map[string]any{}}, live: &fakeLive{}, now: time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC),
		keys: map[string]string{"admin-key": RoleAdmin, "viewer-key": RoleViewer, "api-key": ""}}
	clock := func() time.Time { return tc.now }
	tc.recent = NewRecent(clock)
	tc.Console = New(Options{API: tc.api, Live: tc.live, History: new(History), Recent: tc.recent, Now: clock,
		Login: func(key string) (string, bool) {
			role, ok := tc.keys[key]
			return role, ok
		}})
	return tc
}

// client is a browser: a cookie jar and where requests come from.
type client struct {
	tc      *testConsole
	cookies map[string]string
	addr    string
	trusted bool
}

func (tc *testConsole) client(trusted bool) *client {
	return &client{tc: tc, cookies: map[string]string{}, addr: "192.0.2.7", trusted: trusted}
}

// do sends one request as this client and keeps the cookies it sets.
func (c *client) do(method, target string, form url.Values, hdr ...string) *httptest.ResponseRecorder {
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	r := httptest.NewRequest(method, "http://console.test"+target, body)
	if form != nil {
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		r.Header.Set(hdr[i], hdr[i+1])
	}
	for k, v := range c.cookies {
		r.AddCookie(&http.Cookie{Name: k, Value: v})
	}
	r = r.WithContext(httpapi.WithCaller(context.Background(), httpapi.Caller{Addr: netip.MustParseAddr(c.addr), Trusted: c.trusted}))
	w := httptest.NewRecorder()
	c.tc.ServeHTTP(w, r)
	for _, ck := range w.Result().Cookies() {
		if ck.MaxAge < 0 {
			delete(c.cookies, ck.Name)
		} else {
			c.cookies[ck.Name] = ck.Value
		}
	}
	return w
}

var (
	loginTokenRE = regexp.MustCompile(`name="login_token" value="([^"]+)"`)
	csrfRE       = regexp.MustCompile(`name="csrf-token" content="([^"]+)"`)
)

// login logs the client in with key; it returns the answer to the POST.
func (c *client) login(t testing.TB, key string) *httptest.ResponseRecorder {
	t.Helper()
	page := c.do("GET", "/console/login", nil)
	m := loginTokenRE.FindStringSubmatch(page.Body.String())
	if m == nil {
		t.Fatalf("no login token in the login page:\n%s", page.Body)
	}
	return c.do("POST", "/console/login", url.Values{"login_token": {m[1]}, "key": {key}, "next": {"/console/"}})
}

// csrf reads the CSRF token of a page.
func (c *client) csrf(t testing.TB) string {
	t.Helper()
	page := c.do("GET", "/console/messages", nil)
	m := csrfRE.FindStringSubmatch(page.Body.String())
	if m == nil {
		t.Fatalf("no CSRF token in the page (%d):\n%s", page.Code, page.Body)
	}
	return m[1]
}

func record(typ logrec.Type, id, rcpt, site string, code int, text string, at time.Time) *logrec.Record {
	return &logrec.Record{Type: typ, ID: id, Sender: "app@src.test", Recipient: rcpt, Site: site, Tenant: "acme", Campaign: "spring",
		Response: logrec.Response{Code: code, Content: text}, Timestamp: at, Created: at.Add(-2 * time.Second)}
}

func mustContain(t testing.TB, what, body string, want ...string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(body, w) {
			t.Errorf("%s lacks %q:\n%s", what, w, body)
		}
	}
}

var _ = fmt.Sprintf
