package delivery

import (
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"gannet/engine/logrec"
	"gannet/engine/outbound"
	"gannet/engine/shaping"
	"gannet/queue"
	"gannet/resolver"
)

// TestTenantRateDoesNotBlockOthers: a tenant over its message rate waits in
// the scheduled queue; the other tenant's mail to the same site, queued
// behind it, goes at once, and the noisy tenant's mail is paced.
func TestTenantRateDoesNotBlockOthers(t *testing.T) {
	h := newHarness(t, func(o *Options) {
		o.Clock = queue.SystemClock()
		o.Limits = func(outbound.Path) outbound.Limits { return outbound.Limits{Connections: 2} }
		o.TenantRate = func(tenant string) float64 {
			if tenant == "noisy" {
				return 10 // per second
			}
			return 0
		}
	})
	h.route.routes["x.test"] = &resolver.Route{Domain: "x.test", Site: mxSite("mx.x.test")}
	var mu sync.Mutex
	sent := map[string]time.Time{}
	h.tr.fn = func(_ *resolver.Route, env *outbound.Envelope) outbound.Outcome {
		mu.Lock()
		sent[env.Rcpts[0]] = time.Now()
		mu.Unlock()
		return outcomeAll(env, outbound.Delivered, reply(250, "2.0.0", "OK"))
	}
	start := time.Now()
	h.loop.Start()
	for i := 0; i < 15; i++ {
		m := newMessage("n"+itoa(i), time.Now(), "noisy"+itoa(i)+"@x.test")
		m.Tenant = "noisy"
		h.enqueue(t, m, "b\r\n")
	}
	for i := 0; i < 10; i++ {
		m := newMessage("q"+itoa(i), time.Now(), "quiet"+itoa(i)+"@x.test")
		m.Tenant = "quiet"
		h.enqueue(t, m, "b\r\n")
	}
	h.rec.waitFor(t, 25)
	mu.Lock()
	defer mu.Unlock()
	var lastQuiet, lastNoisy time.Duration
	for r, at := range sent {
		d := at.Sub(start)
		if strings.HasPrefix(r, "quiet") {
			lastQuiet = max(lastQuiet, d)
		} else {
			lastNoisy = max(lastNoisy, d)
		}
	}
	if lastQuiet > 500*time.Millisecond {
		t.Errorf("the quiet tenant's mail took %v: the noisy tenant's rate held it up", lastQuiet)
	}
	// 15 messages at 10/s: the last one no sooner than 1.4 s after the first.
	if lastNoisy < 1300*time.Millisecond {
		t.Errorf("the noisy tenant's 15 messages went within %v, faster than 10/s", lastNoisy)
	}
}

// TestSuspendRuleHoldsSite: a reply matching a suspend rule stops delivery
// to the site; the items wait (no attempt counted, no records) and go when
// the suspension ends.
func TestSuspendRuleHoldsSite(t *testing.T) {
	sh := shaping.New(shaping.Config{
		Base:    func(string, []string) outbound.Limits { return outbound.Limits{Connections: 1} },
		Backoff: shaping.Backoff{Disabled: true},
		Rules: []shaping.Rule{{Regex: regexp.MustCompile(`\[TS03\]`), Action: shaping.Suspend,
			Duration: 600 * time.Millisecond}},
	})
	h := newHarness(t, func(o *Options) {
		o.Clock = queue.SystemClock()
		o.Shaper = sh
		o.Retry = queue.RetryPolicy{Initial: 50 * time.Millisecond, Max: time.Second, MaxAge: time.Hour}
	})
	h.route.routes["x.test"] = &resolver.Route{Domain: "x.test", Site: mxSite("mx.x.test")}
	var mu sync.Mutex
	var times []time.Time
	h.tr.fn = func(_ *resolver.Route, env *outbound.Envelope) outbound.Outcome {
		mu.Lock()
		defer mu.Unlock()
		times = append(times, time.Now())
		if len(times) == 1 {
			return outcomeAll(env, outbound.Transient, reply(421, "4.7.0", "[TS03] unusual traffic"))
		}
		return outcomeAll(env, outbound.Delivered, reply(250, "2.0.0", "OK"))
	}
	h.loop.Start()
	t0 := time.Now()
	for i := 0; i < 5; i++ {
		h.enqueue(t, newMessage("m"+itoa(i), time.Now(), "r"+itoa(i)+"@x.test"), "b\r\n")
	}
	recs := h.rec.waitFor(t, 6) // one TransientFailure, five Delivery
	mu.Lock()
	defer mu.Unlock()
	if len(times) != 6 {
		t.Fatalf("%d transactions, want 6 (one throttled, then five)", len(times))
	}
	if d := times[1].Sub(t0); d < 550*time.Millisecond {
		t.Errorf("second transaction %v after the start: the site was not suspended", d)
	}
	n := 0
	for _, r := range recs {
		if r.Type == logrec.TransientFailure {
			n++
		}
		if r.Type == logrec.Delivery && r.NumAttempts > 2 {
			t.Errorf("%s: %d attempts; waiting for a suspension must not count", r.Recipient, r.NumAttempts)
		}
	}
	if n != 1 {
		t.Errorf("%d TransientFailure records, want 1", n)
	}
	if st := h.loop.Sites(); len(st) != 1 || st[0].Site != "mx.x.test" || st[0].Suspended {
		t.Errorf("Sites after the suspension: %+v", st)
	}
}

// TestBounceRule: a reply matching a bounce rule bounces that transaction's
// deferred recipients and the site's queued items for the rule's duration,
// without transactions.
func TestBounceRule(t *testing.T) {
	sh := shaping.New(shaping.Config{
		Base:    func(string, []string) outbound.Limits { return outbound.Limits{Connections: 1} },
		Backoff: shaping.Backoff{Disabled: true},
		Rules: []shaping.Rule{{Domains: []string{"x.test"}, Regex: regexp.MustCompile(`blocked`),
			Action: shaping.Bounce, Duration: time.Hour}},
	})
	h := newHarness(t, func(o *Options) { o.Shaper = sh })
	h.route.routes["x.test"] = &resolver.Route{Domain: "x.test", Site: mxSite("mx.x.test")}
	h.tr.fn = func(_ *resolver.Route, env *outbound.Envelope) outbound.Outcome {
		return outcomeAll(env, outbound.Transient, reply(451, "4.7.1", "you are blocked"))
	}
	h.loop.Start()
	h.enqueue(t, newMessage("m0", h.clock.Now(), "a@x.test"), "b\r\n")
	h.rec.waitFor(t, 1)
	for i := 1; i < 4; i++ {
		h.enqueue(t, newMessage("m"+itoa(i), h.clock.Now(), "r"+itoa(i)+"@x.test"), "b\r\n")
	}
	recs := h.rec.waitFor(t, 4)
	for _, r := range recs {
		if r.Type != logrec.Bounce || r.Response.Code != 550 || r.Response.EnhancedCode != "5.7.1" ||
			!strings.Contains(r.Response.Content, "blocked") {
			t.Errorf("record %s %s %d %s %q, want a Bounce 550 5.7.1 quoting the reply", r.Type, r.Recipient,
				r.Response.Code, r.Response.EnhancedCode, r.Response.Content)
		}
	}
	if n := len(h.tr.envelopes()); n != 1 {
		t.Errorf("%d transactions, want 1: the bounce rule bounces the rest without one", n)
	}
}

// TestEgressChoiceSplitsPaths: items of tenants on different egress
// sources go to separate paths (ready queues), each with its own
// connection limit, and the transport is told the source.
func TestEgressChoiceSplitsPaths(t *testing.T) {
	h := newHarness(t, func(o *Options) {
		o.Limits = func(outbound.Path) outbound.Limits { return outbound.Limits{Connections: 1} }
		o.Egress = func(tenant, _, _ string) outbound.Source {
			return outbound.Source{Name: "ip-" + tenant}
		}
	})
	h.route.routes["x.test"] = &resolver.Route{Domain: "x.test", Site: mxSite("mx.x.test")}
	var mu sync.Mutex
	sources := map[string]string{}
	gate := make(chan struct{})
	h.tr.fn = func(_ *resolver.Route, env *outbound.Envelope) outbound.Outcome {
		mu.Lock()
		sources[env.Rcpts[0]] = env.Source.Name
		mu.Unlock()
		<-gate
		return outcomeAll(env, outbound.Delivered, reply(250, "2.0.0", "OK"))
	}
	h.loop.Start()
	for _, tenant := range []string{"a", "b"} {
		m := newMessage("m"+tenant, h.clock.Now(), tenant+"@x.test")
		m.Tenant = tenant
		h.enqueue(t, m, "b\r\n")
	}
	// With one connection per path, both transactions run at once only if
	// they are on two paths.
	waitUntil(t, func() bool { mu.Lock(); defer mu.Unlock(); return len(sources) == 2 })
	close(gate)
	h.rec.waitFor(t, 2)
	if sources["a@x.test"] != "ip-a" || sources["b@x.test"] != "ip-b" {
		t.Errorf("sources %v", sources)
	}
	st := h.loop.Sites()
	if len(st) != 2 || st[0].Source != "ip-a" || st[1].Source != "ip-b" {
		t.Errorf("Sites %+v, want one path per source", st)
	}
}

// TestRelayToIsNoMXHost: with relay_to every domain goes to the smarthost
// without a DNS lookup, so no MX host of the domain is known: shaping asks
// its configuration for the domain with no MX host names, rather than
// with the smarthost's "host:port" taken for one.
func TestRelayToIsNoMXHost(t *testing.T) {
	const relay = "smtp.relay.test:2525"
	var mu sync.Mutex
	var asked [][]string
	h := newHarness(t, func(o *Options) {
		o.RelayTo = relay
		o.Shaper = shaping.New(shaping.Config{Base: func(domain string, mxHosts []string) outbound.Limits {
			mu.Lock()
			asked = append(asked, mxHosts)
			mu.Unlock()
			return outbound.Limits{Connections: 2}
		}})
	})
	h.loop.Start()
	h.enqueue(t, newMessage("m1", h.clock.Now(), "a@x.test"), "b\r\n")
	if r := h.rec.waitFor(t, 1)[0]; r.Type != logrec.Delivery || r.Site != relay {
		t.Fatalf("record %+v", r)
	}
	if st := h.loop.Sites(); len(st) != 1 || st[0].Site != relay || st[0].Connections != 2 {
		t.Errorf("sites %+v", st)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(asked) == 0 {
		t.Fatal("the shaping configuration was never asked")
	}
	for _, hosts := range asked {
		if len(hosts) != 0 {
			t.Errorf("shaping took %q for the MX host names of x.test", hosts)
		}
	}
}
