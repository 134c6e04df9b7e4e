package delivery

import (
	"context"
	"strings"
	"testing"

	"gannet/engine/logrec"
	"gannet/engine/outbound"
	"gannet/queue"
	"gannet/resolver"
)

// TestSettleStatesSpoolRecordsMetrics: a transaction's verdicts and an
// operator's bounce settle the same way: the recipient's state and last
// reply in the spool, one record each with the reply, and one count each.
func TestSettleStatesSpoolRecordsMetrics(t *testing.T) {
	h := newHarness(t, nil)
	h.tr.fn = func(_ *resolver.Route, env *outbound.Envelope) outbound.Outcome {
		switch {
		case strings.HasSuffix(env.Rcpts[0], "@ok.test"):
			return outcomeAll(env, outbound.Delivered, reply(250, "2.0.0", "OK"))
		case strings.HasSuffix(env.Rcpts[0], "@bad.test"):
			return outcomeAll(env, outbound.Bounced, reply(550, "5.1.1", "no such user"))
		}
		return outcomeAll(env, outbound.Transient, reply(451, "4.3.0", "later"))
	}
	h.loop.Start()
	h.enqueue(t, newMessage("m1", h.clock.Now(), "a@ok.test", "b@bad.test", "c@later.test"), "b\r\n")
	h.rec.waitFor(t, 3)
	saved := func() queue.Message {
		h.store.mu.Lock()
		defer h.store.mu.Unlock()
		return h.store.saved["m1"]
	}
	// The three items write the spool one after another; the last write
	// holds every verdict.
	waitUntil(t, func() bool { return saved().Attempts == 3 })
	wantStates := []queue.RcptState{queue.Delivered, queue.Bounced, queue.Pending}
	wantReplies := []string{"250 2.0.0 OK", "550 5.1.1 no such user", "451 4.3.0 later"}
	for i, rc := range saved().Recipients {
		if rc.State != wantStates[i] || rc.LastReply != wantReplies[i] || rc.Attempts != 1 {
			t.Errorf("recipient %d saved as %+v", i, rc)
		}
	}

	r := h.loop.Bounce(context.Background(), "b1", OriginAPI, Selector{Domain: "later.test"}, "cleanup", 0)
	if r.TotalBounced != 1 {
		t.Fatalf("sweep %+v", r)
	}
	waitUntil(t, func() bool { return h.store.removedCount("m1") == 1 })
	recs := h.rec.waitFor(t, 4)
	want := map[logrec.Type]string{
		logrec.Delivery:         "a@ok.test 250 ",
		logrec.Bounce:           "b@bad.test 550 InvalidRecipient",
		logrec.TransientFailure: "c@later.test 451 ",
		logrec.AdminBounce:      "c@later.test 551 PolicyRelated",
	}
	for _, rec := range recs {
		got := rec.Recipient + " " + itoa(rec.Response.Code) + " " + rec.BounceClassification
		if want[rec.Type] != got {
			t.Errorf("%s record: %q, want %q", rec.Type, got, want[rec.Type])
		}
		if rec.ID != "m1" || rec.Queue != "spring:acme@"+strings.SplitN(rec.Recipient, "@", 2)[1] {
			t.Errorf("record %+v", rec)
		}
	}
	if last := recs[3]; last.Type != logrec.AdminBounce || last.Response.Content != "Administrator bounced: cleanup" ||
		last.NumAttempts != 1 || last.TLSProtocolVersion != "" {
		t.Errorf("admin bounce record %+v", last)
	}
	h.met.mu.Lock()
	defer h.met.mu.Unlock()
	if h.met.delivered != 1 || h.met.bounced != 2 || h.met.transient != 1 || h.met.expired != 0 {
		t.Errorf("metrics %+v", h.met)
	}
	if h.loop.Messages() != 0 {
		t.Errorf("the loop still holds %d messages", h.loop.Messages())
	}
}
