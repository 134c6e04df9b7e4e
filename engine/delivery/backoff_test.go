package delivery

import (
	"regexp"
	"sync"
	"testing"
	"time"

	"gannet/engine/logrec"
	"gannet/engine/outbound"
	"gannet/engine/shaping"
	"gannet/resolver"
)

// backoffHarness is a harness whose loop has a real Shaper with a backoff
// rule ("[TS03]" puts the site in backoff: 100/h, retries after 10m, back
// to normal after an hour or one delivery), its events wired to the loop
// as the engine wires them, and rules kept in rules.
func backoffHarness(t *testing.T, rules *memRules) (*harness, *shaping.Shaper) {
	var loop *Loop
	var sh *shaping.Shaper
	h := newHarness(t, func(o *Options) {
		sh = shaping.New(shaping.Config{
			Base:    func(string, []string) outbound.Limits { return outbound.Limits{Connections: 1} },
			Backoff: shaping.Backoff{Disabled: true},
			Rules:   []shaping.Rule{{Regex: regexp.MustCompile(`\[TS03\]`), Action: shaping.BackoffMode}},
			Mode: func(string, []string) shaping.Mode {
				return shaping.Mode{Rate: 100.0 / 3600, RetryAfter: 10 * time.Minute, ToNormalAfter: time.Hour,
					ToNormalAfterDeliveries: 1}
			},
			OnBackoff: func(e shaping.BackoffEvent) { loop.BackoffChanged(e) },
			Now:       o.Clock.Now,
		})
		o.Shaper, o.Backoff, o.Rules = sh, sh, rules
	})
	loop = h.loop
	h.route.routes["x.test"] = &resolver.Route{Domain: "x.test", Site: mxSite("mx.x.test")}
	return h, sh
}

// TestBackoffRetryAfterAndRecords: a reply matching the backoff rule puts
// the site in backoff: a BackoffStart record with the reply as reason, the
// state stored, the deferred mail retried after backoff_retry_after (10m)
// instead of the retry schedule (5m); the delivery at the retry ends it
// (backoff_to_normal_after_deliveries = 1): a BackoffEnd record, the state
// deleted.
func TestBackoffRetryAfterAndRecords(t *testing.T) {
	rules := &memRules{}
	h, sh := backoffHarness(t, rules)
	var mu sync.Mutex
	attempts := 0
	h.tr.fn = func(_ *resolver.Route, env *outbound.Envelope) outbound.Outcome {
		mu.Lock()
		defer mu.Unlock()
		attempts++
		if attempts == 1 {
			return outcomeAll(env, outbound.Transient, reply(421, "4.7.0", "[TS03] Too many messages"))
		}
		return outcomeAll(env, outbound.Delivered, reply(250, "2.0.0", "OK"))
	}
	h.loop.Start()
	t0 := h.clock.Now()
	h.enqueue(t, newMessage("m1", t0, "a@x.test"), "b\r\n")
	recs := h.rec.waitFor(t, 2)
	if recs[0].Type != logrec.BackoffStart || recs[0].Site != "mx.x.test" || recs[0].Reason != "421 4.7.0 [TS03] Too many messages" {
		t.Errorf("first record %+v, want BackoffStart for mx.x.test with the reply as reason", recs[0])
	}
	if recs[1].Type != logrec.TransientFailure {
		t.Errorf("second record %+v, want the TransientFailure", recs[1])
	}
	waitUntil(t, func() bool {
		h.store.mu.Lock()
		defer h.store.mu.Unlock()
		return !h.store.saved["m1"].NextDue.IsZero()
	})
	h.store.mu.Lock()
	due := h.store.saved["m1"].NextDue
	h.store.mu.Unlock()
	if want := t0.Add(10 * time.Minute); !due.Equal(want) {
		t.Errorf("retry due %v after the attempt, want backoff_retry_after (10m), not the schedule's 5m", due.Sub(t0))
	}
	if keys := rules.keys(); len(keys) != 1 || keys[0] != "backoff/mx.x.test" {
		t.Errorf("stored rules %v, want the backoff state", keys)
	}
	h.advance(t, 5*time.Minute)
	if st := sh.Backoffs(); len(st) != 1 {
		t.Fatalf("backoffs %+v at the schedule's retry time, want the site still in backoff", st)
	}
	h.advance(t, 5*time.Minute)
	recs = h.rec.waitFor(t, 4)
	// The shaper sees the transaction before its outcome is recorded.
	if recs[2].Type != logrec.BackoffEnd || recs[2].Reason != "after 1 delivery" || recs[3].Type != logrec.Delivery {
		t.Errorf("records %+v; want BackoffEnd \"after 1 delivery\" with the Delivery at 10m", recs[2:])
	}
	if keys := rules.keys(); len(keys) != 0 {
		t.Errorf("stored rules %v after the backoff ended, want none", keys)
	}
}

// TestBackoffSurvivesRestart: a site in backoff is in backoff again after
// a restart (a new loop and shaper over the same stored rules), with its
// reason, start and end, its rate and retry delay, without a second
// BackoffStart record; it ends on time there, and its state is deleted.
func TestBackoffSurvivesRestart(t *testing.T) {
	rules := &memRules{}
	h, sh := backoffHarness(t, rules)
	h.tr.fn = func(_ *resolver.Route, env *outbound.Envelope) outbound.Outcome {
		return outcomeAll(env, outbound.Transient, reply(421, "4.7.0", "[TS03] Too many messages"))
	}
	h.loop.Start()
	h.enqueue(t, newMessage("m1", h.clock.Now(), "a@x.test"), "b\r\n")
	h.rec.waitFor(t, 2)
	before := sh.Backoffs()
	if len(before) != 1 {
		t.Fatalf("backoffs %+v, want the site", before)
	}

	h2, sh2 := backoffHarness(t, rules)
	n, err := h2.loop.RestoreRules()
	if err != nil || n != 1 {
		t.Fatalf("RestoreRules = %d, %v; want the backoff restored", n, err)
	}
	after := sh2.Backoffs()
	if len(after) != 1 || after[0].Site != before[0].Site || after[0].Reason != before[0].Reason ||
		!after[0].Since.Equal(before[0].Since) || !after[0].Until.Equal(before[0].Until) ||
		after[0].Rate != before[0].Rate || after[0].Deliveries != 1 {
		t.Fatalf("restored %+v, want %+v", after, before)
	}
	p := outbound.Path{Site: mxSite("mx.x.test"), Domain: "x.test"}
	if d := sh2.RetryAfter(p); d != 10*time.Minute {
		t.Errorf("restored retry delay %v, want 10m", d)
	}
	if l := sh2.Limits(p); l.MessageRate != 100.0/3600 {
		t.Errorf("restored rate %g/s, want 100/h", l.MessageRate)
	}
	if recs := h2.rec.all(); len(recs) != 0 {
		t.Errorf("records after the restore: %v, want none", h2.rec.summary())
	}
	h2.clock.Advance(time.Hour)
	sh2.Tick()
	if recs := h2.rec.all(); len(recs) != 1 || recs[0].Type != logrec.BackoffEnd || recs[0].Reason != "after 1h" {
		t.Errorf("records %v, want BackoffEnd \"after 1h\"", h2.rec.summary())
	}
	if keys := rules.keys(); len(keys) != 0 {
		t.Errorf("stored rules %v after the backoff ended, want none", keys)
	}
}

// TestBackoffUpdateStored: a backoff kept longer (an Update) is stored
// with its new end, without a record; restored, it has that end.
func TestBackoffUpdateStored(t *testing.T) {
	rules := &memRules{}
	h, _ := backoffHarness(t, rules)
	t0 := h.clock.Now()
	st := shaping.BackoffState{Site: "mx.x.test", Origin: shaping.BackoffOriginRule, Reason: "421 4.7.0 slow down",
		Since: t0, Until: t0.Add(time.Hour), RetryAfter: time.Minute}
	h.loop.BackoffChanged(shaping.BackoffEvent{State: st, Start: true})
	st.Until = t0.Add(2 * time.Hour)
	h.loop.BackoffChanged(shaping.BackoffEvent{State: st, Start: true, Update: true})
	if recs := h.rec.all(); len(recs) != 1 || recs[0].Type != logrec.BackoffStart {
		t.Errorf("records %v, want the one BackoffStart", h.rec.summary())
	}
	h2, sh2 := backoffHarness(t, rules)
	if n, err := h2.loop.RestoreRules(); n != 1 || err != nil {
		t.Fatalf("RestoreRules = %d, %v", n, err)
	}
	if got := sh2.Backoffs(); len(got) != 1 || !got[0].Until.Equal(st.Until) || got[0].RetryAfter != time.Minute {
		t.Errorf("restored %+v, want until %v and retry after 1m", got, st.Until)
	}
}
