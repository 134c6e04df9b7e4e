package e2e

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// The operator console (engine/console) in a real browser: headless
// Chromium driven by chromedp, against a running gannet delivering to
// bench/smtpsink, with one site refusing every recipient with a throttling
// reply (so that it is in back-off). Screenshots of every page go to the
// test's artifact directory (go test -artifacts -outputdir DIR keeps them);
// docs/console/ holds copies.

const (
	consoleAdminKey  = "console-admin-key-e2e-0123456789"
	consoleViewerKey = "console-viewer-key-e2e-0123456789"
	// throttleReply is what the site of d2.test answers to every RCPT.
	throttleReply = "4.7.1 rate limited, try again later"
)

// consoleExtra adds the console on a listener of its own with no trusted
// hosts (every browser must log in), and the admin and viewer keys.
func consoleExtra(addr string) string {
	return fmt.Sprintf(`
[[http_listener]]
listen = %q
trusted_hosts = []
services = ["console"]

[[api_key]]
key = %q
role = "admin"

[[api_key]]
key = %q
role = "viewer"
`, addr, consoleAdminKey, consoleViewerKey)
}

// browser starts headless Chromium (stopped at the end of the test) and
// returns its tab's context.
func browser(t *testing.T) context.Context {
	t.Helper()
	bin := needExecutable(t, "chromium", "chromium")
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(bin),
		chromedp.NoSandbox, // Chromium refuses to run as root with its sandbox
		chromedp.WindowSize(1400, 1000),
		chromedp.Flag("user-data-dir", t.TempDir()),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelTab := chromedp.NewContext(actx)
	ctx, cancelTime := context.WithTimeout(ctx, 4*time.Minute)
	t.Cleanup(func() {
		cancelTime()
		cancelTab()
		cancelAlloc() // stops the browser and waits for it
	})
	if err := chromedp.Do(ctx); err != nil { // starts the browser
		t.Fatalf("start chromium: %v", err)
	}
	return ctx
}

// page is a browser tab on the console at base.
type consolePage struct {
	t    *testing.T
	ctx  context.Context
	base string // http://addr
	dir  string // screenshots
}

func (p *consolePage) do(what string, steps ...chromedp.Action[chromedp.Void]) {
	p.t.Helper()
	if err := chromedp.Do(p.ctx, steps...); err != nil {
		p.t.Fatalf("%s: %v", what, err)
	}
}

func (p *consolePage) open(path string) {
	p.t.Helper()
	p.do("open "+path, chromedp.Navigate(p.base+path), chromedp.WaitReady(chromedp.CSS("body")))
}

func (p *consolePage) text(sel string) string {
	p.t.Helper()
	s, err := chromedp.Run(p.ctx, chromedp.Text(chromedp.CSS(sel)))
	if err != nil {
		p.t.Fatalf("text of %s: %v", sel, err)
	}
	return s
}

// eval runs a JavaScript expression in the page (DevTools' evaluation,
// which the page's Content-Security-Policy does not restrict).
func eval[T any](p *consolePage, expr string) T {
	p.t.Helper()
	v, err := chromedp.Run(p.ctx, chromedp.Evaluate[T](expr, chromedp.EvalAwaitPromise))
	if err != nil {
		p.t.Fatalf("evaluate %s: %v", expr, err)
	}
	return v
}

func (p *consolePage) shot(name string) {
	p.t.Helper()
	png, err := chromedp.Run(p.ctx, chromedp.FullScreenshot(100))
	if err != nil {
		p.t.Fatalf("screenshot %s: %v", name, err)
	}
	path := filepath.Join(p.dir, name+".png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		p.t.Fatal(err)
	}
	p.t.Logf("screenshot %s", path)
}

// login logs in with key from the login page.
func (p *consolePage) login(key string) {
	p.t.Helper()
	p.open("/console/")
	if loc := eval[string](p, "location.pathname"); loc != "/console/login" {
		p.t.Fatalf("without a session /console/ went to %s, want the login page", loc)
	}
	p.do("log in", chromedp.SendKeys(chromedp.ID("key"), key), chromedp.Click(chromedp.ID("login")),
		chromedp.WaitVisible(chromedp.ID("role")))
}

// TestE2EConsole: log in, see the site in back-off with its reason on the
// destinations page, find a message by recipient and open it, suspend a
// domain and see its delivery stop (the sink receives nothing more for it
// while the console shows it suspended), resume it and see the mail
// arrive; a viewer's action is refused; a cross-site POST without the CSRF
// token is refused.
func TestE2EConsole(t *testing.T) {
	w := newRelayWorld(t)
	sink1 := startGoSink(t, hostPort(mxIP1, w.port))
	startGoSink(t, hostPort(mxIP2, w.port), "rcpt:451:1:"+throttleReply)
	consoleAddr := hostPort("127.0.0.1", freePort(t, false, "127.0.0.1"))
	g := w.gannet(t, gannetConfig{Extra: adminExtra + consoleExtra(consoleAddr)})
	ctx := browser(t) // after gannet: the browser is stopped first
	p := &consolePage{t: t, ctx: ctx, base: "http://" + consoleAddr, dir: t.ArtifactDir()}

	// Mail flowing: d1.test delivered, d2.test deferred by throttling.
	for i := range 4 {
		injectSimple(t, g, fmt.Sprintf("r%d@%s", i, domain1), "acme", "spring", fmt.Sprintf("console %d", i))
	}
	for i := range 3 {
		injectSimple(t, g, fmt.Sprintf("t%d@%s", i, domain2), "acme", "spring", fmt.Sprintf("throttled %d", i))
	}
	waitArrivals(t, sink1, 4, deliveryMax)
	g.WaitRecords(recordFilter{Type: "TransientFailure", Recipient: "t0@" + domain2}, 1, deliveryMax)

	// Log in as the admin.
	p.open("/console/destinations")
	if loc := eval[string](p, "location.pathname"); loc != "/console/login" {
		t.Fatalf("without a session the console showed %s, want the login page", loc)
	}
	p.shot("login")
	p.do("wrong key", chromedp.SendKeys(chromedp.ID("key"), "not-a-key"), chromedp.Click(chromedp.ID("login")),
		chromedp.WaitVisible(chromedp.ID("error")))
	p.login(consoleAdminKey)
	if role := p.text("#role"); role != "admin" {
		t.Fatalf("logged in as %q, want admin", role)
	}
	cookie := eval[string](p, "document.cookie")
	if strings.Contains(cookie, "gannet_console") {
		t.Errorf("the session cookie is readable by scripts (not HttpOnly): %q", cookie)
	}

	// Destinations: the site of d2.test in back-off with the reply.
	var row string
	waitFor(t, deliveryMax, "the site of d2.test in back-off on the destinations page", func() (bool, string) {
		p.open("/console/destinations?state=backoff")
		row = eval[string](p, `Array.from(document.querySelectorAll("#sites tr.backoff")).map(r => r.innerText).join("\n")`)
		return strings.Contains(row, "mx.d2.test") && strings.Contains(row, throttleReply), row
	})
	p.shot("destinations-backoff")

	// Messages: find one by recipient and open it.
	p.open("/console/messages")
	p.do("search by recipient", chromedp.SendKeys(chromedp.ID("f-recipient"), "r2@"+domain1), chromedp.Click(chromedp.ID("search")),
		chromedp.WaitVisible(chromedp.ID("results")))
	if got := p.text("#results tbody"); !strings.Contains(got, "r2@"+domain1) || strings.Contains(got, "r1@"+domain1) {
		t.Errorf("search for r2@%s found:\n%s", domain1, got)
	}
	p.shot("messages-search")
	p.do("open the message", chromedp.Click(chromedp.CSS("#results a.msg")), chromedp.WaitVisible(chromedp.ID("records")))
	if got := p.text("#records"); !strings.Contains(got, "Delivery") || !strings.Contains(got, "r2@"+domain1) || !strings.Contains(got, "250") {
		t.Errorf("the message page's records lack its delivery:\n%s", got)
	}
	p.shot("message-delivered")
	// A queued message (deferred at d2.test): envelope, headers, attempts.
	p.open("/console/messages?recipient=t1@" + domain2)
	p.do("open the deferred message", chromedp.Click(chromedp.CSS("#results a.msg")), chromedp.WaitVisible(chromedp.ID("recipients")))
	if got := p.text("#recipients"); !strings.Contains(got, "t1@"+domain2) || !strings.Contains(got, "pending") || !strings.Contains(got, "451") {
		t.Errorf("the deferred message's recipients:\n%s", got)
	}
	if got := p.text("#headers"); !strings.Contains(got, "Subject: throttled 1") {
		t.Errorf("the deferred message's headers:\n%s", got)
	}
	p.shot("message-queued")
	msgURL := eval[string](p, "location.href")
	// Retry it now, then bounce it: both through the confirmation step.
	p.do("retry now", chromedp.Click(chromedp.CSS(`.acts a.button[href*="action=requeue"]`)), chromedp.WaitVisible(chromedp.ID("confirm")),
		chromedp.Click(chromedp.ID("confirm")), chromedp.WaitVisible(chromedp.ID("result")))
	if got := p.text("#result"); !strings.Contains(got, "1 message(s), 1 recipient(s) due now") {
		t.Errorf("retry now: %q", got)
	}
	p.do("bounce", chromedp.Navigate(msgURL), chromedp.Click(chromedp.CSS(`.acts a.button[href*="action=bounce"]`)),
		chromedp.WaitVisible(chromedp.ID("confirm")), chromedp.SendKeys(chromedp.ID("reason"), "stale offer"),
		chromedp.Click(chromedp.ID("confirm")), chromedp.WaitVisible(chromedp.ID("result")))
	if got := p.text("#result"); !strings.Contains(got, "Bounced 1 message(s), 1 recipient(s)") {
		t.Errorf("bounce: %q", got)
	}
	g.WaitRecords(recordFilter{Type: "AdminBounce", Recipient: "t1@" + domain2}, 1, deliveryMax)

	// Suspend d1.test: confirmation, then the suspension is in force.
	p.open("/console/destinations?q=" + domain1)
	p.do("suspend d1.test", chromedp.Click(chromedp.CSS(`#domains tr[data-name="`+domain1+`"] a.button`)),
		chromedp.WaitVisible(chromedp.ID("confirm")))
	if got := p.text("#target"); !strings.Contains(got, "domain "+domain1) {
		t.Errorf("the confirmation names %q", got)
	}
	p.do("reason", chromedp.SendKeys(chromedp.ID("reason"), "receiver maintenance"))
	p.shot("confirm-suspend")
	p.do("confirm", chromedp.Click(chromedp.ID("confirm")), chromedp.WaitVisible(chromedp.ID("result")))
	if got := p.text("#result"); !strings.Contains(got, "Suspended") {
		t.Fatalf("after confirming: %q", got)
	}
	before := len(sink1.arrivals(t))
	var held []string
	for i := range 3 {
		held = append(held, injectSimple(t, g, fmt.Sprintf("late%d@%s", i, domain1), "acme", "spring", "while suspended"))
	}
	waitFor(t, deliveryMax, "the mail to the suspended domain held", func() (bool, string) {
		s := summaryOf(t, g)
		return s.Totals.Held == len(held), fmt.Sprintf("%+v", s.Totals)
	})
	// Held means no attempt is made: nothing more reached the sink.
	if n := len(sink1.arrivals(t)); n != before {
		t.Fatalf("the sink got %d message(s) for the suspended domain", n-before)
	}
	for _, id := range held {
		if recs := selectRecords(g.Records(), recordFilter{ID: id}); len(selectRecords(recs, recordFilter{Type: "Delivery"}))+len(selectRecords(recs, recordFilter{Type: "TransientFailure"})) != 0 {
			t.Errorf("message %s was attempted while suspended: %s", id, summarize(recs))
		}
	}
	p.open("/console/destinations?q=" + domain1)
	if got := eval[string](p, `document.querySelector('#domains tr[data-name="`+domain1+`"]').innerText`); !strings.Contains(got, "suspended") || !strings.Contains(got, "receiver maintenance") {
		t.Errorf("the suspended domain's row: %q", got)
	}
	p.shot("destinations-suspended")

	// A cross-site POST (a page of another origin whose form posts to the
	// console, with the admin's session cookie but no CSRF token).
	evil := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, `<!DOCTYPE html><form method="post" action="http://%s/console/action">
<input type="hidden" name="action" value="suspend"><input type="hidden" name="domain" value="%s">
<button id="go" type="submit">win a prize</button></form>`, consoleAddr, domain3)
	})}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go evil.Serve(ln)
	t.Cleanup(func() { evil.Close() })
	p.do("cross-site POST", chromedp.Navigate("http://"+ln.Addr().String()+"/"), chromedp.Click(chromedp.ID("go")),
		chromedp.WaitVisible(chromedp.ID("error")))
	if got := p.text("#error"); !strings.Contains(got, "CSRF") {
		t.Errorf("the cross-site POST was answered %q", got)
	}
	p.shot("csrf-refused")
	if s := adminCurl(t, g, "GET", "/api/admin/suspend/v1", "").want(t, "list suspensions", 200); strings.Contains(s.body, domain3) {
		t.Errorf("the cross-site POST suspended %s: %s", domain3, s.body)
	}

	// Resume d1.test: the held mail arrives.
	p.open("/console/destinations?q=" + domain1)
	p.do("resume d1.test", chromedp.Click(chromedp.CSS(`#domains tr[data-name="`+domain1+`"] a.button`)),
		chromedp.WaitVisible(chromedp.ID("confirm")), chromedp.Click(chromedp.ID("confirm")), chromedp.WaitVisible(chromedp.ID("result")))
	if got := p.text("#result"); !strings.Contains(got, "Resumed 1") {
		t.Fatalf("after resuming: %q", got)
	}
	waitArrivals(t, sink1, 4+len(held), deliveryMax)

	// Tenants and campaigns.
	p.open("/console/tenants")
	if got := eval[string](p, `document.querySelector("#tenants tbody tr").innerText`); !strings.HasPrefix(got, "acme\t10\t") || !strings.Contains(got, ": 1") {
		t.Errorf("tenants page: acme's row %q, want 10 received and the bounce by class", got)
	}
	p.shot("tenants")

	// The overview: its history gets a point every 10 s; once it has a
	// few, the throughput chart shows the deliveries, and the queue the
	// throttled mail (some of it, when the rest is in a transaction).
	queued := `parseInt(document.getElementById("depth-scheduled").innerText) + parseInt(document.getElementById("depth-ready").innerText)`
	waitFor(t, time.Minute, "3 points of history and the throttled mail on the overview", func() (bool, string) {
		p.open("/console/")
		span, n := p.text("#chart-throughput .span"), eval[int](p, queued)
		return span != "last 0s" && span != "last 10s" && n >= 1, fmt.Sprintf("%s, %d queued", span, n)
	})
	if n := eval[int](p, `document.querySelectorAll("svg.chart").length`); n != 5 {
		t.Errorf("overview has %d charts, want 5", n)
	}
	// A polyline point above the baseline is a rate above 0.
	above := `(sel) => document.querySelector(sel).getAttribute("points").split(" ").some(p => parseFloat(p.split(",")[1]) < 145)`
	if !eval[bool](p, "("+above+`)("#chart-throughput polyline.s2")`) {
		t.Error("the throughput chart shows no delivery")
	}
	p.shot("overview")
	// The live part refreshes by itself (static/console.js, allowed by the
	// CSP): the span of the history grows without a reload.
	span := p.text("#chart-throughput .span")
	eval[bool](p, "window.notReloaded = true")
	waitFor(t, 30*time.Second, "the overview to refresh by itself", func() (bool, string) {
		now := p.text("#chart-throughput .span")
		return now != span && eval[bool](p, "window.notReloaded === true"), now
	})

	// A viewer sees the pages and cannot act, even with a valid token.
	p.do("log out", chromedp.Click(chromedp.CSS(".who button")), chromedp.WaitVisible(chromedp.ID("key")))
	p.login(consoleViewerKey)
	if role := p.text("#role"); role != "viewer" {
		t.Fatalf("logged in as %q, want viewer", role)
	}
	p.open("/console/destinations")
	if n := eval[int](p, `document.querySelectorAll("a.button").length`); n != 0 {
		t.Errorf("a viewer is offered %d action buttons", n)
	}
	p.open("/console/confirm?action=suspend&domain=" + domain3)
	if got := p.text("#error"); !strings.Contains(got, "viewer cannot act") {
		t.Errorf("a viewer's confirmation page says %q", got)
	}
	p.shot("viewer-refused")
	status := eval[int](p, `fetch("/console/action", {method: "POST", body: new URLSearchParams({
		csrf: document.querySelector('meta[name="csrf-token"]').content, action: "suspend", domain: "`+domain3+`"})}).then(r => r.status)`)
	if status != http.StatusForbidden {
		t.Errorf("a viewer's POST with a valid CSRF token answered %d, want 403", status)
	}
	if s := adminCurl(t, g, "GET", "/api/admin/suspend/v1", "").want(t, "list suspensions", 200); strings.Contains(s.body, domain3) {
		t.Errorf("the viewer suspended %s: %s", domain3, s.body)
	}
	// The admin actions are in the log as the API's are.
	if out := g.p.out.String(); !strings.Contains(out, `msg="admin suspend"`) || !strings.Contains(out, `by="console admin from 127.0.0.1"`) {
		t.Errorf("the console's suspension is not logged as admin activity:\n%s", tail(out, 3000))
	}
}
