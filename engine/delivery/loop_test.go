package delivery

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"gannet/engine/logrec"
	"gannet/engine/outbound"
	"gannet/queue"
	"gannet/queue/queuetest"
	"gannet/resolver"
	"gannet/smtpwire"
)

type harness struct {
	loop  *Loop
	store *memStore
	route *mapRouter
	tr    *funcTransport
	rec   *recorder
	met   *testMetrics
	clock *queuetest.FakeClock
}

func newHarness(t *testing.T, mod func(*Options)) *harness {
	t.Helper()
	h := &harness{
		store: newMemStore(),
		route: &mapRouter{routes: map[string]*resolver.Route{}, errs: map[string]error{}},
		tr:    &funcTransport{},
		rec:   newRecorder(),
		met:   &testMetrics{},
		clock: queuetest.NewFakeClock(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)),
	}
	o := Options{
		Store: h.store, Router: h.route, Transport: h.tr, Record: h.rec, Metrics: h.met, Clock: h.clock,
		Retry: queue.RetryPolicy{Initial: 5 * time.Minute, Max: time.Hour, MaxAge: 72 * time.Hour},
	}
	if mod != nil {
		mod(&o)
	}
	h.loop = New(o)
	t.Cleanup(func() { h.loop.Stop(context.Background()) })
	return h
}

func (h *harness) enqueue(t *testing.T, m *queue.Message, body string) {
	t.Helper()
	h.store.mu.Lock()
	h.store.bodies[m.ID] = []byte(body)
	h.store.mu.Unlock()
	if err := h.loop.Enqueue(m); err != nil {
		t.Fatal(err)
	}
}

// advance moves the fake clock once the scheduler sleeps on it.
func (h *harness) advance(t *testing.T, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for h.clock.Timers() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("scheduler never waited for a retry")
		}
		time.Sleep(time.Millisecond)
	}
	h.clock.Advance(d)
}

func TestOneTransactionPerDomain(t *testing.T) {
	h := newHarness(t, nil)
	h.loop.Start()
	m := newMessage("m1", h.clock.Now(), "a@x.test", "b@Y.TEST", "c@X.test")
	h.enqueue(t, m, "body\r\n")
	h.rec.waitFor(t, 3)
	envs := h.tr.envelopes()
	if len(envs) != 2 {
		t.Fatalf("%d transactions, want 2 (one per domain)", len(envs))
	}
	got := map[string]bool{}
	for _, e := range envs {
		got[strings.Join(e.Rcpts, ",")] = true
		if string(e.Body) != "body\r\n" || e.From != "sender@src.test" {
			t.Errorf("envelope %+v", e)
		}
	}
	if !got["a@x.test,c@X.test"] || !got["b@Y.TEST"] {
		t.Errorf("transactions %v, want a+c together and b alone", got)
	}
	if want := "Delivery a@x.test,Delivery b@Y.TEST,Delivery c@X.test"; strings.Join(h.rec.summary(), ",") != want {
		t.Errorf("records %v", h.rec.summary())
	}
	waitUntil(t, func() bool { return h.store.removedCount("m1") == 1 })
	r := h.rec.all()[0]
	if r.ID != "m1" || r.Sender != "sender@src.test" || r.Tenant != "acme" || r.Campaign != "spring" ||
		r.Response.Code != 250 || r.PeerAddress.Addr != "127.0.0.1" || r.TLSProtocolVersion != "TLSv1.3" ||
		r.NumAttempts != 1 || !strings.HasPrefix(r.Queue, "spring:acme@") || !strings.HasPrefix(r.Site, "mx.") {
		t.Errorf("record %+v", r)
	}
	if h.loop.Messages() != 0 {
		t.Errorf("loop still holds %d messages", h.loop.Messages())
	}
	h.met.mu.Lock()
	if h.met.delivered != 3 {
		t.Errorf("metrics: %d delivered", h.met.delivered)
	}
	h.met.mu.Unlock()
}

// TestBodyReleasedAfterTransaction: the store gets each body back once
// its transaction has ended (the engine reuses the buffer), and not before.
func TestBodyReleasedAfterTransaction(t *testing.T) {
	h := newHarness(t, nil)
	h.tr.fn = func(_ *resolver.Route, env *outbound.Envelope) outbound.Outcome {
		if n := len(h.store.releasedBodies()); n != 0 {
			t.Errorf("%d bodies released during a transaction", n)
		}
		out := outbound.Outcome{}
		for _, r := range env.Rcpts {
			out.Results = append(out.Results, outbound.Result{Rcpt: r, Status: outbound.Delivered, Reply: smtpwire.Reply{Code: 250}})
		}
		return out
	}
	h.loop.Start()
	h.enqueue(t, newMessage("m1", h.clock.Now(), "a@x.test"), "body\r\n")
	h.rec.waitFor(t, 1)
	waitUntil(t, func() bool { return len(h.store.releasedBodies()) == 1 })
	if got := h.store.releasedBodies(); string(got[0]) != "body\r\n" {
		t.Errorf("released %q", got)
	}
}

func TestTransientThenDelivered(t *testing.T) {
	h := newHarness(t, nil)
	var mu sync.Mutex
	attempt := 0
	h.tr.fn = func(_ *resolver.Route, env *outbound.Envelope) outbound.Outcome {
		mu.Lock()
		defer mu.Unlock()
		attempt++
		if attempt == 1 {
			return outcomeAll(env, outbound.Transient, reply(451, "4.7.1", "greylisted"))
		}
		return outcomeAll(env, outbound.Delivered, reply(250, "2.0.0", "OK"))
	}
	h.loop.Start()
	created := h.clock.Now()
	h.enqueue(t, newMessage("m1", created, "a@x.test"), "b\r\n")
	recs := h.rec.waitFor(t, 1)
	if recs[0].Type != logrec.TransientFailure || recs[0].Response.Code != 451 {
		t.Fatalf("first record %+v", recs[0])
	}
	waitUntil(t, func() bool { h.store.mu.Lock(); defer h.store.mu.Unlock(); _, ok := h.store.saved["m1"]; return ok })
	h.store.mu.Lock()
	saved := h.store.saved["m1"]
	h.store.mu.Unlock()
	if saved.Recipients[0].State != queue.Pending || saved.Recipients[0].Attempts != 1 ||
		saved.Recipients[0].LastReply != "451 4.7.1 greylisted" || !saved.NextDue.Equal(created.Add(5*time.Minute)) {
		t.Fatalf("persisted %+v, want pending, 1 attempt, due in 5m", saved)
	}
	if s, _ := h.loop.QueueDepth(); s != 1 {
		t.Errorf("scheduled depth %d, want 1", s)
	}
	h.advance(t, 4*time.Minute)
	time.Sleep(20 * time.Millisecond)
	if n := len(h.rec.all()); n != 1 {
		t.Fatalf("retried before its time: %d records", n)
	}
	h.advance(t, time.Minute)
	recs = h.rec.waitFor(t, 2)
	if recs[1].Type != logrec.Delivery || recs[1].NumAttempts != 2 {
		t.Fatalf("second record %+v", recs[1])
	}
	waitUntil(t, func() bool { return h.store.removedCount("m1") == 1 })
	h.met.mu.Lock()
	defer h.met.mu.Unlock()
	if h.met.transient != 1 || h.met.delivered != 1 || h.met.latencies[0] != 5*time.Minute {
		t.Errorf("metrics %+v", h.met)
	}
}

func TestBouncePartialAndRetryOnlyDeferred(t *testing.T) {
	h := newHarness(t, nil)
	var mu sync.Mutex
	var seen [][]string
	h.tr.fn = func(_ *resolver.Route, env *outbound.Envelope) outbound.Outcome {
		mu.Lock()
		seen = append(seen, append([]string(nil), env.Rcpts...))
		mu.Unlock()
		o := outcomeAll(env, outbound.Delivered, reply(250, "2.0.0", "OK"))
		for i, r := range env.Rcpts {
			switch {
			case strings.HasPrefix(r, "bad"):
				o.Results[i].Status, o.Results[i].Reply = outbound.Bounced, reply(550, "5.1.1", "no such user")
			case strings.HasPrefix(r, "later") && len(seen) == 1:
				o.Results[i].Status, o.Results[i].Reply = outbound.Transient, reply(452, "4.2.2", "full")
			}
		}
		return o
	}
	h.loop.Start()
	h.enqueue(t, newMessage("m1", h.clock.Now(), "ok@x.test", "bad@x.test", "later@x.test"), "b\r\n")
	h.rec.waitFor(t, 3)
	h.advance(t, 5*time.Minute)
	h.rec.waitFor(t, 4)
	if want := "Bounce bad@x.test,Delivery later@x.test,Delivery ok@x.test,TransientFailure later@x.test"; strings.Join(h.rec.summary(), ",") != want {
		t.Errorf("records %v", h.rec.summary())
	}
	mu.Lock()
	if len(seen) != 2 || strings.Join(seen[1], ",") != "later@x.test" {
		t.Errorf("transactions %v: the retry must carry only the deferred recipient", seen)
	}
	mu.Unlock()
	for _, r := range h.rec.all() {
		if r.Type == logrec.Bounce && (r.BounceClassification != "InvalidRecipient" || r.Response.EnhancedCode != "5.1.1") {
			t.Errorf("bounce record %+v", r)
		}
	}
	waitUntil(t, func() bool { return h.store.removedCount("m1") == 1 })
}

func TestExpiration(t *testing.T) {
	h := newHarness(t, func(o *Options) {
		o.Retry = queue.RetryPolicy{Initial: 10 * time.Minute, Max: time.Hour, MaxAge: time.Hour}
	})
	h.tr.fn = func(_ *resolver.Route, env *outbound.Envelope) outbound.Outcome {
		return outcomeAll(env, outbound.Transient, reply(421, "4.7.0", "try later"))
	}
	h.loop.Start()
	h.enqueue(t, newMessage("m1", h.clock.Now(), "a@x.test"), "b\r\n")
	h.rec.waitFor(t, 1) // t=0: TransientFailure, next at 10m
	h.advance(t, 10*time.Minute)
	h.rec.waitFor(t, 2) // t=10m: next at 30m
	h.advance(t, 20*time.Minute)
	recs := h.rec.waitFor(t, 3) // t=30m: next would be 70m > 1h: expire
	if recs[2].Type != logrec.Expiration || recs[2].Response.Code != 421 || recs[2].NumAttempts != 3 {
		t.Fatalf("third record %+v, want Expiration with the last reply", recs[2])
	}
	waitUntil(t, func() bool { return h.store.removedCount("m1") == 1 })
	h.met.mu.Lock()
	defer h.met.mu.Unlock()
	if h.met.expired != 1 || h.met.transient != 2 {
		t.Errorf("metrics %+v", h.met)
	}
}

// TestRequireTLSExpiryBounces: a REQUIRETLS message is delivered with
// Envelope.RequireTLS; when it is still held by a REQUIRETLS failure (451
// 4.7.10) at max_retry_age it bounces with 550 5.7.10 (RFC 8689 §5), not
// an Expiration. A message without REQUIRETLS that failed with 4.7.10 (a
// failed STARTTLS under [tls] without fallback) still expires.
func TestRequireTLSExpiryBounces(t *testing.T) {
	h := newHarness(t, func(o *Options) {
		o.Retry = queue.RetryPolicy{Initial: 10 * time.Minute, Max: time.Hour, MaxAge: time.Hour}
	})
	var mu sync.Mutex
	sawFlag := map[string]bool{}
	h.tr.fn = func(_ *resolver.Route, env *outbound.Envelope) outbound.Outcome {
		mu.Lock()
		sawFlag[env.Rcpts[0]] = env.RequireTLS
		mu.Unlock()
		return outcomeAll(env, outbound.Transient, reply(451, "4.7.10", "REQUIRETLS: mx.x.test does not offer REQUIRETLS"))
	}
	h.loop.Start()
	m := newMessage("m1", h.clock.Now(), "a@x.test")
	m.RequireTLS = true
	h.enqueue(t, m, "b\r\n")
	h.enqueue(t, newMessage("m2", h.clock.Now(), "c@y.test"), "b\r\n")
	h.rec.waitFor(t, 2)
	h.advance(t, 10*time.Minute)
	h.rec.waitFor(t, 4)
	h.advance(t, 20*time.Minute)
	recs := h.rec.waitFor(t, 6)
	byRcpt := map[string]logrec.Record{}
	for _, r := range recs[4:] {
		byRcpt[r.Recipient] = r
	}
	if r := byRcpt["a@x.test"]; r.Type != logrec.Bounce || r.Response.Code != 550 || r.Response.EnhancedCode != "5.7.10" ||
		!strings.Contains(r.Response.Content, "does not offer REQUIRETLS") {
		t.Errorf("REQUIRETLS message at expiry: %+v, want a 550 5.7.10 Bounce", r)
	}
	if r := byRcpt["c@y.test"]; r.Type != logrec.Expiration {
		t.Errorf("other message at expiry: %+v, want an Expiration", r)
	}
	mu.Lock()
	defer mu.Unlock()
	if !sawFlag["a@x.test"] || sawFlag["c@y.test"] {
		t.Errorf("Envelope.RequireTLS seen %v", sawFlag)
	}
}

// A new retry schedule (SetRetry, a config reload) applies to the next
// failure: the retry comes after the new interval, not the old one.
func TestSetRetryAppliesToNextFailure(t *testing.T) {
	h := newHarness(t, func(o *Options) {
		o.Retry = queue.RetryPolicy{Initial: time.Hour, Max: 4 * time.Hour, MaxAge: 72 * time.Hour}
	})
	h.tr.fn = func(_ *resolver.Route, env *outbound.Envelope) outbound.Outcome {
		return outcomeAll(env, outbound.Transient, reply(451, "4.3.0", "later"))
	}
	h.loop.Start()
	h.loop.SetRetry(queue.RetryPolicy{Initial: 2 * time.Minute, Max: time.Hour, MaxAge: 72 * time.Hour})
	h.enqueue(t, newMessage("m1", h.clock.Now(), "a@x.test"), "b\r\n")
	h.rec.waitFor(t, 1) // t=0: deferred, next attempt at 2m under the new schedule
	h.advance(t, 2*time.Minute)
	h.rec.waitFor(t, 2) // the old schedule would have waited an hour
}

func TestResolverErrors(t *testing.T) {
	h := newHarness(t, nil)
	h.route.errs["null.test"] = &smtpwire.Error{Reply: smtpwire.Reply{Code: 556, Enhanced: "5.1.10", Lines: []string{"domain does not accept mail: null.test"}}, Cause: resolver.ErrNullMX}
	h.route.errs["flaky.test"] = &smtpwire.Error{Reply: smtpwire.Reply{Code: 451, Enhanced: "4.4.3", Lines: []string{"temporary DNS failure: flaky.test"}}}
	h.route.errs["weird.test"] = errors.New("something odd")
	h.loop.Start()
	h.enqueue(t, newMessage("m1", h.clock.Now(), "a@null.test", "b@flaky.test", "c@weird.test", "nodomain"), "b\r\n")
	recs := h.rec.waitFor(t, 4)
	byRcpt := map[string]logrec.Record{}
	for _, r := range recs {
		byRcpt[r.Recipient] = r
	}
	if r := byRcpt["a@null.test"]; r.Type != logrec.Bounce || r.Response.Code != 556 || r.Response.EnhancedCode != "5.1.10" || r.BounceClassification != "BadDomain" {
		t.Errorf("null MX record %+v", r)
	}
	if r := byRcpt["b@flaky.test"]; r.Type != logrec.TransientFailure || r.Response.Code != 451 {
		t.Errorf("SERVFAIL record %+v", r)
	}
	if r := byRcpt["c@weird.test"]; r.Type != logrec.TransientFailure || r.Response.EnhancedCode != "4.4.3" {
		t.Errorf("unknown error record %+v", r)
	}
	if r := byRcpt["nodomain"]; r.Type != logrec.Bounce || r.Response.EnhancedCode != "5.1.3" {
		t.Errorf("no-domain record %+v", r)
	}
	if len(h.tr.envelopes()) != 0 {
		t.Error("a transaction ran without a route")
	}
	waitUntil(t, func() bool { s, _ := h.loop.QueueDepth(); return s == 2 })
}

func TestSiteConnectionLimit(t *testing.T) {
	h := newHarness(t, func(o *Options) {
		o.Limits = func(outbound.Path) outbound.Limits { return outbound.Limits{Connections: 3} }
	})
	shared := &resolver.Route{Site: mxSite("mx.shared.test")}
	for i := 0; i < 12; i++ {
		d := "d" + itoa(i) + ".test"
		h.route.routes[d] = &resolver.Route{Domain: d, Site: shared.Site}
	}
	h.tr.fn = func(_ *resolver.Route, env *outbound.Envelope) outbound.Outcome {
		time.Sleep(15 * time.Millisecond)
		return outcomeAll(env, outbound.Delivered, reply(250, "2.0.0", "OK"))
	}
	h.loop.Start()
	for i := 0; i < 12; i++ {
		h.enqueue(t, newMessage("m"+itoa(i), h.clock.Now(), "a@d"+itoa(i)+".test"), "b\r\n")
	}
	h.rec.waitFor(t, 12)
	h.tr.mu.Lock()
	defer h.tr.mu.Unlock()
	if mb := h.tr.maxBusy["mx.shared.test"]; mb > 3 || mb < 2 {
		t.Errorf("site had %d transactions at once, want 2..3 (limit 3)", mb)
	}
}

func TestHighPriorityFirst(t *testing.T) {
	h := newHarness(t, func(o *Options) {
		o.Limits = func(outbound.Path) outbound.Limits { return outbound.Limits{Connections: 1} }
	})
	for _, d := range []string{"x.test"} {
		h.route.routes[d] = &resolver.Route{Domain: d, Site: mxSite("mx.x.test")}
	}
	gate := make(chan struct{})
	var mu sync.Mutex
	var order []string
	h.tr.fn = func(_ *resolver.Route, env *outbound.Envelope) outbound.Outcome {
		mu.Lock()
		first := len(order) == 0
		order = append(order, env.Rcpts[0])
		mu.Unlock()
		if first {
			<-gate
		}
		return outcomeAll(env, outbound.Delivered, reply(250, "2.0.0", "OK"))
	}
	h.loop.Start()
	h.enqueue(t, newMessage("first", h.clock.Now(), "first@x.test"), "b\r\n")
	waitUntil(t, func() bool { mu.Lock(); defer mu.Unlock(); return len(order) == 1 })
	for i := 0; i < 4; i++ {
		h.enqueue(t, newMessage("bulk"+itoa(i), h.clock.Now(), "bulk"+itoa(i)+"@x.test"), "b\r\n")
	}
	for i := 0; i < 4; i++ {
		m := newMessage("high"+itoa(i), h.clock.Now(), "high"+itoa(i)+"@x.test")
		m.Priority = 1
		h.enqueue(t, m, "b\r\n")
	}
	waitUntil(t, func() bool { _, r := h.loop.QueueDepth(); return r == 8 })
	close(gate)
	h.rec.waitFor(t, 9)
	mu.Lock()
	defer mu.Unlock()
	// DNS lookups run in parallel, so the order within a lane is the order
	// in which routes came back; across lanes, high priority goes first.
	got := strings.Join(order, ",")
	if len(order) != 9 || order[0] != "first@x.test" {
		t.Fatalf("order %s", got)
	}
	for i, r := range order[1:] {
		if high := strings.HasPrefix(r, "high"); high != (i < 4) {
			t.Fatalf("order %s: high priority mail must go before bulk mail", got)
		}
	}
}

func TestStopLetsInFlightFinish(t *testing.T) {
	h := newHarness(t, nil)
	started := make(chan struct{})
	h.tr.fn = func(_ *resolver.Route, env *outbound.Envelope) outbound.Outcome {
		close(started)
		time.Sleep(100 * time.Millisecond)
		return outcomeAll(env, outbound.Delivered, reply(250, "2.0.0", "OK"))
	}
	h.loop.Start()
	h.enqueue(t, newMessage("m1", h.clock.Now(), "a@x.test"), "b\r\n")
	<-started
	if err := h.loop.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	if len(h.rec.all()) != 1 || h.store.removedCount("m1") != 1 {
		t.Fatalf("in-flight transaction not finished before Stop returned: %v", h.rec.summary())
	}
	if !h.tr.closed {
		t.Error("transport not closed")
	}
	if err := h.loop.Enqueue(newMessage("m2", h.clock.Now(), "a@x.test")); !errors.Is(err, ErrStopped) {
		t.Errorf("Enqueue after Stop: %v", err)
	}
}

func TestStopDeadlineAbortsTransactions(t *testing.T) {
	h := newHarness(t, nil)
	started := make(chan struct{})
	tr := &ctxTransport{started: started}
	h.loop.opts.Transport = tr
	h.loop.Start()
	h.enqueue(t, newMessage("m1", h.clock.Now(), "a@x.test"), "b\r\n")
	<-started
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := h.loop.Stop(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Stop: %v", err)
	}
	recs := h.rec.all()
	if len(recs) != 1 || recs[0].Type != logrec.TransientFailure {
		t.Fatalf("records %v", h.rec.summary())
	}
	h.store.mu.Lock()
	defer h.store.mu.Unlock()
	if s := h.store.saved["m1"]; s.Recipients[0].State != queue.Pending {
		t.Errorf("aborted recipient persisted as %v", s.Recipients[0].State)
	}
}

// ctxTransport blocks until its context ends.
type ctxTransport struct{ started chan struct{} }

func (c *ctxTransport) Deliver(ctx context.Context, _ *resolver.Route, env *outbound.Envelope) outbound.Outcome {
	close(c.started)
	<-ctx.Done()
	return outcomeAll(env, outbound.Transient, reply(451, "4.4.2", "aborted"))
}
func (c *ctxTransport) Close() error { return nil }

func TestManyDomainsOneMessage(t *testing.T) {
	h := newHarness(t, nil)
	h.loop.Start()
	var rcpts []string
	for i := 0; i < 30; i++ {
		rcpts = append(rcpts, "u@d"+itoa(i)+".test", "v@d"+itoa(i)+".test")
	}
	h.enqueue(t, newMessage("big", h.clock.Now(), rcpts...), "b\r\n")
	h.rec.waitFor(t, 60)
	waitUntil(t, func() bool { return h.store.removedCount("big") == 1 })
	if n := len(h.tr.envelopes()); n != 30 {
		t.Errorf("%d transactions, want 30", n)
	}
	h.store.mu.Lock()
	defer h.store.mu.Unlock()
	if h.store.reads != 30 {
		t.Errorf("body read %d times, want once per transaction (30)", h.store.reads)
	}
}

func TestEnqueueDuplicateAndFinished(t *testing.T) {
	h := newHarness(t, nil)
	h.loop.Start()
	m := newMessage("m1", h.clock.Now(), "a@x.test")
	h.enqueue(t, m, "b\r\n")
	h.loop.Enqueue(m) // already held: ignored
	done := newMessage("m2", h.clock.Now(), "a@x.test")
	done.Recipients[0].State = queue.Delivered
	h.loop.Enqueue(done)
	h.rec.waitFor(t, 1)
	waitUntil(t, func() bool { return h.store.removedCount("m1") == 1 && h.store.removedCount("m2") == 1 })
	time.Sleep(20 * time.Millisecond)
	if n := len(h.tr.envelopes()); n != 1 {
		t.Errorf("%d transactions, want 1", n)
	}
}

func TestRelayToSkipsDNS(t *testing.T) {
	h := newHarness(t, func(o *Options) { o.RelayTo = "127.0.0.1:2525"; o.Router = nil })
	var sites []string
	var mu sync.Mutex
	h.tr.fn = func(r *resolver.Route, env *outbound.Envelope) outbound.Outcome {
		mu.Lock()
		sites = append(sites, r.Site.String())
		mu.Unlock()
		return outcomeAll(env, outbound.Delivered, reply(250, "2.0.0", "OK"))
	}
	h.loop.Start()
	h.enqueue(t, newMessage("m1", h.clock.Now(), "a@x.test", "b@y.test"), "b\r\n")
	h.rec.waitFor(t, 2)
	mu.Lock()
	defer mu.Unlock()
	if len(sites) != 2 || sites[0] != "127.0.0.1:2525" || sites[1] != "127.0.0.1:2525" {
		t.Errorf("sites %v", sites)
	}
}

func TestQueueName(t *testing.T) {
	for _, c := range []struct{ camp, tenant, dom, want string }{
		{"", "", "x.test", "x.test"},
		{"", "acme", "x.test", "acme@x.test"},
		{"spring", "acme", "x.test", "spring:acme@x.test"},
		{"spring", "", "x.test", "spring:x.test"},
	} {
		if got := QueueName(c.camp, c.tenant, c.dom); got != c.want {
			t.Errorf("QueueName(%q,%q,%q) = %q, want %q", c.camp, c.tenant, c.dom, got, c.want)
		}
		// Every delivery record names its queue: one allocation at most.
		if n := testing.AllocsPerRun(10, func() { _ = QueueName(c.camp, c.tenant, c.dom) }); n > 1 {
			t.Errorf("QueueName(%q,%q,%q): %v allocations, want at most 1", c.camp, c.tenant, c.dom, n)
		}
	}
}

func waitUntil(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met in time")
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func itoa(i int) string {
	if i < 10 {
		return string(rune('0' + i))
	}
	return itoa(i/10) + string(rune('0'+i%10))
}
