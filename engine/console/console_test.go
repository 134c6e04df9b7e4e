package console

import (
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"gannet/engine/admin"
	"gannet/engine/logrec"
)

func TestLoginIsRequired(t *testing.T) {
	tc := newTestConsole(t)
	c := tc.client(false)
	w := c.do("GET", "/console/destinations?q=x", nil)
	if w.Code != http.StatusSeeOther || w.Header().Get("Location") != "/console/login?next=%2Fconsole%2Fdestinations%3Fq%3Dx" {
		t.Errorf("GET without a session: %d %q, want 303 to the login page", w.Code, w.Header().Get("Location"))
	}
	w = c.do("POST", "/console/action", url.Values{"action": {"suspend"}, "domain": {"d.test"}})
	if w.Code != http.StatusForbidden || len(tc.api.actions()) != 0 {
		t.Errorf("POST without a session: %d, %d API actions", w.Code, len(tc.api.actions()))
	}
}

func TestLogin(t *testing.T) {
	tc := newTestConsole(t)
	for _, key := range []string{"wrong", "api-key", ""} {
		c := tc.client(false)
		if w := c.login(t, key); w.Code != http.StatusUnauthorized || c.cookies[sessionCookie] != "" {
			t.Errorf("login with %q: %d, session %q", key, w.Code, c.cookies[sessionCookie])
		}
	}
	// The login form's token is needed (login CSRF).
	c := tc.client(false)
	if w := c.do("POST", "/console/login", url.Values{"key": {"admin-key"}}); w.Code != http.StatusForbidden {
		t.Errorf("login without the form's token: %d, want 403", w.Code)
	}
	w := c.login(t, "admin-key")
	if w.Code != http.StatusSeeOther || w.Header().Get("Location") != "/console/" {
		t.Fatalf("login: %d to %q", w.Code, w.Header().Get("Location"))
	}
	var sess *http.Cookie
	for _, ck := range w.Result().Cookies() {
		if ck.Name == sessionCookie {
			sess = ck
		}
	}
	if sess == nil || !sess.HttpOnly || sess.SameSite != http.SameSiteStrictMode || sess.Path != "/console/" || sess.Secure {
		t.Errorf("session cookie %+v: want HttpOnly, SameSite=Strict, Path=/console/ (Secure only under TLS)", sess)
	}
	if page := c.do("GET", "/console/", nil); page.Code != 200 || !strings.Contains(page.Body.String(), `id="role" class="role admin">admin<`) {
		t.Errorf("overview after login: %d\n%s", page.Code, page.Body)
	}
	// A key removed (or whose role changed) by a reload ends its sessions.
	v := tc.client(false)
	v.login(t, "viewer-key")
	tc.keys["viewer-key"] = RoleAdmin
	if w := v.do("GET", "/console/", nil); w.Code != http.StatusSeeOther {
		t.Errorf("a session whose key changed role still works: %d", w.Code)
	}
	// Logging out ends the session on the server.
	token := c.cookies[sessionCookie]
	c.do("POST", "/console/logout", url.Values{"csrf": {c.csrf(t)}})
	c.cookies[sessionCookie] = token
	if w := c.do("GET", "/console/", nil); w.Code != http.StatusSeeOther {
		t.Errorf("the session still works after logout: %d", w.Code)
	}
}

func TestTrustedHostNeedsNoLogin(t *testing.T) {
	tc := newTestConsole(t)
	c := tc.client(true)
	w := c.do("GET", "/console/", nil)
	if w.Code != 200 || !strings.Contains(w.Body.String(), ">admin<") {
		t.Fatalf("trusted host: %d\n%s", w.Code, w.Body)
	}
	// Its forms carry a CSRF token too.
	if w := c.do("POST", "/console/action", url.Values{"action": {"suspend"}, "domain": {"d.test"}}); w.Code != http.StatusForbidden {
		t.Errorf("trusted host POST without CSRF token: %d, want 403", w.Code)
	}
	w = c.do("POST", "/console/action", url.Values{"csrf": {c.csrf(t)}, "action": {"suspend"}, "domain": {"d.test"}})
	if w.Code != 200 || len(tc.api.actions()) != 1 {
		t.Errorf("trusted host POST with the token: %d, %d API actions", w.Code, len(tc.api.actions()))
	}
}

func TestCSRF(t *testing.T) {
	tc := newTestConsole(t)
	c := tc.client(false)
	c.login(t, "admin-key")
	tok := c.csrf(t)
	form := func(csrf string) url.Values {
		return url.Values{"csrf": {csrf}, "action": {"suspend"}, "domain": {"d.test"}, "reason": {"maintenance"}, "duration": {"2h"}}
	}
	for _, tt := range []struct {
		name string
		form url.Values
		hdr  []string
	}{
		{"no token", form(""), nil},
		{"wrong token", form(tok + "x"), nil},
		{"another origin", form(tok), []string{"Origin", "http://evil.test"}},
		{"another referer", form(tok), []string{"Referer", "http://evil.test/page"}},
	} {
		if w := c.do("POST", "/console/action", tt.form, tt.hdr...); w.Code != http.StatusForbidden || !strings.Contains(w.Body.String(), "CSRF") {
			t.Errorf("%s: %d, want 403", tt.name, w.Code)
		}
	}
	if n := len(tc.api.actions()); n != 0 {
		t.Fatalf("refused POSTs reached the admin API %d times", n)
	}
	w := c.do("POST", "/console/action", form(tok), "Origin", "http://console.test")
	if w.Code != 200 {
		t.Fatalf("POST with the token: %d\n%s", w.Code, w.Body)
	}
	calls := tc.api.actions()
	if len(calls) != 1 || calls[0].Method != "POST" || calls[0].Path != admin.PathSuspend ||
		calls[0].Body["domain"] != "d.test" || calls[0].Body["reason"] != "maintenance" || calls[0].Body["duration"] != "2h" {
		t.Fatalf("admin API calls %+v", calls)
	}
	if c := calls[0].Caller; c.Name != "console admin from 192.0.2.7" || c.Role != RoleAdmin || c.Tenant != "" {
		t.Errorf("the API's caller %+v", c)
	}
}

func TestViewerCannotAct(t *testing.T) {
	tc := newTestConsole(t)
	c := tc.client(false)
	c.login(t, "viewer-key")
	page := c.do("GET", "/console/confirm?action=suspend&domain=d.test", nil)
	if page.Code != 200 || strings.Contains(page.Body.String(), `action="/console/action"`) || !strings.Contains(page.Body.String(), "viewer cannot act") {
		t.Errorf("a viewer's confirmation page (%d):\n%s", page.Code, page.Body)
	}
	for _, act := range []string{"suspend", "resume", "bounce", "requeue"} {
		w := c.do("POST", "/console/action", url.Values{"csrf": {c.csrf(t)}, "action": {act}, "domain": {"d.test"}})
		if w.Code != http.StatusForbidden {
			t.Errorf("viewer %s: %d, want 403", act, w.Code)
		}
	}
	if n := len(tc.api.actions()); n != 0 {
		t.Errorf("a viewer reached the admin API's actions %d times", n)
	}
	// Reads go to the API as a viewer, which the API itself restricts.
	c.do("GET", "/console/destinations", nil)
	for _, call := range tc.api.calls {
		if call.Caller.Role != RoleViewer {
			t.Errorf("API read as %+v, want the viewer role", call.Caller)
		}
	}
}

// TestNoInlineScriptOrStyle: what the CSP forbids is not in any page, and
// every answer carries the CSP.
func TestNoInlineScriptOrStyle(t *testing.T) {
	tc := newTestConsole(t)
	tc.live.paths = []Path{{Site: "mx.d.test", Ready: 3, Throttled: true, Reason: "421 4.7.0 slow down"}}
	tc.recent.Record(record(logrec.TransientFailure, "m1", "a@d.test", "mx.d.test", 451, "later", tc.now))
	c := tc.client(true)
	inline := regexp.MustCompile(`<script(?:\s[^>]*)?>[^<]|<script>|<style|\sstyle=|\son[a-z]+=|javascript:`)
	for _, path := range []string{"/console/", "/console/destinations", "/console/messages?recipient=a", "/console/message?id=m1",
		"/console/tenants", "/console/confirm?action=bounce&domain=d.test", "/console/nowhere", "/console/login"} {
		w := c.do("GET", path, nil)
		csp := w.Header().Get("Content-Security-Policy")
		if !strings.Contains(csp, "default-src 'none'") || !strings.Contains(csp, "script-src 'self'") || strings.Contains(csp, "unsafe") {
			t.Errorf("%s: CSP %q", path, csp)
		}
		if m := inline.FindString(w.Body.String()); m != "" {
			t.Errorf("%s has inline script or style: %q", path, m)
		}
		if w.Header().Get("X-Frame-Options") != "DENY" || w.Header().Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("%s: headers %v", path, w.Header())
		}
	}
}

func TestFormBodyIsBounded(t *testing.T) {
	tc := newTestConsole(t)
	c := tc.client(true)
	tok := c.csrf(t)
	w := c.do("POST", "/console/action", url.Values{"csrf": {tok}, "action": {"suspend"}, "domain": {"d.test"}, "reason": {strings.Repeat("x", MaxFormBytes)}})
	if w.Code != http.StatusRequestEntityTooLarge || len(tc.api.actions()) != 0 {
		t.Errorf("oversized form: %d, %d API actions", w.Code, len(tc.api.actions()))
	}
}

// TestOutputIsEscaped: what mail brings in (addresses, replies) is shown as
// text.
func TestOutputIsEscaped(t *testing.T) {
	tc := newTestConsole(t)
	evil := `<img src=x onerror=alert(1)>`
	tc.recent.Record(record(logrec.Bounce, "m1", "a@d.test", "mx.d.test", 550, evil, tc.now))
	tc.live.paths = []Path{{Site: "mx.d.test", Throttled: true, Reason: evil}}
	c := tc.client(true)
	for _, path := range []string{"/console/destinations", "/console/message?id=m1", "/console/messages?id=m1", "/console/"} {
		body := c.do("GET", path, nil).Body.String()
		if strings.Contains(body, "<img") {
			t.Errorf("%s shows markup from mail unescaped", path)
		}
		mustContain(t, path, body, "&lt;img src=x onerror=alert(1)&gt;")
	}
}

func TestActionsAreAdminAPIRequests(t *testing.T) {
	tc := newTestConsole(t)
	tc.api.answers["DELETE "+admin.PathSuspend] = admin.ResumeV1Response{Resumed: []string{"s1"}}
	tc.api.answers["POST "+admin.PathQueueBounce] = admin.QueueActionV1Response{Messages: 1, Recipients: 2}
	c := tc.client(true)
	tok := c.csrf(t)
	for _, tt := range []struct {
		form         url.Values
		method, path string
		body         map[string]any
		result       string
	}{
		{url.Values{"action": {"suspend"}, "site": {"mx.d.test"}, "duration": {"0"}}, "POST", admin.PathSuspend,
			map[string]any{"site": "mx.d.test", "duration": "0"}, "Suspended"},
		{url.Values{"action": {"suspend"}, "tenant": {"acme"}}, "POST", admin.PathSuspend, map[string]any{"tenant": "acme"}, "Suspended"},
		{url.Values{"action": {"resume"}, "campaign": {"spring"}}, "DELETE", admin.PathSuspend, map[string]any{"campaign": "spring"}, "Resumed 1"},
		{url.Values{"action": {"bounce"}, "id": {"m1"}, "reason": {"spam"}}, "POST", admin.PathQueueBounce,
			map[string]any{"ids": []any{"m1"}, "reason": "spam"}, "Bounced 1 message(s), 2 recipient(s)"},
		{url.Values{"action": {"bounce"}, "domain": {"d.test"}}, "POST", admin.PathBounce, map[string]any{"domain": "d.test", "duration": "0"}, "Bounced 0"},
		{url.Values{"action": {"requeue"}, "domain": {"d.test"}}, "POST", admin.PathRetry, map[string]any{"domain": "d.test"}, "due now"},
		{url.Values{"action": {"requeue"}, "id": {"m1"}}, "POST", admin.PathRetry, map[string]any{"ids": []any{"m1"}}, "due now"},
	} {
		tt.form.Set("csrf", tok)
		n := len(tc.api.actions())
		w := c.do("POST", "/console/action", tt.form)
		calls := tc.api.actions()
		if w.Code != 200 || len(calls) != n+1 {
			t.Errorf("%v: %d, %d calls", tt.form, w.Code, len(calls)-n)
			continue
		}
		got := calls[n]
		if got.Method != tt.method || got.Path != tt.path || fmt.Sprint(got.Body) != fmt.Sprint(tt.body) {
			t.Errorf("%v: called %s %s %v, want %s %s %v", tt.form, got.Method, got.Path, got.Body, tt.method, tt.path, tt.body)
		}
		mustContain(t, fmt.Sprint(tt.form), w.Body.String(), tt.result)
	}
	// An action that names nothing is refused before the API.
	n := len(tc.api.actions())
	if w := c.do("POST", "/console/action", url.Values{"csrf": {tok}, "action": {"bounce"}}); w.Code != http.StatusUnprocessableEntity || len(tc.api.actions()) != n {
		t.Errorf("bounce of nothing: %d", w.Code)
	}
	// The API's refusal is shown.
	tc.api.answers["DELETE "+admin.PathSuspend] = admin.ErrorResponse{Error: "no suspension with that selector is in force"}
	if w := c.do("POST", "/console/action", url.Values{"csrf": {tok}, "action": {"resume"}, "domain": {"x.test"}}); w.Code != http.StatusNotFound || !strings.Contains(w.Body.String(), "no suspension with that selector") {
		t.Errorf("refused resume: %d\n%s", w.Code, w.Body)
	}
}

func TestDestinationsSortAndFilter(t *testing.T) {
	tc := newTestConsole(t)
	tc.live.paths = []Path{
		{Site: "mx.a.test", Ready: 5, ConnLimit: 10},
		{Site: "mx.b.test", Ready: 50, Throttled: true, Reason: "421 4.7.0 too fast"},
		{Site: "mx.c.test", Ready: 1, Suspended: tc.now.Add(time.Hour), Reason: "550 5.7.1 blocked"},
	}
	tc.api.answers["GET "+admin.PathSuspend] = []admin.RuleEntry{{ID: "s1", Origin: "api", Domain: "d.test", Reason: "maintenance"}}
	tc.api.answers["GET "+admin.PathQueueSummary] = admin.QueueSummaryV1{Domains: []admin.DomainRow{{Domain: "d.test", Counts: admin.Counts{Recipients: 7, Held: 7}}}}
	tc.recent.Record(record(logrec.TransientFailure, "m1", "a@b.test", "mx.b.test", 421, "too fast", tc.now))
	tc.recent.Record(record(logrec.Delivery, "m2", "a@b.test", "mx.b.test", 250, "ok", tc.now))
	tc.live.conns = map[string]int{"d.test": 3}
	c := tc.client(true)
	order := func(q string) string {
		body := c.do("GET", "/console/destinations?"+q, nil).Body.String()
		var names []string
		for _, m := range regexp.MustCompile(`<tr class="row [a-z]*" data-name="([^"]+)"`).FindAllStringSubmatch(body, -1) {
			names = append(names, m[1])
		}
		return strings.Join(names, " ")
	}
	for q, want := range map[string]string{
		"":                       "mx.b.test mx.a.test mx.c.test d.test b.test",
		"sort=depth&dir=asc":     "mx.c.test mx.a.test mx.b.test b.test d.test",
		"sort=name":              "mx.a.test mx.b.test mx.c.test b.test d.test",
		"state=backoff":          "mx.b.test",
		"state=suspended":        "mx.c.test d.test",
		"state=errors":           "mx.b.test b.test",
		"q=C.TEST":               "mx.c.test",
		"sort=conns&dir=desc":    "mx.a.test mx.b.test mx.c.test d.test b.test",
		"sort=deferral&dir=desc": "mx.b.test mx.a.test mx.c.test b.test d.test",
	} {
		if got := order(q); got != want {
			t.Errorf("?%s: %s, want %s", q, got, want)
		}
	}
	body := c.do("GET", "/console/destinations", nil).Body.String()
	mustContain(t, "destinations", body, "421 4.7.0 too fast", "550 5.7.1 blocked", "maintenance", "50%", "a@b.test: 421 too fast",
		`action=resume&amp;domain=d.test`, `action=suspend&amp;site=mx.a.test`)
}

func TestMessagesSearchAndPage(t *testing.T) {
	tc := newTestConsole(t)
	created := tc.now.Add(-time.Minute)
	tc.api.answers["GET "+admin.PathQueue] = admin.QueueListV1{Matched: 1, Messages: []admin.ListedMessage{{ID: "q1", Sender: "app@src.test",
		Created: created, State: "scheduled", NumAttempts: 2, Recipients: []admin.ListedRecipient{{Email: "bob@d.test", LastReply: "451 later"}}}}}
	hdr := "Subject: hello\r\nFrom: app@src.test\r\n"
	tc.api.answers["GET "+admin.PathInspectMessage] = admin.InspectMessageV1{ID: "q1", State: "queued", Message: admin.MessageInformation{
		Sender: "app@src.test", Recipient: []string{"bob@d.test"}, Headers: &hdr,
		Recipients: []admin.RecipientInfo{{Email: "bob@d.test", State: "pending", Attempts: 2, LastReply: "451 later", Site: "mx.d.test"}}}}
	tc.recent.Record(record(logrec.Delivery, "old1", "bob@e.test", "mx.e.test", 250, "ok", tc.now))
	tc.recent.Record(record(logrec.TransientFailure, "q1", "bob@d.test", "mx.d.test", 451, "later", tc.now))
	c := tc.client(true)
	body := c.do("GET", "/console/messages?recipient=bob", nil).Body.String()
	mustContain(t, "search", body, `href="/console/message?id=q1"`, `href="/console/message?id=old1"`, "451 later", "Delivery")
	body = c.do("GET", "/console/message?id=q1", nil).Body.String()
	mustContain(t, "message page", body, "Subject: hello", "pending", "mx.d.test", "TransientFailure", "451 later")
	// A message no longer queued: its records.
	tc.api.answers["GET "+admin.PathInspectMessage] = admin.ErrorResponse{Error: "not queued"}
	body = c.do("GET", "/console/message?id=old1", nil).Body.String()
	mustContain(t, "delivered message", body, "no longer queued", "Delivery", "250 ok")
	if w := c.do("GET", "/console/message?id=nothing", nil); w.Code != http.StatusNotFound {
		t.Errorf("unknown message: %d", w.Code)
	}
}

func TestOverview(t *testing.T) {
	tc := newTestConsole(t)
	tc.live.depth = Depth{Scheduled: 1234, Ready: 5, Suspended: 6, Dead: 7}
	for i := range 20 {
		tc.live.paths = append(tc.live.paths, Path{Site: fmt.Sprintf("mx%02d.test", i), Ready: i})
	}
	h := tc.opts.History
	for i := range 3 {
		h.Add(Snapshot{Delivered: uint64(100 * i)}, tc.now.Add(time.Duration(i)*Resolution), 0.5, 2)
	}
	body := tc.client(true).do("GET", "/console/", nil).Body.String()
	mustContain(t, "overview", body, `id="depth-scheduled">1234<`, `id="depth-ready">5<`, `id="depth-suspended">6<`, `id="depth-dead">7<`,
		"out (delivered): <b>10/s", "p95: <b>2s", "last 20s")
	if n := strings.Count(body, "<svg class=\"chart\""); n != 5 {
		t.Errorf("%d charts, want 5", n)
	}
	// The busiest sites first, topSites of them.
	if i, j := strings.Index(body, "mx19.test"), strings.Index(body, "mx10.test"); i < 0 || j < 0 || i > j || strings.Contains(body, "mx09.test") {
		t.Errorf("busiest sites not the top %d by depth", topSites)
	}
}

// TestTenantsShowReports: the tenants page shows, per tenant, the
// complaints and late bounces matched to its mail, beside its bounces by
// class; an unmatched report counts for no one.
func TestTenantsShowReports(t *testing.T) {
	tc := newTestConsole(t)
	tc.api.answers["GET "+admin.PathQueueSummary] = admin.QueueSummaryV1{}
	tc.api.answers["GET "+admin.PathSuspend] = []admin.RuleEntry{}
	for i, matched := range []bool{true, true, true, false} {
		fb := record(logrec.Feedback, "m", fmt.Sprintf("r%d@d.test", i), "", 0, "", tc.now)
		fb.Report = &logrec.Report{Matched: matched, FeedbackType: "abuse"}
		tc.recent.Record(fb)
	}
	oob := record(logrec.OOB, "m", "gone@d.test", "", 550, "no such user", tc.now)
	oob.Report = &logrec.Report{Matched: true, Action: "failed"}
	tc.recent.Record(oob)
	b := record(logrec.Bounce, "m", "x@d.test", "mx.d.test", 550, "no such user", tc.now)
	b.BounceClassification = "InvalidRecipient"
	tc.recent.Record(b)
	body := tc.client(true).do("GET", "/console/tenants", nil).Body.String()
	row := regexp.MustCompile(`<tr><td>acme</td>(.*?)</tr>`).FindStringSubmatch(strings.ReplaceAll(body, "\n", ""))
	if row == nil {
		t.Fatalf("no row for acme:\n%s", body)
	}
	cells := regexp.MustCompile(`<td>(.*?)</td>`).FindAllStringSubmatch(row[1], -1)
	// received, delivered, deferred, bounced, by class, late bounces, complaints, …
	if len(cells) < 7 || cells[3][1] != "1" || !strings.Contains(cells[4][1], "InvalidRecipient: 1") || cells[5][1] != "1" || cells[6][1] != "3" {
		t.Errorf("acme's row: %v", cells)
	}
}
