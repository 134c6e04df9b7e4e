package delivery

import (
	"context"
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

const xferTo = "127.0.0.1:2526"

// xferWorld answers every transaction to the xfer target with target, and
// every other with 451; it counts the transactions per site.
func xferWorld(h *harness, target smtpwire.Reply) func() map[string]int {
	var mu sync.Mutex
	sites := map[string]int{}
	h.tr.fn = func(rt *resolver.Route, env *outbound.Envelope) outbound.Outcome {
		mu.Lock()
		sites[rt.Site.String()]++
		mu.Unlock()
		if rt.Site == resolver.RelaySite(xferTo) {
			st := outbound.Delivered
			switch {
			case target.Code >= 500:
				st = outbound.Bounced
			case target.Code >= 400:
				st = outbound.Transient
			}
			return outcomeAll(env, st, target)
		}
		return outcomeAll(env, outbound.Transient, reply(451, "4.3.0", "later"))
	}
	return func() map[string]int {
		mu.Lock()
		defer mu.Unlock()
		out := map[string]int{}
		for k, v := range sites {
			out[k] = v
		}
		return out
	}
}

func recordsOf(h *harness, typ logrec.Type) []logrec.Record {
	var out []logrec.Record
	for _, r := range h.rec.all() {
		if r.Type == typ {
			out = append(out, r)
		}
	}
	return out
}

// TestXferHandsDeferredMailToTarget: mail deferred by its MX is due at
// once when an xfer rule for its domain is made, goes to the target with
// its envelope and body, and is settled by the target's 250 as XferOut
// (the target as its site), not as a delivery; mail of other domains
// stays deferred, and new matching mail goes to the target directly.
func TestXferHandsDeferredMailToTarget(t *testing.T) {
	h := newHarness(t, nil)
	sites := xferWorld(h, reply(250, "2.0.0", "OK id=abc"))
	h.loop.Start()
	m := newMessage("m1", h.clock.Now(), "a@x.test", "b@y.test")
	h.enqueue(t, m, "Subject: hi\r\n\r\nbody\r\n")
	h.rec.waitFor(t, 2) // both deferred, retry in 5 minutes

	rule, res := h.loop.Xfer(context.Background(), "x1", Selector{Domain: "X.test"}, xferTo, "retiring")
	if rule.Target != xferTo || rule.Selector.Domain != "x.test" || res.Messages != 1 || res.Recipients != 1 {
		t.Fatalf("Xfer: %+v %+v", rule, res)
	}
	waitUntil(t, func() bool { return len(recordsOf(h, logrec.XferOut)) == 1 })
	x := recordsOf(h, logrec.XferOut)[0]
	if x.Recipient != "a@x.test" || x.Site != xferTo || x.Response.Code != 250 || x.ID != "m1" {
		t.Errorf("XferOut record %+v", x)
	}
	envs := h.tr.envelopes()
	last := envs[len(envs)-1]
	if last.From != m.From || len(last.Rcpts) != 1 || last.Rcpts[0] != "a@x.test" || string(last.Body) != "Subject: hi\r\n\r\nbody\r\n" {
		t.Errorf("the transaction to the target: %+v", last)
	}
	h.met.mu.Lock()
	delivered := h.met.delivered
	h.met.mu.Unlock()
	if delivered != 0 {
		t.Errorf("delivered metric %d after a transfer, want 0", delivered)
	}
	info, ok := h.loop.Inspect(context.Background(), "m1")
	if !ok || info.Message.Recipients[0].State != queue.Delivered || info.Message.Recipients[1].State != queue.Pending {
		t.Fatalf("m1 after the transfer: %+v", info.Message.Recipients)
	}

	// New mail for x.test goes straight to the target.
	h.enqueue(t, newMessage("m2", h.clock.Now(), "c@x.test"), "b\r\n")
	waitUntil(t, func() bool { return len(recordsOf(h, logrec.XferOut)) == 2 })
	if got := sites(); got["mx.x.test"] != 1 || got["mx.y.test"] != 1 || got[xferTo] != 2 {
		t.Errorf("transactions per site: %v", got)
	}
	if l := h.loop.Xfers(); len(l) != 1 || l[0].ID != "x1" || l[0].Target != xferTo || l[0].Reason != "retiring" {
		t.Errorf("Xfers: %+v", l)
	}
}

// TestXferTargetRefusalStaysQueued: a 5xx from the target is its refusal
// of the transfer, not the recipient's bounce: the recipient is deferred
// (TransientFailure, 451) and stays queued; once the rule is cancelled its
// retry goes to its own MX again.
func TestXferTargetRefusalStaysQueued(t *testing.T) {
	h := newHarness(t, nil)
	sites := xferWorld(h, reply(550, "5.7.1", "relay denied"))
	h.loop.Start()
	h.loop.Xfer(context.Background(), "x1", Selector{Domain: "x.test"}, xferTo, "")
	h.enqueue(t, newMessage("m1", h.clock.Now(), "a@x.test"), "b\r\n")
	recs := h.rec.waitFor(t, 1)
	if r := recs[0]; r.Type != logrec.TransientFailure || r.Response.Code != 451 || !strings.Contains(r.Response.Content, "refused the transfer") ||
		!strings.Contains(r.Response.Content, "550 5.7.1 relay denied") || r.Site != xferTo {
		t.Fatalf("record of the refused transfer: %+v", r)
	}
	h.met.mu.Lock()
	bounced := h.met.bounced
	h.met.mu.Unlock()
	if bounced != 0 {
		t.Fatalf("bounced %d", bounced)
	}
	if _, ok := h.loop.CancelXfer("x1"); !ok {
		t.Fatal("CancelXfer: unknown")
	}
	if _, ok := h.loop.CancelXfer("x1"); ok {
		t.Fatal("CancelXfer twice: true")
	}
	h.advance(t, 6*time.Minute)
	h.rec.waitFor(t, 2)
	if got := sites(); got[xferTo] != 1 || got["mx.x.test"] != 1 {
		t.Errorf("transactions per site: %v; want one to the target, then one to the MX", got)
	}
}

// TestXferReroutesHeldMail: mail routed to its MX and then held by a
// suspension of that site keeps its route while it waits; when the
// suspension ends under an xfer rule, it goes to the target instead.
func TestXferReroutesHeldMail(t *testing.T) {
	h := newHarness(t, nil)
	sites := xferWorld(h, reply(250, "2.0.0", "OK"))
	h.loop.Start()
	h.loop.Suspend("s1", OriginAPI, Selector{Site: "mx.x.test"}, "", 0)
	h.enqueue(t, newMessage("m1", h.clock.Now(), "a@x.test"), "b\r\n")
	waitUntil(t, func() bool { return h.loop.Summary("").Held == 1 })
	h.loop.Xfer(context.Background(), "x1", Selector{Domain: "x.test"}, xferTo, "")
	h.loop.Resume("s1")
	waitUntil(t, func() bool { return len(recordsOf(h, logrec.XferOut)) == 1 })
	if got := sites(); got[xferTo] != 1 || got["mx.x.test"] != 0 {
		t.Errorf("transactions per site: %v", got)
	}
}

// TestXferRuleKeptNotShared: an xfer rule is stored with the admin rules
// (restored with its target after a restart, deleted when cancelled) and
// never shared with a cluster, nor taken from one.
func TestXferRuleKeptNotShared(t *testing.T) {
	rules, w := &memRules{}, &wire{}
	h := newHarness(t, func(o *Options) { o.Rules, o.Shared = rules, w })
	h.loop.Xfer(context.Background(), "x1", Selector{Tenant: "acme"}, xferTo, "retiring")
	if got := rules.keys(); !equalStrings(got, []string{"xfer/x1"}) {
		t.Fatalf("stored %v", got)
	}
	if len(w.ops) != 0 || len(h.loop.SharedRules()) != 0 {
		t.Fatalf("shared: %v %v", w.ops, h.loop.SharedRules())
	}
	h.loop.Stop(context.Background())

	h2 := newHarness(t, func(o *Options) {
		o.Rules = rules
		o.Clock = queuetest.NewFakeClock(h.clock.Now().Add(time.Hour))
	})
	if n, err := h2.loop.RestoreRules(); n != 1 || err != nil {
		t.Fatalf("RestoreRules: %d %v", n, err)
	}
	l := h2.loop.Xfers()
	if len(l) != 1 || l[0].ID != "x1" || l[0].Target != xferTo || l[0].Selector.Tenant != "acme" || l[0].Reason != "retiring" ||
		!l[0].Created.Equal(h.clock.Now()) {
		t.Fatalf("Xfers after restart: %+v", l)
	}
	if !h2.loop.XferTarget(xferTo) || h2.loop.XferTarget("127.0.0.1:25") {
		t.Error("XferTarget")
	}
	h2.loop.CancelXfer("x1")
	if got := rules.keys(); len(got) != 0 {
		t.Errorf("stored after the cancel: %v", got)
	}
	// A node never takes an xfer rule from the cluster.
	v, _ := encodeRule(ruleXfer, &AdminRule{ID: "x2", Selector: Selector{Domain: "x.test"}, Target: xferTo})
	h2.loop.ApplySharedRule("xfer/x2", v)
	if l := h2.loop.Xfers(); len(l) != 0 {
		t.Errorf("an xfer rule taken from the cluster: %+v", l)
	}
}

// TestXferBySite: a rule naming a site matches after the MX lookup, on the
// site found: mail of domains hosted there goes to the target, the rest to
// its MX hosts.
func TestXferBySite(t *testing.T) {
	h := newHarness(t, nil)
	h.route.routes["x.test"] = &resolver.Route{Domain: "x.test", Site: mxSite("mx.shared.test")}
	h.route.routes["z.test"] = &resolver.Route{Domain: "z.test", Site: mxSite("mx.shared.test")}
	sites := xferWorld(h, reply(250, "2.0.0", "OK"))
	h.loop.Start()
	h.loop.Xfer(context.Background(), "x1", Selector{Site: "MX.shared.test"}, xferTo, "")
	h.enqueue(t, newMessage("m1", h.clock.Now(), "a@x.test", "b@y.test", "c@z.test"), "b\r\n")
	h.rec.waitFor(t, 3)
	if got := h.rec.summary(); !equalStrings(got, []string{"TransientFailure b@y.test", "XferOut a@x.test", "XferOut c@z.test"}) {
		t.Fatalf("records %v", got)
	}
	if got := sites(); got[xferTo] != 2 || got["mx.y.test"] != 1 || got["mx.shared.test"] != 0 {
		t.Errorf("transactions per site: %v", got)
	}
}
