package delivery

import (
	"context"
	"testing"
)

// TestHoldAndRelease: a hold by message id holds that message only, a hold
// by selector its mail; both are stored and restored; releasing by message
// id or by hold id sends the mail at once.
func TestHoldAndRelease(t *testing.T) {
	rules := &memRules{}
	h := newHarness(t, func(o *Options) { o.Rules = rules })
	h.loop.Start()
	byID := h.loop.Hold("h1", OriginAPI, Selector{}, []string{"m2", "m1", "m2"}, "check content")
	if len(byID.IDs) != 2 || byID.IDs[0] != "m1" {
		t.Fatalf("hold by ids: %+v", byID)
	}
	h.loop.Hold("h2", OriginAPI, Selector{Domain: "z.test"}, nil, "")
	h.enqueue(t, newMessage("m1", h.clock.Now(), "a@x.test", "b@y.test"), "b\r\n")
	h.enqueue(t, newMessage("m2", h.clock.Now(), "c@x.test"), "b\r\n")
	h.enqueue(t, newMessage("m3", h.clock.Now(), "d@x.test", "e@z.test"), "b\r\n")
	h.rec.waitFor(t, 1) // d@x.test
	waitUntil(t, func() bool { return h.loop.Summary("").Held == 4 })
	if got := envelopeRcpts(h); len(got) != 1 || got[0] != "d@x.test" {
		t.Fatalf("transactions while held: %v", got)
	}
	if l := h.loop.Holds(); len(l) != 2 || l[0].Held != 3 || l[1].Held != 1 {
		t.Fatalf("holds %+v", l)
	}
	if got := rules.keys(); !equalStrings(got, []string{"hold/h1", "hold/h2"}) {
		t.Fatalf("stored %v", got)
	}

	// A new loop over the same rules has the holds.
	h2 := newHarness(t, func(o *Options) { o.Rules = rules })
	if n, err := h2.loop.RestoreRules(); n != 2 || err != nil {
		t.Fatalf("restore: %d %v", n, err)
	}
	if l := h2.loop.Holds(); len(l) != 2 || len(l[0].IDs) != 2 || l[1].Selector.Domain != "z.test" {
		t.Fatalf("holds restored %+v", l)
	}
	h2.loop.Stop(context.Background())

	if got := h.loop.ReleaseMessages([]string{"m1", "nope"}, ""); len(got) != 1 || got[0] != "m1" {
		t.Fatalf("ReleaseMessages: %v", got)
	}
	h.rec.waitFor(t, 3) // a@x.test, b@y.test
	if l := h.loop.Holds(); len(l) != 2 || len(l[0].IDs) != 1 || l[0].Held != 1 {
		t.Fatalf("holds after releasing m1: %+v", l)
	}
	if got := h.loop.ReleaseMessages([]string{"m2"}, "other"); len(got) != 0 {
		t.Errorf("another tenant released m2")
	}
	h.loop.ReleaseMessages([]string{"m2"}, "")
	h.rec.waitFor(t, 4)
	if _, ok := h.loop.Release("h2"); !ok {
		t.Fatal("Release h2: unknown")
	}
	h.rec.waitFor(t, 5)
	if l := h.loop.Holds(); len(l) != 0 {
		t.Errorf("holds left: %+v", l)
	}
	if got := rules.keys(); len(got) != 0 {
		t.Errorf("stored after every release: %v", got)
	}
	waitUntil(t, func() bool { return h.loop.Messages() == 0 })
}
