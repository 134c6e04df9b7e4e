package delivery

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"gannet/engine/logrec"
	"gannet/engine/outbound"
	"gannet/queue"
	"gannet/resolver"
)

// deferAll makes every transaction a 451 and counts transactions per
// recipient.
func deferAll(h *harness) func() map[string]int {
	var mu sync.Mutex
	tries := map[string]int{}
	h.tr.fn = func(_ *resolver.Route, env *outbound.Envelope) outbound.Outcome {
		mu.Lock()
		for _, r := range env.Rcpts {
			tries[r]++
		}
		mu.Unlock()
		return outcomeAll(env, outbound.Transient, reply(451, "4.3.0", "later"))
	}
	return func() map[string]int {
		mu.Lock()
		defer mu.Unlock()
		out := map[string]int{}
		for k, v := range tries {
			out[k] = v
		}
		return out
	}
}

func envelopeRcpts(h *harness) []string {
	var out []string
	for _, e := range h.tr.envelopes() {
		out = append(out, e.Rcpts...)
	}
	return out
}

// TestAdminSuspendHoldsUntilResume: suspended mail is not attempted, shows
// as held in the summary, and goes at once on Resume.
func TestAdminSuspendHoldsUntilResume(t *testing.T) {
	h := newHarness(t, nil)
	h.loop.Start()
	rule := h.loop.Suspend("s1", OriginAPI, Selector{Domain: "X.test."}, "maintenance", time.Hour)
	if rule.Selector.Domain != "x.test" || !rule.Expires.Equal(h.clock.Now().Add(time.Hour)) {
		t.Fatalf("rule %+v", rule)
	}
	h.enqueue(t, newMessage("m1", h.clock.Now(), "a@x.test", "b@y.test"), "b\r\n")
	h.enqueue(t, newMessage("m2", h.clock.Now(), "c@x.test"), "b\r\n")
	h.rec.waitFor(t, 1) // y.test is not suspended
	waitUntil(t, func() bool { return h.loop.Summary("").Held == 2 })
	if got := envelopeRcpts(h); len(got) != 1 || got[0] != "b@y.test" {
		t.Fatalf("transactions while suspended: %v", got)
	}
	s := h.loop.Summary("")
	var q *QueueStatus
	for i := range s.Queues {
		if s.Queues[i].Domain == "x.test" {
			q = &s.Queues[i]
		}
	}
	if q == nil || q.Held != 2 || !q.Suspended || q.Messages != 2 || q.Recipients != 2 || q.Scheduled != 0 ||
		q.Name != "spring:acme@x.test" || s.Messages != 2 {
		t.Fatalf("summary %+v", s)
	}
	if l := h.loop.Suspensions(); len(l) != 1 || l[0].Held != 2 || l[0].Reason != "maintenance" {
		t.Fatalf("suspensions %+v", l)
	}
	if n := h.loop.HeldDepth(); n != 2 {
		t.Errorf("HeldDepth = %d, want the 2 items held", n)
	}
	info, ok := h.loop.Inspect(context.Background(), "m1")
	if !ok || len(info.Held) != 1 || info.Held[0] != "x.test" || info.Message.Recipients[1].State != queue.Delivered ||
		info.Sites["x.test"] != "mx.x.test" {
		t.Fatalf("inspect %+v %v", info, ok)
	}

	if _, ok := h.loop.Resume("s1"); !ok {
		t.Fatal("Resume: unknown id")
	}
	if _, ok := h.loop.Resume("s1"); ok {
		t.Error("second Resume of the same id succeeded")
	}
	h.rec.waitFor(t, 3)
	if want := "Delivery a@x.test,Delivery b@y.test,Delivery c@x.test"; strings.Join(h.rec.summary(), ",") != want {
		t.Errorf("records %v", h.rec.summary())
	}
	if n := len(h.loop.Suspensions()); n != 0 {
		t.Errorf("%d suspensions left", n)
	}
	if n := h.loop.HeldDepth(); n != 0 {
		t.Errorf("HeldDepth after resume = %d", n)
	}
}

// TestAdminSuspendExpires: a suspension with a duration ends by itself.
func TestAdminSuspendExpires(t *testing.T) {
	h := newHarness(t, nil)
	h.loop.Start()
	h.loop.Suspend("s1", OriginAPI, Selector{Tenant: "acme"}, "", 10*time.Minute)
	h.enqueue(t, newMessage("m1", h.clock.Now(), "a@x.test"), "b\r\n")
	waitUntil(t, func() bool { return h.loop.Summary("").Held == 1 })
	h.clock.Advance(9 * time.Minute)
	time.Sleep(20 * time.Millisecond)
	if n := len(h.tr.envelopes()); n != 0 {
		t.Fatalf("%d transactions before the suspension ended", n)
	}
	h.clock.Advance(time.Minute)
	h.rec.waitFor(t, 1)
	if r := h.rec.all()[0]; r.Type != logrec.Delivery || r.NumAttempts != 1 {
		t.Errorf("record %+v", r)
	}
}

// TestAdminSuspendSite: a suspension of a site holds items once they are
// routed there; other sites go on.
func TestAdminSuspendSite(t *testing.T) {
	h := newHarness(t, nil)
	h.route.routes["x.test"] = &resolver.Route{Domain: "x.test", Site: mxSite("mx.shared.test")}
	h.route.routes["z.test"] = &resolver.Route{Domain: "z.test", Site: mxSite("mx.shared.test")}
	h.loop.Start()
	h.loop.Suspend("s1", OriginAPI, Selector{Site: "MX.shared.test"}, "", 0)
	h.enqueue(t, newMessage("m1", h.clock.Now(), "a@x.test", "b@z.test", "c@y.test"), "b\r\n")
	h.rec.waitFor(t, 1)
	waitUntil(t, func() bool { return h.loop.Summary("").Held == 2 })
	s := h.loop.Summary("")
	suspended := false
	for _, st := range s.Sites {
		if st.Site == "mx.shared.test" {
			suspended = st.Suspended
		}
	}
	if !suspended {
		t.Errorf("site not shown suspended: %+v", s.Sites)
	}
	if got := envelopeRcpts(h); len(got) != 1 || got[0] != "c@y.test" {
		t.Fatalf("transactions %v", got)
	}
	h.loop.Resume("s1")
	h.rec.waitFor(t, 3)
}

// TestAdminBounceSweepAndRule: a bounce removes every matching queued
// recipient with an AdminBounce record, keeps the others, and while in
// force bounces new matching mail without a transaction.
func TestAdminBounceSweepAndRule(t *testing.T) {
	h := newHarness(t, nil)
	tries := deferAll(h)
	h.loop.Start()
	h.enqueue(t, newMessage("m1", h.clock.Now(), "a@x.test", "b@y.test"), "b\r\n")
	m2 := newMessage("m2", h.clock.Now(), "c@x.test")
	m2.Tenant = "other"
	h.enqueue(t, m2, "b\r\n")
	h.rec.waitFor(t, 3) // three TransientFailure records; retries in 5m

	rule := h.loop.Bounce(context.Background(), "b1", OriginAPI, Selector{Domain: "x.test", Tenant: "acme"}, "bad list", time.Hour)
	if rule.TotalBounced != 1 || rule.Bounced["spring:acme@x.test"] != 1 {
		t.Fatalf("bounce answer %+v", rule)
	}
	recs := h.rec.waitFor(t, 4)
	ab := recs[3]
	if ab.Type != logrec.AdminBounce || ab.Recipient != "a@x.test" || ab.ID != "m1" || ab.Response.Code != 551 ||
		ab.Response.EnhancedCode != "5.7.1" || ab.Response.Content != "Administrator bounced: bad list" ||
		ab.Queue != "spring:acme@x.test" || ab.Tenant != "acme" || ab.NumAttempts != 1 {
		t.Fatalf("AdminBounce record %+v", ab)
	}
	h.store.mu.Lock()
	saved := h.store.saved["m1"]
	h.store.mu.Unlock()
	if saved.Recipients[0].State != queue.Bounced || saved.Recipients[1].State != queue.Pending {
		t.Errorf("persisted %+v", saved.Recipients)
	}

	// New mail for the bounced queue: bounced when due, never attempted.
	h.enqueue(t, newMessage("m3", h.clock.Now(), "d@x.test"), "b\r\n")
	h.rec.waitFor(t, 5)
	waitUntil(t, func() bool { return h.store.removedCount("m3") == 1 })
	if tries()["d@x.test"] != 0 {
		t.Error("new mail of a bounced queue was attempted")
	}
	if l := h.loop.Bounces(); len(l) != 1 || l[0].TotalBounced != 2 {
		t.Errorf("bounces %+v", l)
	}

	// The retry of m1 carries only b@y.test; m2 (another tenant) is kept.
	h.advance(t, 5*time.Minute)
	h.rec.waitFor(t, 7)
	got := tries()
	if got["a@x.test"] != 1 || got["b@y.test"] != 2 || got["c@x.test"] != 2 {
		t.Errorf("transactions per recipient %v", got)
	}
	if _, ok := h.loop.CancelBounce("b1"); !ok {
		t.Error("CancelBounce: unknown id")
	}
	if len(h.loop.Bounces()) != 0 {
		t.Error("bounce still listed after cancel")
	}
}

// TestAdminBounceRemovesDoneMessage: a message whose every recipient is
// bounced leaves the spool and the loop at once.
func TestAdminBounceRemovesDoneMessage(t *testing.T) {
	h := newHarness(t, nil)
	deferAll(h)
	h.loop.Start()
	for i := range 3 {
		h.enqueue(t, newMessage(fmt.Sprintf("m%d", i), h.clock.Now(), "a@x.test", "b@x.test"), "b\r\n")
	}
	h.rec.waitFor(t, 6)
	r := h.loop.Bounce(context.Background(), "b1", OriginAPI, Selector{Campaign: "spring"}, "", 0)
	if r.TotalBounced != 6 || !r.Expires.IsZero() {
		t.Fatalf("answer %+v", r)
	}
	if n := h.loop.Messages(); n != 0 {
		t.Errorf("loop holds %d messages after the bounce", n)
	}
	for i := range 3 {
		if h.store.removedCount(fmt.Sprintf("m%d", i)) != 1 {
			t.Errorf("m%d not removed", i)
		}
	}
	if len(h.loop.Bounces()) != 0 {
		t.Error("a bounce without duration stays listed")
	}
	// The stale retry items finish quietly.
	h.advance(t, 5*time.Minute)
	time.Sleep(20 * time.Millisecond)
	if n := len(h.rec.all()); n != 12 {
		t.Errorf("%d records, want 6 TransientFailure + 6 AdminBounce", n)
	}
	if s := h.loop.Summary(""); len(s.Queues) != 0 || s.Messages != 0 {
		t.Errorf("summary %+v", s)
	}
}

// TestAdminSummaryCounts: scheduled and in-flight counts by queue.
func TestAdminSummaryCounts(t *testing.T) {
	h := newHarness(t, nil)
	release := make(chan struct{})
	h.tr.fn = func(_ *resolver.Route, env *outbound.Envelope) outbound.Outcome {
		<-release
		return outcomeAll(env, outbound.Delivered, reply(250, "2.0.0", "OK"))
	}
	h.loop.Start()
	m := newMessage("m1", h.clock.Now(), "a@x.test", "b@x.test")
	h.enqueue(t, m, "b\r\n")
	later := newMessage("m2", h.clock.Now(), "c@x.test")
	later.NextDue = h.clock.Now().Add(time.Hour)
	h.enqueue(t, later, "b\r\n")
	waitUntil(t, func() bool { return h.loop.Summary("").InFlight == 1 })
	s := h.loop.Summary("")
	if len(s.Queues) != 1 {
		t.Fatalf("queues %+v", s.Queues)
	}
	q := s.Queues[0]
	if q.InFlight != 1 || q.Scheduled != 1 || q.Messages != 2 || q.Recipients != 3 || q.Site != "mx.x.test" {
		t.Errorf("queue %+v", q)
	}
	close(release)
	h.rec.waitFor(t, 2)
}

func BenchmarkAdminHooksNoRules(b *testing.B) {
	var l Loop
	it := &workItem{ms: &msgState{m: &queue.Message{}}, domain: "x.test"}
	b.ReportAllocs()
	for b.Loop() {
		l.adminDue(it)
		l.adminTake(it)
		l.adminHold(it)
		l.adminDone(it)
	}
}

// TestAdminBounceBySite: a bounce naming a site finds queued mail through
// the Router, and bounces new mail once it is routed there.
func TestAdminBounceBySite(t *testing.T) {
	h := newHarness(t, nil)
	tries := deferAll(h)
	h.route.routes["x.test"] = &resolver.Route{Domain: "x.test", Site: mxSite("mx.shared.test")}
	h.route.routes["z.test"] = &resolver.Route{Domain: "z.test", Site: mxSite("mx.shared.test")}
	h.loop.Start()
	h.enqueue(t, newMessage("m1", h.clock.Now(), "a@x.test", "b@y.test"), "b\r\n")
	h.rec.waitFor(t, 2)
	r := h.loop.Bounce(context.Background(), "b1", OriginAPI, Selector{Site: "mx.shared.test"}, "", time.Hour)
	if r.TotalBounced != 1 || r.Bounced["spring:acme@x.test"] != 1 {
		t.Fatalf("answer %+v", r)
	}
	h.enqueue(t, newMessage("m2", h.clock.Now(), "c@z.test"), "b\r\n")
	recs := h.rec.waitFor(t, 4)
	last := recs[3]
	if last.Type != logrec.AdminBounce || last.Recipient != "c@z.test" || last.Site != "mx.shared.test" ||
		last.Response.Content != "Administrator bounced" {
		t.Errorf("record %+v", last)
	}
	if tries()["c@z.test"] != 0 {
		t.Error("mail to the bounced site was attempted")
	}
	// The tenant filter of the summary.
	if s := h.loop.Summary("other"); len(s.Queues) != 0 || s.Messages != 0 || s.Sites != nil {
		t.Errorf("summary of another tenant %+v", s)
	}
	// The worker that bounced c@z.test lets go of it just after the record.
	acme := func() bool {
		s := h.loop.Summary("acme")
		return len(s.Queues) == 1 && s.Queues[0].Domain == "y.test" && s.Messages == 1
	}
	waitUntil(t, acme)
}

// TestAdminBounceRuleSavesNextDue: an item whose recipients a sweep bounced
// finishes when it comes due under the bounce rule, and the message's next
// due time in the spool moves on to its other domain's retry, as it does
// when a worker finishes an item.
func TestAdminBounceRuleSavesNextDue(t *testing.T) {
	h := newHarness(t, nil)
	deferAll(h)
	h.loop.Start()
	t0 := h.clock.Now()
	m := newMessage("m1", t0, "a@x.test", "b@y.test")
	m.Recipients[1].Attempts = 1 // y.test retries after 10 min, x.test after 5
	h.enqueue(t, m, "b\r\n")
	h.rec.waitFor(t, 2)
	savedDue := func() time.Time {
		h.store.mu.Lock()
		defer h.store.mu.Unlock()
		return h.store.saved["m1"].NextDue
	}
	if d := savedDue(); !d.Equal(t0.Add(5 * time.Minute)) {
		t.Fatalf("next due %v after the first attempt, want %v", d, t0.Add(5*time.Minute))
	}
	if r := h.loop.Bounce(context.Background(), "b1", OriginAPI, Selector{Domain: "x.test"}, "", time.Hour); r.TotalBounced != 1 {
		t.Fatalf("sweep %+v", r)
	}
	h.advance(t, 5*time.Minute)
	waitUntil(t, func() bool { return savedDue().Equal(t0.Add(10 * time.Minute)) })
}
