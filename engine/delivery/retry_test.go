package delivery

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"gannet/engine/logrec"
	"gannet/engine/outbound"
	"gannet/queue"
	"gannet/resolver"
)

// TestRetryNow: deferred mail to the selected domain is attempted at once,
// not at its retry time, with its attempt counts kept — both a message
// waiting whole for its one retry and a message with retries at two
// domains; mail to other domains keeps its retry time, and the replaced
// schedule entries never make a second transaction.
func TestRetryNow(t *testing.T) {
	h := newHarness(t, nil)
	var up atomic.Bool
	var tx atomic.Int32
	h.tr.fn = func(_ *resolver.Route, env *outbound.Envelope) outbound.Outcome {
		tx.Add(1)
		if up.Load() {
			return outcomeAll(env, outbound.Delivered, reply(250, "2.0.0", "ok"))
		}
		return outcomeAll(env, outbound.Transient, reply(451, "4.3.0", "later"))
	}
	h.loop.Start()
	h.enqueue(t, newMessage("m1", h.clock.Now(), "a@x.test"), "b\r\n")
	h.enqueue(t, newMessage("m2", h.clock.Now(), "b@y.test", "c@x.test"), "b\r\n")
	h.rec.waitFor(t, 3)
	waitUntil(t, func() bool { s := h.loop.Summary(""); return s.Scheduled == 3 && s.InFlight == 0 })
	up.Store(true)

	if r := h.loop.RetryNow(context.Background(), Selector{Domain: "X.test"}); r.Messages != 2 || r.Recipients != 2 {
		t.Fatalf("RetryNow: %+v, want 2 messages, 2 recipients", r)
	}
	recs := h.rec.waitFor(t, 5)
	if want := "Delivery a@x.test,Delivery c@x.test,TransientFailure a@x.test,TransientFailure b@y.test,TransientFailure c@x.test"; strings.Join(h.rec.summary(), ",") != want {
		t.Fatalf("records %v", h.rec.summary())
	}
	for _, r := range recs[3:] {
		if r.Type != logrec.Delivery || r.NumAttempts != 2 {
			t.Errorf("record %s %s after the retry: %d attempts, want 2 (the counter kept)", r.Type, r.Recipient, r.NumAttempts)
		}
	}
	if n := h.loop.RetryNow(context.Background(), Selector{Domain: "x.test"}); n.Messages != 0 {
		t.Errorf("a second RetryNow found %+v", n)
	}

	// y.test waits for its own retry time; the replaced entries come due
	// with it and are ignored.
	h.clock.Advance(10 * time.Minute)
	h.loop.Wake()
	h.rec.waitFor(t, 6)
	waitUntil(t, func() bool { return h.loop.Messages() == 0 })
	time.Sleep(20 * time.Millisecond)
	if n := tx.Load(); n != 6 {
		t.Errorf("%d transactions, want 6 (3 deferred, 2 retried now, 1 at its time): %v", n, envelopeRcpts(h))
	}
	if len(h.rec.all()) != 6 {
		t.Errorf("records %v", h.rec.summary())
	}
}

// TestRetryNowIDs: a retry by id makes every deferred destination of the
// message due; ids not queued, or another tenant's, are reported missing.
func TestRetryNowIDs(t *testing.T) {
	h := newHarness(t, nil)
	deferAll(h)
	h.loop.Start()
	h.enqueue(t, newMessage("m1", h.clock.Now(), "a@x.test", "b@y.test"), "b\r\n")
	h.rec.waitFor(t, 2)
	waitUntil(t, func() bool { s := h.loop.Summary(""); return s.Scheduled == 2 && s.InFlight == 0 })
	if m := h.loop.Known([]string{"m1", "nope"}, ""); len(m) != 1 || m[0] != "nope" {
		t.Errorf("Known: missing %v", m)
	}
	if m := h.loop.Known([]string{"m1"}, "other"); len(m) != 1 {
		t.Errorf("Known for another tenant: missing %v", m)
	}
	res, missing := h.loop.RetryNowIDs([]string{"m1", "gone"}, "acme")
	if res.Messages != 1 || res.Recipients != 2 || len(missing) != 1 || missing[0] != "gone" {
		t.Fatalf("RetryNowIDs: %+v, missing %v", res, missing)
	}
	h.rec.waitFor(t, 4) // both domains attempted again without the clock moving
	if _, missing := h.loop.RetryNowIDs([]string{"m1"}, "other"); len(missing) != 1 {
		t.Errorf("another tenant retried m1")
	}
}

// TestRetryNowLoaded: a message loaded from the spool with a retry time
// ahead and recipients at two domains waits whole; retrying one domain
// splits it: that domain goes now, the other keeps the message's retry
// time, and the whole message's old schedule entry makes no transaction
// when it comes due.
func TestRetryNowLoaded(t *testing.T) {
	h := newLoadHarness(t, func(sp *queue.Spool, now time.Time) {
		m := newMessage("m1", now.Add(-time.Hour), "a@x.test", "b@y.test")
		m.Attempts, m.NextDue = 1, now.Add(30*time.Minute)
		m.Recipients[0].Attempts, m.Recipients[1].Attempts = 1, 1
		spoolMessage(t, sp, m)
	})
	if _, err := h.loop.Load(h.spool, nil); err != nil {
		t.Fatal(err)
	}
	h.loop.Start()
	if !h.packed("m1") {
		t.Fatal("the loaded message is not waiting packed")
	}
	if r := h.loop.RetryNow(context.Background(), Selector{Domain: "x.test"}); r.Messages != 1 || r.Recipients != 1 {
		t.Fatalf("RetryNow: %+v", r)
	}
	recs := h.rec.waitFor(t, 1)
	if recs[0].Recipient != "a@x.test" || recs[0].Type != logrec.Delivery || recs[0].NumAttempts != 2 {
		t.Fatalf("record %+v", recs[0])
	}
	info, ok := h.loop.Inspect(context.Background(), "m1")
	if !ok || !info.Due["y.test"].Equal(h.clock.Now().Add(30*time.Minute)) {
		t.Fatalf("y.test's retry time: %v %v", info.Due, ok)
	}
	h.clock.Advance(31 * time.Minute)
	h.loop.Wake()
	h.rec.waitFor(t, 2)
	waitUntil(t, func() bool { return h.loop.Messages() == 0 })
	time.Sleep(20 * time.Millisecond)
	if n := len(h.tr.envelopes()); n != 2 {
		t.Errorf("%d transactions, want 2: %v", n, h.tr.envelopes())
	}
	if d, _ := h.loop.QueueDepth(); d != 0 {
		t.Errorf("scheduled depth %d after everything went", d)
	}
}
