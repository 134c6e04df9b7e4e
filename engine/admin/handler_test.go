package admin

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"gannet/engine/delivery"
	"gannet/engine/httpapi"
	"gannet/engine/logrec"
	"gannet/engine/outbound"
	"gannet/queue"
	"gannet/resolver"
	"gannet/smtpwire"
)

// deferring is a Transport that answers every recipient 451, so that mail
// stays queued for its retry (an hour away).
type deferring struct {
	mu    sync.Mutex
	rcpts []string
}

func (d *deferring) Deliver(_ context.Context, _ *resolver.Route, env *outbound.Envelope) outbound.Outcome {
	d.mu.Lock()
	d.rcpts = append(d.rcpts, env.Rcpts...)
	d.mu.Unlock()
	var o outbound.Outcome
	for _, r := range env.Rcpts {
		o.Results = append(o.Results, outbound.Result{Rcpt: r, Status: outbound.Transient,
			Reply: smtpwire.Reply{Code: 451, Enhanced: "4.3.0", Lines: []string{"later"}}})
	}
	return o
}

func (d *deferring) Close() error { return nil }

func (d *deferring) count() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.rcpts)
}

type records struct {
	mu   sync.Mutex
	recs []logrec.Record
}

func (r *records) Write(rec *logrec.Record) bool {
	r.mu.Lock()
	r.recs = append(r.recs, *rec)
	r.mu.Unlock()
	return true
}

func (r *records) ofType(t logrec.Type) []logrec.Record {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []logrec.Record
	for _, x := range r.recs {
		if x.Type == t {
			out = append(out, x)
		}
	}
	return out
}

// world is a real spool and delivery loop behind httpapi's gate with the
// admin handler mounted.
type world struct {
	spool *queue.Spool
	loop  *delivery.Loop
	tr    *deferring
	rec   *records
	api   http.Handler
	ids   *queue.IDGenerator
}

func newWorld(t testing.TB) *world {
	t.Helper()
	return newWorldAt(t, t.TempDir())
}

// newWorldAt is newWorld with the spool in dir.
func newWorldAt(t testing.TB, dir string) *world {
	t.Helper()
	return newWorldWith(t, dir, nil, nil)
}

// newWorldWith is newWorldAt with the loop's and the handler's options
// changed by lmod and hmod (either may be nil).
func newWorldWith(t testing.TB, dir string, lmod func(*delivery.Options), hmod func(*Options)) *world {
	t.Helper()
	sp, err := queue.Open(queue.Options{Dir: dir, Compression: "none", MinFreeBytes: -1})
	if err != nil {
		t.Fatal(err)
	}
	w := &world{spool: sp, tr: &deferring{}, rec: &records{}, ids: queue.NewIDGenerator(time.Now)}
	lo := delivery.Options{
		Store: sp, Transport: w.tr, RelayTo: "127.0.0.1:1", Record: w.rec,
		Retry: queue.RetryPolicy{Initial: time.Hour, Max: time.Hour, MaxAge: 72 * time.Hour},
	}
	if lmod != nil {
		lmod(&lo)
	}
	w.loop = delivery.New(lo)
	w.loop.Start()
	t.Cleanup(func() {
		w.loop.Stop(context.Background())
		sp.Close()
	})
	n := 0
	ho := Options{Loop: w.loop, Xfer: w.loop, OwnSMTP: func() []string { return []string{"127.0.0.1:2525"} }, Spool: sp, Quarantine: sp, Dead: sp, TenantRate: func(t string) float64 {
		if t == "acme" {
			return 2
		}
		return 0
	}, NewID: func() string { n++; return "rule-" + string(rune('0'+n)) }}
	if hmod != nil {
		hmod(&ho)
	}
	h := New(ho)
	w.api = httpapi.New(httpapi.Options{
		TrustedHosts: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")},
		Services:     []string{httpapi.ServiceAdmin},
		APIKeys: func(b string) (string, bool) {
			switch b {
			case "key-acme":
				return "acme", true
			case "key-root", "key-viewer":
				return "", true
			}
			return "", false
		},
		KeyRole: func(b string) string {
			if b == "key-viewer" {
				return "viewer"
			}
			return ""
		},
		Admin: h,
	}).Handler()
	return w
}

// queueMail spools and enqueues a message and waits until its first
// attempt was deferred.
func (w *world) queueMail(t testing.TB, tenant, campaign string, rcpts ...string) string {
	t.Helper()
	m := &queue.Message{ID: w.ids.Next(), From: "app@src.test", Tenant: tenant, Campaign: campaign, Created: time.Now()}
	for _, r := range rcpts {
		m.Recipients = append(m.Recipients, queue.Recipient{Addr: r})
	}
	body := "From: app@src.test\r\nSubject: hello " + m.ID + "\r\n\r\nbody\r\n"
	if err := w.spool.Append(m, []byte(body)); err != nil {
		t.Fatal(err)
	}
	before := w.tr.count()
	if err := w.loop.Enqueue(m); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, func() bool { return w.tr.count() >= before+len(rcpts) && w.loop.Summary("").Scheduled > 0 })
	return m.ID
}

func waitUntil(t testing.TB, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met in 5s")
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// call makes one request from addr (trusted 127.0.0.1 unless given) with
// an optional bearer key, and decodes the JSON answer into out.
func (w *world) call(t *testing.T, method, target, body, key, addr string, out any) int {
	t.Helper()
	req := httptest.NewRequest(method, target, strings.NewReader(body))
	req.RemoteAddr = cmpOr(addr, "127.0.0.1:40000")
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	rr := httptest.NewRecorder()
	w.api.ServeHTTP(rr, req)
	if ct := rr.Header().Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("%s %s: Content-Type %q, body %s", method, target, ct, rr.Body.String())
	}
	var e ErrorResponse
	if rr.Code >= 400 && (json.Unmarshal(rr.Body.Bytes(), &e) != nil || e.Error == "") {
		t.Errorf("%s %s: refusal %d without {\"error\"}: %s", method, target, rr.Code, rr.Body.String())
	}
	if out != nil && rr.Code < 400 {
		if err := json.Unmarshal(rr.Body.Bytes(), out); err != nil {
			t.Fatalf("%s %s: %v: %s", method, target, err, rr.Body.String())
		}
	}
	return rr.Code
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func TestRefusals(t *testing.T) {
	w := newWorld(t)
	id := w.queueMail(t, "acme", "spring", "a@x.test")
	cases := []struct {
		name, method, target, body, key, addr string
		want                                  int
	}{
		{"bad JSON", "POST", PathBounce, `{"domain":`, "", "", 400},
		{"not an object", "POST", PathSuspend, `["x.test"]`, "", "", 400},
		{"empty body", "POST", PathBounce, ``, "", "", 400},
		{"unknown field", "POST", PathBounce, `{"domian":"x.test","tenant":"acme"}`, "", "", 400},
		{"trailing data", "POST", PathBounce, `{"domain":"x.test"} {}`, "", "", 400},
		{"missing selector", "POST", PathBounce, `{"reason":"oops"}`, "", "", 422},
		{"missing selector suspend", "POST", PathSuspend, `{"domain":"  "}`, "", "", 422},
		{"bad duration", "POST", PathSuspend, `{"domain":"x.test","duration":"soon"}`, "", "", 422},
		{"negative duration", "POST", PathBounce, `{"domain":"x.test","duration":"-5m"}`, "", "", 422},
		{"past expires", "POST", PathBounce, `{"domain":"x.test","expires":"2001-01-01T00:00:00Z"}`, "", "", 422},
		{"both duration and expires", "POST", PathBounce, `{"domain":"x.test","duration":"5m","expires":"2091-01-01T00:00:00Z"}`, "", "", 422},
		{"inspect without id", "GET", PathInspectMessage, ``, "", "", 422},
		{"inspect unknown id", "GET", PathInspectMessage + "?id=nosuchid", ``, "", "", 404},
		{"inspect bad want_body", "GET", PathInspectMessage + "?id=" + id + "&want_body=maybe", ``, "", "", 422},
		{"cancel unknown bounce", "DELETE", PathBounce, `{"id":"nosuch"}`, "", "", 404},
		{"cancel without id", "DELETE", PathBounce, `{}`, "", "", 422},
		{"resume unknown id", "DELETE", PathSuspend, `{"id":"nosuch"}`, "", "", 404},
		{"resume unknown selector", "DELETE", PathSuspend, `{"domain":"nowhere.test"}`, "", "", 404},
		{"resume nothing", "DELETE", PathSuspend, `{}`, "", "", 422},
		{"wrong method", "PUT", PathBounce, `{}`, "", "", 405},
		{"summary by POST", "POST", PathQueueSummary, `{}`, "", "", 405},
		{"unknown path", "GET", "/api/admin/nope/v1", ``, "", "", 404},
		{"untrusted without key", "GET", PathQueueSummary, ``, "", "192.0.2.9:5000", 401},
		{"untrusted with a bad key", "POST", PathBounce, `{"domain":"x.test"}`, "wrong", "192.0.2.9:5000", 401},
		{"tenant key, other tenant", "POST", PathBounce, `{"tenant":"other","domain":"x.test"}`, "key-acme", "192.0.2.9:5000", 403},
		{"tenant key, other tenant's resume", "DELETE", PathSuspend, `{"tenant":"other"}`, "key-acme", "192.0.2.9:5000", 403},
	}
	for _, c := range cases {
		if got := w.call(t, c.method, c.target, c.body, c.key, c.addr, nil); got != c.want {
			t.Errorf("%s: %s %s %s → %d, want %d", c.name, c.method, c.target, c.body, got, c.want)
		}
	}
	// 405 says what is allowed.
	req := httptest.NewRequest("PUT", PathSuspend, nil)
	req.RemoteAddr = "127.0.0.1:1"
	rr := httptest.NewRecorder()
	w.api.ServeHTTP(rr, req)
	if rr.Header().Get("Allow") != "GET, POST, DELETE" {
		t.Errorf("Allow %q", rr.Header().Get("Allow"))
	}
	// Nothing was bounced by any of these.
	if n := len(w.rec.ofType(logrec.AdminBounce)); n != 0 {
		t.Errorf("%d AdminBounce records after refusals", n)
	}
}

func TestSummaryInspectAndBounce(t *testing.T) {
	w := newWorld(t)
	id1 := w.queueMail(t, "acme", "spring", "a@x.test", "b@y.test")
	id2 := w.queueMail(t, "other", "", "c@x.test")

	var s QueueSummaryV1
	if code := w.call(t, "GET", PathQueueSummary, "", "", "", &s); code != 200 {
		t.Fatalf("summary: %d", code)
	}
	if s.Totals.Messages != 2 || s.Totals.Recipients != 3 || s.Totals.Scheduled != 3 || len(s.Queues) != 3 ||
		len(s.Domains) != 2 || len(s.Tenants) != 2 || len(s.Campaigns) != 2 {
		t.Fatalf("summary %+v", s)
	}
	if d := s.Domains[0]; d.Domain != "x.test" || d.Messages != 2 || d.Scheduled != 2 {
		t.Errorf("domain row %+v", d)
	}
	if tr := s.Tenants[0]; tr.Name != "acme" || tr.EffectiveRate != 2 || tr.Recipients != 2 {
		t.Errorf("tenant row %+v", tr)
	}

	var in InspectMessageV1
	if code := w.call(t, "GET", PathInspectMessage+"?id="+id1+"&want_body=true", "", "", "", &in); code != 200 {
		t.Fatalf("inspect: %d", code)
	}
	m := in.Message
	if in.ID != id1 || m.Sender != "app@src.test" || len(m.Recipients) != 2 || m.Tenant != "acme" || m.Campaign != "spring" ||
		m.NumAttempts != 2 || m.Due == nil || m.Data == nil || !strings.Contains(*m.Data, "Subject: hello "+id1) ||
		m.Headers == nil || !strings.HasSuffix(*m.Headers, "\r\n\r\n") || strings.Contains(*m.Headers, "body") {
		t.Fatalf("inspect %+v", in)
	}
	r0 := m.Recipients[0]
	if r0.Email != "a@x.test" || r0.State != "pending" || r0.Attempts != 1 || r0.LastReply != "451 4.3.0 later" ||
		r0.Site != "127.0.0.1:1" || r0.NextDue == nil {
		t.Errorf("recipient %+v", r0)
	}

	// Bounce x.test for acme only.
	var b BounceV1Response
	if code := w.call(t, "POST", PathBounce, `{"domain":"X.TEST","tenant":"acme","reason":"bad list","duration":"10m"}`, "", "", &b); code != 200 {
		t.Fatalf("bounce: %d", code)
	}
	if b.ID == "" || b.TotalBounced != 1 || b.Bounced["spring:acme@x.test"] != 1 {
		t.Fatalf("bounce answer %+v", b)
	}
	ab := w.rec.ofType(logrec.AdminBounce)
	if len(ab) != 1 || ab[0].Recipient != "a@x.test" || ab[0].Response.Content != "Administrator bounced: bad list" {
		t.Fatalf("AdminBounce records %+v", ab)
	}
	var list []RuleEntry
	w.call(t, "GET", PathBounce, "", "", "", &list)
	if len(list) != 1 || list[0].ID != b.ID || list[0].Domain != "x.test" || list[0].Tenant != "acme" ||
		list[0].TotalBounced != 1 || list[0].Expires == nil || list[0].Duration == "" {
		t.Fatalf("bounce list %+v", list)
	}
	// The other tenant's message is untouched; id1 keeps b@y.test.
	if code := w.call(t, "GET", PathInspectMessage+"?id="+id2, "", "", "", &in); code != 200 || in.Message.Recipients[0].State != "pending" {
		t.Errorf("other tenant's message: %d %+v", code, in)
	}
	w.call(t, "GET", PathInspectMessage+"?id="+id1, "", "", "", &in)
	if in.Message.Recipients[0].State != "bounced" || in.Message.Recipients[1].State != "pending" {
		t.Errorf("after bounce %+v", in.Message.Recipients)
	}
	var cancelled RuleEntry
	if code := w.call(t, "DELETE", PathBounce, `{"id":"`+b.ID+`"}`, "", "", &cancelled); code != 200 || cancelled.ID != b.ID {
		t.Errorf("cancel: %d %+v", code, cancelled)
	}
	if code := w.call(t, "DELETE", PathBounce, `{"id":"`+b.ID+`"}`, "", "", nil); code != 404 {
		t.Errorf("second cancel: %d", code)
	}
}

func TestSuspendResume(t *testing.T) {
	w := newWorld(t)
	var sr SuspendV1Response
	if code := w.call(t, "POST", PathSuspend, `{"domain":"x.test","reason":"postmaster asked"}`, "", "", &sr); code != 200 || sr.ID == "" {
		t.Fatalf("suspend: %d %+v", code, sr)
	}
	m := &queue.Message{ID: w.ids.Next(), From: "app@src.test", Created: time.Now(), Recipients: []queue.Recipient{{Addr: "a@x.test"}}}
	if err := w.spool.Append(m, []byte("Subject: x\r\n\r\nx\r\n")); err != nil {
		t.Fatal(err)
	}
	w.loop.Enqueue(m)
	waitUntil(t, func() bool { return w.loop.Summary("").Held == 1 })
	if w.tr.count() != 0 {
		t.Fatal("suspended mail was attempted")
	}
	var list []RuleEntry
	w.call(t, "GET", PathSuspend, "", "", "", &list)
	if len(list) != 1 || list[0].Held != 1 || list[0].Reason != "postmaster asked" || list[0].Expires == nil {
		t.Fatalf("suspensions %+v", list)
	}
	var s QueueSummaryV1
	w.call(t, "GET", PathQueueSummary, "", "", "", &s)
	if len(s.Queues) != 1 || !s.Queues[0].Suspended || s.Queues[0].Held != 1 || s.Totals.Suspensions != 1 || !s.Domains[0].Suspended {
		t.Fatalf("summary %+v", s)
	}
	var res ResumeV1Response
	if code := w.call(t, "DELETE", PathSuspend, `{"domain":"x.test"}`, "", "", &res); code != 200 || len(res.Resumed) != 1 || res.Resumed[0] != sr.ID {
		t.Fatalf("resume: %d %+v", code, res)
	}
	waitUntil(t, func() bool { return w.tr.count() == 1 })
}

func TestTenantKeyScope(t *testing.T) {
	w := newWorld(t)
	mine := w.queueMail(t, "acme", "", "a@x.test")
	theirs := w.queueMail(t, "other", "", "b@x.test")
	const far = "192.0.2.9:5000"

	var s QueueSummaryV1
	w.call(t, "GET", PathQueueSummary, "", "key-acme", far, &s)
	if len(s.Queues) != 1 || s.Queues[0].Tenant != "acme" || s.Totals.Messages != 1 || s.Sites != nil {
		t.Errorf("tenant summary %+v", s)
	}
	if code := w.call(t, "GET", PathInspectMessage+"?id="+theirs, "", "key-acme", far, nil); code != 404 {
		t.Errorf("inspect another tenant's message: %d, want 404", code)
	}
	if code := w.call(t, "GET", PathInspectMessage+"?id="+mine, "", "key-acme", far, nil); code != 200 {
		t.Errorf("inspect own message: %d", code)
	}
	// A bounce by domain is scoped to the key's tenant.
	var b BounceV1Response
	if code := w.call(t, "POST", PathBounce, `{"domain":"x.test","duration":"0"}`, "key-acme", far, &b); code != 200 || b.TotalBounced != 1 {
		t.Fatalf("tenant bounce: %d %+v", code, b)
	}
	if ab := w.rec.ofType(logrec.AdminBounce); len(ab) != 1 || ab[0].ID != mine {
		t.Fatalf("AdminBounce %+v", ab)
	}
	// Rules of others are invisible and untouchable.
	var root SuspendV1Response
	w.call(t, "POST", PathSuspend, `{"domain":"y.test"}`, "key-root", far, &root)
	var list []RuleEntry
	w.call(t, "GET", PathSuspend, "", "key-acme", far, &list)
	if len(list) != 0 {
		t.Errorf("tenant sees %+v", list)
	}
	if code := w.call(t, "DELETE", PathSuspend, `{"id":"`+root.ID+`"}`, "key-acme", far, nil); code != 404 {
		t.Errorf("tenant resumes the operator's suspension: %d", code)
	}
	var own SuspendV1Response
	w.call(t, "POST", PathSuspend, `{"campaign":"c1"}`, "key-acme", far, &own)
	w.call(t, "GET", PathSuspend, "", "key-acme", far, &list)
	if len(list) != 1 || list[0].ID != own.ID || list[0].Tenant != "acme" {
		t.Errorf("tenant's own suspension %+v", list)
	}
}

func TestParseDuration(t *testing.T) {
	for in, want := range map[string]time.Duration{"90s": 90 * time.Second, "20m": 20 * time.Minute, "2d": 48 * time.Hour, "0": 0, " 1h30m ": 90 * time.Minute} {
		if got, err := ParseDuration(in); err != nil || got != want {
			t.Errorf("ParseDuration(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "soon", "-1m", "xd", "-2d", "99999d"} {
		if _, err := ParseDuration(in); err == nil {
			t.Errorf("ParseDuration(%q) accepted", in)
		}
	}
}

// TestViewerKeyOnlyReads: a key with role = "viewer" may GET, and every
// action is refused with 403 and does nothing.
func TestViewerKeyOnlyReads(t *testing.T) {
	w := newWorld(t)
	w.queueMail(t, "", "", "a@d.test")
	var sum QueueSummaryV1
	if code := w.call(t, "GET", PathQueueSummary, "", "key-viewer", "192.0.2.1:1", &sum); code != 200 || sum.Totals.Messages != 1 {
		t.Fatalf("viewer GET summary: %d %+v", code, sum.Totals)
	}
	for _, tt := range []struct{ method, path, body string }{
		{"POST", PathSuspend, `{"domain":"d.test"}`},
		{"POST", PathBounce, `{"domain":"d.test"}`},
		{"DELETE", PathSuspend, `{"domain":"d.test"}`},
		{"POST", PathRetry, `{"domain":"d.test"}`},
		{"POST", PathQueueBounce, `{"domain":"d.test"}`},
	} {
		if code := w.call(t, tt.method, tt.path, tt.body, "key-viewer", "192.0.2.1:1", nil); code != 403 {
			t.Errorf("viewer %s %s: %d, want 403", tt.method, tt.path, code)
		}
	}
	var rules []RuleEntry
	w.call(t, "GET", PathSuspend, "", "key-root", "192.0.2.1:1", &rules)
	if len(rules) != 0 || w.loop.Summary("").Messages != 1 {
		t.Errorf("a viewer's refused action did something: rules %+v", rules)
	}
	if code := w.call(t, "POST", PathSuspend, `{"domain":"d.test"}`, "key-root", "192.0.2.1:1", nil); code != 200 {
		t.Errorf("operator key POST: %d", code)
	}
}
