package delivery

import (
	"context"
	"sync"
	"testing"
	"time"

	"gannet/engine/logrec"
	"gannet/engine/outbound"
	"gannet/resolver"
)

// TestCorruptBodyIsQuarantined: a message whose body the spool cannot read
// back (queue.ErrCorrupt) is quarantined once and forgotten, with no record,
// no attempt and no retry, even with items at two domains; the message
// beside it is delivered.
func TestCorruptBodyIsQuarantined(t *testing.T) {
	h := newHarness(t, nil)
	var mu sync.Mutex
	seen := map[string]bool{}
	h.tr.fn = func(_ *resolver.Route, env *outbound.Envelope) outbound.Outcome {
		mu.Lock()
		for _, r := range env.Rcpts {
			seen[r] = true
		}
		mu.Unlock()
		return outcomeAll(env, outbound.Delivered, reply(250, "2.0.0", "OK"))
	}
	h.store.corrupt["bad"] = true
	h.loop.Start()
	h.enqueue(t, newMessage("bad", h.clock.Now(), "a@x.test", "b@y.test"), "lost\r\n")
	h.enqueue(t, newMessage("good", h.clock.Now(), "c@x.test"), "fine\r\n")
	h.rec.waitFor(t, 1)
	waitUntil(t, func() bool { return h.loop.Messages() == 0 })
	time.Sleep(20 * time.Millisecond) // a record for "bad" would come now
	recs := h.rec.all()
	if len(recs) != 1 || recs[0].Type != logrec.Delivery || recs[0].ID != "good" {
		t.Fatalf("records %v, want only the Delivery of good", h.rec.summary())
	}
	mu.Lock()
	if seen["a@x.test"] || seen["b@y.test"] {
		t.Errorf("the corrupt message was sent: %v", seen)
	}
	mu.Unlock()
	h.store.mu.Lock()
	q, saved, removed := h.store.quarantined["bad"], h.store.saved["bad"], h.store.removed["bad"]
	h.store.mu.Unlock()
	if q != 1 || saved.ID != "" || removed != 0 {
		t.Errorf("store: quarantined %d, updated %v, removed %d; want quarantined once and nothing else", q, saved.ID != "", removed)
	}
	if _, ok := h.loop.Inspect(context.Background(), "bad"); ok {
		t.Error("the loop still holds the quarantined message")
	}
	if s, r := h.loop.QueueDepth(); s != 0 || r != 0 {
		t.Errorf("queue depth %d scheduled, %d ready; want nothing left", s, r)
	}
	h.met.mu.Lock()
	defer h.met.mu.Unlock()
	if h.met.transient != 0 || h.met.delivered != 1 {
		t.Errorf("metrics %+v", h.met)
	}
}

// TestCorruptBodyNotQuarantinedIsRetried: when the spool finds the record
// intact after all (queue.ErrNotCorrupt), the attempt is a transient
// failure and the message stays.
func TestCorruptBodyNotQuarantinedIsRetried(t *testing.T) {
	h := newHarness(t, nil)
	h.store.corrupt["m1"], h.store.intact = true, true
	h.loop.Start()
	h.enqueue(t, newMessage("m1", h.clock.Now(), "a@x.test"), "b\r\n")
	recs := h.rec.waitFor(t, 1)
	if recs[0].Type != logrec.TransientFailure || recs[0].Response.Code != 451 {
		t.Fatalf("record %+v, want a TransientFailure 451", recs[0])
	}
	if _, ok := h.loop.Inspect(context.Background(), "m1"); !ok {
		t.Error("the loop dropped a message the spool did not quarantine")
	}
	waitUntil(t, func() bool { s, _ := h.loop.QueueDepth(); return s == 1 }) // the retry
}
