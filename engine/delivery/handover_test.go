package delivery

import (
	"bytes"
	"context"
	"sync"
	"testing"

	"gannet/engine/handover"
	"gannet/engine/logrec"
	"gannet/engine/outbound"
	"gannet/resolver"
)

const handoverSecret = "delivery-test-secret-0123456789"

// bodiesBySite records the body of each transaction per site and answers
// every one with 250.
func bodiesBySite(h *harness) func() map[string][][]byte {
	var mu sync.Mutex
	got := map[string][][]byte{}
	h.tr.fn = func(rt *resolver.Route, env *outbound.Envelope) outbound.Outcome {
		mu.Lock()
		got[rt.Site.String()] = append(got[rt.Site.String()], append([]byte(nil), env.Body...))
		mu.Unlock()
		return outcomeAll(env, outbound.Delivered, reply(250, "2.0.0", "OK"))
	}
	return func() map[string][][]byte {
		mu.Lock()
		defer mu.Unlock()
		out := map[string][][]byte{}
		for k, v := range got {
			out[k] = v
		}
		return out
	}
}

// TestHandoverField: mail an xfer rule sends goes with a verified
// X-Gannet-Xfer field naming this node, the message and one hop; a
// message that came by a handover from the rule's target is not sent
// back (it goes to its own MX, without the field), and one from another
// node goes on with its hops counted.
func TestHandoverField(t *testing.T) {
	h := newHarness(t, func(o *Options) {
		o.Handover = func() HandoverIdentity {
			return HandoverIdentity{Secret: handoverSecret, Node: "node-b", SMTP: "127.0.0.1:2525"}
		}
	})
	bodies := bodiesBySite(h)
	h.loop.Start()
	h.loop.Xfer(context.Background(), "x1", Selector{Domain: "x.test"}, xferTo, "")

	const content = "Subject: hi\r\n\r\nbody\r\n"
	h.enqueue(t, newMessage("plain", h.clock.Now(), "a@x.test"), content)
	back := newMessage("back", h.clock.Now(), "b@x.test")
	back.Xferred = true
	h.enqueue(t, back, string(handover.Prepend(handoverSecret, handover.Meta{Node: "node-a", From: xferTo, ID: "orig", Hops: 1}, []byte(content))))
	on := newMessage("on", h.clock.Now(), "c@x.test")
	on.Xferred = true
	h.enqueue(t, on, string(handover.Prepend(handoverSecret, handover.Meta{Node: "node-c", From: "127.0.0.9:25", ID: "orig2", Hops: 1}, []byte(content))))
	waitUntil(t, func() bool { return len(recordsOf(h, logrec.XferOut))+len(recordsOf(h, logrec.Delivery)) == 3 })

	got := bodies()
	if len(got[xferTo]) != 2 {
		t.Fatalf("%d transactions to the xfer target, want 2 (plain, on): %q", len(got[xferTo]), got)
	}
	seen := map[string]int{}
	for _, b := range got[xferTo] {
		m, rest, err := handover.Verify(handoverSecret, b)
		if err != nil || m.Node != "node-b" || m.From != "127.0.0.1:2525" || string(rest) != content {
			t.Errorf("handed over: %+v, %v; rest %q", m, err, rest)
		}
		seen[m.ID] = m.Hops
	}
	if seen["plain"] != 1 || seen["on"] != 2 {
		t.Errorf("hops by id %v, want plain 1, on 2", seen)
	}
	var direct [][]byte
	for site, bs := range got {
		if site != xferTo {
			direct = append(direct, bs...)
		}
	}
	if len(direct) != 1 || !bytes.Equal(direct[0], []byte(content)) {
		t.Errorf("delivered directly: %q; want the message that came from the target, without the field", direct)
	}
	if d := recordsOf(h, logrec.Delivery); len(d) != 1 || d[0].ID != "back" {
		t.Errorf("Delivery records %+v, want the one of \"back\"", d)
	}
}
