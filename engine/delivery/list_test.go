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
	"gannet/resolver"
)

// deadStore records the messages the loop made dead letters.
type deadStore struct {
	mu   sync.Mutex
	dead map[string]queue.Message
}

func (d *deadStore) MoveToDead(m *queue.Message, at time.Time) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	c := *m
	c.NextDue = at
	c.Recipients = append([]queue.Recipient(nil), m.Recipients...)
	d.dead[m.ID] = c
	return nil
}

func (d *deadStore) get(id string) (queue.Message, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	m, ok := d.dead[id]
	return m, ok
}

// TestExpiryMakesDeadLetter: a message whose last recipient expires is
// moved to the dead letters (not removed), with a DeadLetter record.
func TestExpiryMakesDeadLetter(t *testing.T) {
	ds := &deadStore{dead: map[string]queue.Message{}}
	h := newHarness(t, func(o *Options) {
		o.DeadLetters = ds
		o.Retry = queue.RetryPolicy{Initial: time.Minute, Max: time.Minute, MaxAge: 90 * time.Second}
	})
	deferAll(h)
	h.loop.Start()
	h.enqueue(t, newMessage("m1", h.clock.Now(), "a@x.test"), "b\r\n")
	h.rec.waitFor(t, 1)
	h.advance(t, 2*time.Minute)
	recs := h.rec.waitFor(t, 3)
	if got := strings.Join(h.rec.summary(), ","); !strings.Contains(got, "Expiration a@x.test") || !strings.Contains(got, "DeadLetter a@x.test") {
		t.Fatalf("records %v", got)
	}
	for _, r := range recs {
		if r.Type == logrec.DeadLetter && (r.Queue != "spring:acme@x.test" || r.BounceClassification != "MessageExpired") {
			t.Errorf("dead letter record %+v", r)
		}
	}
	m, ok := ds.get("m1")
	if !ok || m.Recipients[0].State != queue.Expired {
		t.Fatalf("not a dead letter: %+v %v", m, ok)
	}
	if h.store.removedCount("m1") != 0 {
		t.Error("the dead letter was also removed")
	}
	waitUntil(t, func() bool { return h.loop.Messages() == 0 })
}

// TestBounceDeadOnlyWhenKept: a permanent failure makes a dead letter only
// with KeepBounced.
func TestBounceDeadOnlyWhenKept(t *testing.T) {
	for _, keep := range []bool{false, true} {
		ds := &deadStore{dead: map[string]queue.Message{}}
		h := newHarness(t, func(o *Options) { o.DeadLetters = ds; o.KeepBounced = keep })
		h.tr.fn = func(_ *resolver.Route, env *outbound.Envelope) outbound.Outcome {
			return outcomeAll(env, outbound.Bounced, reply(550, "5.1.1", "no such user"))
		}
		h.loop.Start()
		h.enqueue(t, newMessage("m1", h.clock.Now(), "a@x.test"), "b\r\n")
		h.rec.waitFor(t, 1)
		waitUntil(t, func() bool { return h.loop.Messages() == 0 })
		if _, ok := ds.get("m1"); ok != keep {
			t.Errorf("keep_bounced=%v: dead letter %v", keep, ok)
		}
		if removed := h.store.removedCount("m1") == 1; removed == keep {
			t.Errorf("keep_bounced=%v: removed %v", keep, removed)
		}
	}
}

func listIDs(r ListResult) string {
	var ids []string
	for _, m := range r.Messages {
		ids = append(ids, m.ID)
	}
	return strings.Join(ids, ",")
}

// TestListFiltersPagingGroups: filters, paging by cursor, group-by counts
// and the held state.
func TestListFiltersPagingGroups(t *testing.T) {
	h := newHarness(t, nil)
	deferAll(h)
	h.loop.Start()
	now := h.clock.Now()
	for i, rc := range []string{"a@x.test", "b@y.test", "C@x.test", "d@z.test", "e@x.test"} {
		m := newMessage("m"+string(rune('1'+i)), now, rc)
		if i == 3 {
			m.Tenant = "other"
		}
		h.enqueue(t, m, "b\r\n")
	}
	h.rec.waitFor(t, 5)
	waitUntil(t, func() bool { s := h.loop.Summary(""); return s.Scheduled == 5 && s.InFlight == 0 })
	ctx := context.Background()
	list := func(f ListFilter) ListResult {
		t.Helper()
		f = f.Normalize()
		if err := f.Validate(); err != nil {
			t.Fatal(err)
		}
		return h.loop.List(ctx, f)
	}
	if r := list(ListFilter{Domain: "X.test"}); listIDs(r) != "m1,m3,m5" || r.Matched != 3 || r.Next != "" {
		t.Fatalf("domain: %+v", r)
	}
	r := list(ListFilter{Limit: 2})
	if listIDs(r) != "m1,m2" || r.Next != "m2" || r.Matched != 5 {
		t.Fatalf("page 1: %+v", r)
	}
	if r = list(ListFilter{Limit: 2, After: r.Next}); listIDs(r) != "m3,m4" || r.Next != "m4" {
		t.Fatalf("page 2: %+v", r)
	}
	if r = list(ListFilter{Limit: 2, After: r.Next}); listIDs(r) != "m5" || r.Next != "" {
		t.Fatalf("page 3: %+v", r)
	}
	if r := list(ListFilter{Recipient: "c@"}); listIDs(r) != "m3" {
		t.Fatalf("recipient substring: %+v", r)
	}
	if r := list(ListFilter{Tenant: "other"}); listIDs(r) != "m4" {
		t.Fatalf("tenant: %+v", r)
	}
	if r := list(ListFilter{MinAttempts: 2}); r.Matched != 0 {
		t.Fatalf("min attempts: %+v", r)
	}
	if r := list(ListFilter{MinAttempts: 1, Older: time.Second}); r.Matched != 0 {
		t.Fatalf("older: %+v", r) // the clock has not moved
	}
	if r := list(ListFilter{Sender: "SENDER@src.test", State: StateScheduled}); r.Matched != 5 {
		t.Fatalf("sender and state: %+v", r)
	}
	g := list(ListFilter{GroupBy: "domain"})
	if len(g.Groups) != 3 || g.Groups[0] != (GroupCount{"x.test", 3, 3}) || g.Matched != 5 {
		t.Fatalf("group by domain: %+v", g)
	}
	if err := (ListFilter{State: "bogus"}).Validate(); err == nil {
		t.Error("bad state accepted")
	}
	if err := (ListFilter{GroupBy: "color"}).Validate(); err == nil {
		t.Error("bad group-by accepted")
	}
	if ids := h.loop.MatchIDs(ctx, ListFilter{Domain: "x.test"}.Normalize()); strings.Join(ids, ",") != "m1,m3,m5" {
		t.Fatalf("MatchIDs %v", ids)
	}

	// Actions: delete by id (no bounce, AdminDelete), bounce by id.
	res, missing := h.loop.DeleteMessages([]string{"m1", "nope"}, "", "cleanup")
	if res.Messages != 1 || len(missing) != 1 || h.store.removedCount("m1") != 1 {
		t.Fatalf("delete: %+v %v", res, missing)
	}
	if _, missing := h.loop.BounceMessages([]string{"m4"}, "acme", ""); len(missing) != 1 {
		t.Fatalf("bounce of another tenant's message: %v", missing)
	}
	if res, _ := h.loop.BounceMessages([]string{"m3"}, "acme", "spam"); res.Recipients != 1 {
		t.Fatalf("bounce %+v", res)
	}
	got := strings.Join(h.rec.summary(), ",")
	if !strings.Contains(got, "AdminDelete a@x.test") || !strings.Contains(got, "AdminBounce C@x.test") {
		t.Fatalf("records %s", got)
	}
	if r := list(ListFilter{Domain: "x.test"}); listIDs(r) != "m5" {
		t.Fatalf("after actions: %+v", r)
	}
	// Held state.
	h.loop.Hold("h1", OriginAPI, Selector{}, []string{"m2"}, "")
	h.clock.Advance(time.Hour)
	h.loop.Wake()
	waitUntil(t, func() bool { return listIDs(list(ListFilter{State: StateHeld})) == "m2" })
}

// TestQueueBounceSendsDSN: a queue bounce by id sends the sender a bounce
// message (with send_bounces) naming the bounced recipient; a delete
// sends none.
func TestQueueBounceSendsDSN(t *testing.T) {
	var mu sync.Mutex
	var sent []string
	h := newHarness(t, func(o *Options) {
		o.SendBounce = func(to string, body []byte) error {
			mu.Lock()
			sent = append(sent, to+" "+string(body))
			mu.Unlock()
			return nil
		}
	})
	deferAll(h)
	h.loop.Start()
	h.enqueue(t, newMessage("m1", h.clock.Now(), "a@x.test"), "Subject: original\r\n\r\nbody\r\n")
	h.enqueue(t, newMessage("m2", h.clock.Now(), "b@x.test"), "Subject: other\r\n\r\nbody\r\n")
	h.rec.waitFor(t, 2)
	h.loop.BounceMessages([]string{"m1"}, "", "stale")
	h.loop.DeleteMessages([]string{"m2"}, "", "")
	mu.Lock()
	defer mu.Unlock()
	if len(sent) != 1 || !strings.HasPrefix(sent[0], "sender@src.test ") || !strings.Contains(sent[0], "a@x.test") ||
		!strings.Contains(sent[0], "Subject: original") {
		t.Fatalf("bounce messages: %q", sent)
	}
}

// TestListWhileDelivering: lists run while mail is delivered (under -race:
// no data race between the walk and the loop).
func TestListWhileDelivering(t *testing.T) {
	h := newHarness(t, nil)
	h.tr.fn = func(_ *resolver.Route, env *outbound.Envelope) outbound.Outcome {
		return outcomeAll(env, outbound.Delivered, reply(250, "2.0.0", "ok"))
	}
	h.loop.Start()
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range 50 {
			h.loop.List(context.Background(), ListFilter{Domain: "x.test", Recipient: "u"}.Normalize())
			h.loop.List(context.Background(), ListFilter{GroupBy: "domain", State: StateReady}.Normalize())
		}
	}()
	for i := range 200 {
		h.enqueue(t, newMessage("m"+strings.Repeat("0", 4)+string(rune('a'+i%26))+string(rune('a'+i/26)), h.clock.Now(), "u@x.test"), "b\r\n")
	}
	<-done
	h.rec.waitFor(t, 200)
	waitUntil(t, func() bool { return h.loop.Messages() == 0 })
}
