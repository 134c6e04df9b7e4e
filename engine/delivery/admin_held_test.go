package delivery

import (
	"context"
	"testing"
	"time"
)

// TestAdminBounceOfHeldMail: mail held by a suspension and then bounced by
// an operator is no longer counted as held — not in the summary, not in
// the suspension's list, not in inspect — while the suspension is still in
// force; mail of the same message to another domain stays held.
func TestAdminBounceOfHeldMail(t *testing.T) {
	h := newHarness(t, nil)
	h.loop.Start()
	h.loop.Suspend("s1", OriginAPI, Selector{Tenant: "acme"}, "", time.Hour)
	h.enqueue(t, newMessage("m1", h.clock.Now(), "a@x.test"), "b\r\n")
	h.enqueue(t, newMessage("m2", h.clock.Now(), "b@x.test", "c@y.test"), "b\r\n")
	waitUntil(t, func() bool { return h.loop.Summary("").Held == 3 })

	r := h.loop.Bounce(context.Background(), "b1", OriginAPI, Selector{Domain: "x.test"}, "gone", 0)
	if r.TotalBounced != 2 {
		t.Fatalf("bounced %d, want 2", r.TotalBounced)
	}
	s := h.loop.Summary("")
	if s.Held != 1 || s.Messages != 1 || s.Recipients != 1 {
		t.Errorf("summary after the bounce: held %d, messages %d, recipients %d; want 1, 1, 1", s.Held, s.Messages, s.Recipients)
	}
	for _, q := range s.Queues {
		if q.Domain == "x.test" {
			t.Errorf("x.test still in the summary: %+v", q)
		}
	}
	if l := h.loop.Suspensions(); len(l) != 1 || l[0].Held != 1 {
		t.Errorf("suspensions after the bounce: %+v; want one holding 1", l)
	}
	if info, ok := h.loop.Inspect(context.Background(), "m2"); !ok || len(info.Held) != 1 || info.Held[0] != "y.test" {
		t.Errorf("inspect m2: %+v %v; want y.test held", info.Held, ok)
	}
	if _, ok := h.loop.Inspect(context.Background(), "m1"); ok {
		t.Error("m1 still queued after its only recipient bounced")
	}

	// Resuming delivers what is left, once, and nothing of what bounced.
	h.loop.Resume("s1")
	h.rec.waitFor(t, 3)
	if got := envelopeRcpts(h); len(got) != 1 || got[0] != "c@y.test" {
		t.Errorf("transactions after resume: %v", got)
	}
	waitUntil(t, func() bool { return h.loop.Messages() == 0 })
}
