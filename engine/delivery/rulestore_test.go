package delivery

import (
	"context"
	"sort"
	"sync"
	"testing"
	"time"

	"gannet/queue/queuetest"
)

// memRules is a RuleStore in memory, shared by two loops as the spool is
// shared by two runs of the engine.
type memRules struct {
	mu sync.Mutex
	m  map[string][]byte
}

func (s *memRules) PutAdminState(k string, v []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil {
		s.m = map[string][]byte{}
	}
	s.m[k] = append([]byte(nil), v...)
	return nil
}

func (s *memRules) DeleteAdminState(k string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.m, k)
	return nil
}

func (s *memRules) AdminStates(fn func(string, []byte) error) error {
	s.mu.Lock()
	keys := make([]string, 0, len(s.m))
	for k := range s.m {
		keys = append(keys, k)
	}
	s.mu.Unlock()
	sort.Strings(keys)
	for _, k := range keys {
		s.mu.Lock()
		v := s.m[k]
		s.mu.Unlock()
		if err := fn(k, v); err != nil {
			return err
		}
	}
	return nil
}

func (s *memRules) keys() []string {
	var out []string
	s.AdminStates(func(k string, _ []byte) error { out = append(out, k); return nil })
	return out
}

// TestAdminRulesRestored: suspensions and bounces in force are stored with
// their origin and expiry, come back in force in a new loop over the same
// store (ids, origins, expiry kept), and those that ended — resumed,
// cancelled, expired meanwhile — do not.
func TestAdminRulesRestored(t *testing.T) {
	rules := &memRules{}
	withRules := func(o *Options) { o.Rules = rules }
	h := newHarness(t, withRules)
	h.loop.Start()
	h.loop.Suspend("s-api", OriginAPI, Selector{Domain: "x.test"}, "maintenance", time.Hour)
	h.loop.Suspend("s-forever", OriginAPI, Selector{Tenant: "other"}, "", 0)
	h.loop.Suspend("s-policy", OriginPolicy, Selector{Site: "mx.y.test"}, "421 storm", 5*time.Minute)
	h.loop.Suspend("s-resumed", OriginAPI, Selector{Domain: "z.test"}, "", time.Hour)
	h.loop.Resume("s-resumed")
	h.loop.Bounce(context.Background(), "b-api", OriginAPI, Selector{Campaign: "junk"}, "bad list", 2*time.Hour)
	h.loop.Bounce(context.Background(), "b-sweep", OriginAPI, Selector{Campaign: "old"}, "", 0) // the sweep only: nothing stored
	h.loop.Bounce(context.Background(), "b-cancelled", OriginAPI, Selector{Campaign: "x"}, "", time.Hour)
	h.loop.CancelBounce("b-cancelled")
	want := []string{"bounce/b-api", "suspend/s-api", "suspend/s-forever", "suspend/s-policy"}
	if got := rules.keys(); !equalStrings(got, want) {
		t.Fatalf("stored %v, want %v", got, want)
	}
	h.loop.Stop(context.Background())

	// A restart 10 minutes later: s-policy has expired meanwhile.
	h2 := newHarness(t, func(o *Options) {
		o.Rules = rules
		o.Clock = queuetest.NewFakeClock(h.clock.Now().Add(10 * time.Minute))
	})
	h2.clock = h2.loop.clock.(*queuetest.FakeClock)
	n, err := h2.loop.RestoreRules()
	if err != nil || n != 3 {
		t.Fatalf("RestoreRules: %d, %v; want 3", n, err)
	}
	if got := rules.keys(); !equalStrings(got, []string{"bounce/b-api", "suspend/s-api", "suspend/s-forever"}) {
		t.Errorf("stored after the restore: %v", got)
	}
	sus := h2.loop.Suspensions()
	if len(sus) != 2 || sus[0].ID != "s-api" || sus[0].Origin != OriginAPI || sus[0].Reason != "maintenance" ||
		!sus[0].Expires.Equal(h.clock.Now().Add(time.Hour)) || sus[1].ID != "s-forever" || !sus[1].Expires.IsZero() {
		t.Fatalf("suspensions after restart: %+v", sus)
	}
	if b := h2.loop.Bounces(); len(b) != 1 || b[0].ID != "b-api" || b[0].Selector.Campaign != "junk" || b[0].Reason != "bad list" {
		t.Fatalf("bounces after restart: %+v", b)
	}

	// The restored suspension holds mail until its expiry, then lets it go.
	h2.loop.Start()
	h2.enqueue(t, newMessage("m1", h2.clock.Now(), "a@x.test"), "b\r\n")
	waitUntil(t, func() bool { return h2.loop.Summary("").Held == 1 })
	if n := len(h2.tr.envelopes()); n != 0 {
		t.Fatalf("%d transactions while suspended", n)
	}
	h2.clock.Advance(50 * time.Minute)
	h2.rec.waitFor(t, 1)
	if got := rules.keys(); !equalStrings(got, []string{"bounce/b-api", "suspend/s-forever"}) {
		t.Errorf("stored after the suspension expired: %v", got)
	}
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// wire is a RuleSharer that records what a loop shares.
type wire struct {
	mu  sync.Mutex
	ops []string // "put KEY" / "delete KEY"
	put map[string][]byte
}

func (w *wire) Put(key string, v []byte, _ time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.ops = append(w.ops, "put "+key)
	if w.put == nil {
		w.put = map[string][]byte{}
	}
	w.put[key] = v
}

func (w *wire) Delete(key string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.ops = append(w.ops, "delete "+key)
}

// TestSharedRules: the rules one loop shares (Options.Shared), applied to
// another loop, are in force there as they are where they were made (id,
// origin, reason, expiry), are stored there, hold and bounce its mail,
// and end there when dropped.
func TestSharedRules(t *testing.T) {
	w := &wire{}
	a := newHarness(t, func(o *Options) { o.Shared = w })
	a.loop.Start()
	rulesB := &memRules{}
	b := newHarness(t, func(o *Options) { o.Rules = rulesB })
	b.loop.Start()
	b.enqueue(t, newMessage("m-junk", b.clock.Now(), "a@junk.test"), "b\r\n")
	waitUntil(t, func() bool { return len(b.rec.all()) == 1 }) // delivered: no rule yet

	a.loop.Suspend("s1", OriginPolicy, Selector{Domain: "x.test"}, "421 storm", time.Hour)
	a.loop.Hold("h1", OriginAPI, Selector{Tenant: "t1"}, nil, "")
	a.loop.Bounce(context.Background(), "b1", OriginAPI, Selector{Domain: "bad.test"}, "gone", time.Hour)
	a.loop.Resume("s-unknown")
	if got := w.ops; !equalStrings(got, []string{"put suspend/s1", "put hold/h1", "put bounce/b1"}) {
		t.Fatalf("shared %v", got)
	}
	shared := a.loop.SharedRules()
	if len(shared) != 3 {
		t.Fatalf("SharedRules: %d rules, want 3", len(shared))
	}
	for k, v := range w.put {
		b.loop.ApplySharedRule(k, v)
		b.loop.ApplySharedRule(k, v) // twice: once in force
	}
	if got := rulesB.keys(); !equalStrings(got, []string{"bounce/b1", "hold/h1", "suspend/s1"}) {
		t.Errorf("stored on b: %v", got)
	}
	sus := b.loop.Suspensions()
	if len(sus) != 1 || sus[0].ID != "s1" || sus[0].Origin != OriginPolicy || sus[0].Reason != "421 storm" ||
		!sus[0].Expires.Equal(a.clock.Now().Add(time.Hour)) {
		t.Fatalf("suspensions on b: %+v", sus)
	}
	if len(b.loop.Holds()) != 1 || len(b.loop.Bounces()) != 1 {
		t.Fatalf("holds %+v, bounces %+v on b", b.loop.Holds(), b.loop.Bounces())
	}
	b.enqueue(t, newMessage("m-x", b.clock.Now(), "a@x.test"), "b\r\n")
	b.enqueue(t, newMessage("m-bad", b.clock.Now(), "a@bad.test"), "b\r\n")
	waitUntil(t, func() bool { return b.loop.Summary("").Held == 1 })
	waitUntil(t, func() bool { return len(b.rec.all()) == 2 })
	if got := b.rec.summary(); !equalStrings(got, []string{"AdminBounce a@bad.test", "Delivery a@junk.test"}) {
		t.Fatalf("records on b: %v", got)
	}
	if n := len(b.tr.envelopes()); n != 1 {
		t.Fatalf("%d transactions on b, want 1 (before the rules)", n)
	}

	for k := range w.put {
		b.loop.DropSharedRule(k)
	}
	b.loop.DropSharedRule("suspend/nosuch")
	if got := rulesB.keys(); len(got) != 0 {
		t.Errorf("stored on b after the drops: %v", got)
	}
	waitUntil(t, func() bool { return len(b.tr.envelopes()) == 2 }) // m-x goes
}
