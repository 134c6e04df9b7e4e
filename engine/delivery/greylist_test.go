package delivery

import (
	"strings"
	"testing"
	"time"

	"gannet/engine/outbound"
	"gannet/queue"
	"gannet/resolver"
)

// TestGreylistRetry: with greylist_retry = 30s, a recipient greylisted at
// its first attempt is retried 30 s later, not after retry_interval (5m);
// greylisted again at that retry, it waits the retry schedule (10m after a
// second attempt). A rate limit at a first attempt waits the schedule too.
func TestGreylistRetry(t *testing.T) {
	h := newHarness(t, func(o *Options) {
		o.Retry = queue.RetryPolicy{Initial: 5 * time.Minute, Max: time.Hour, MaxAge: 72 * time.Hour, Greylist: 30 * time.Second}
	})
	h.route.routes["y.test"] = &resolver.Route{Domain: "y.test", Site: mxSite("mx.y.test")}
	h.tr.fn = func(_ *resolver.Route, env *outbound.Envelope) outbound.Outcome {
		if strings.HasSuffix(env.Rcpts[0], "@y.test") {
			return outcomeAll(env, outbound.Transient, reply(451, "4.7.0", "Rate limit exceeded, try again later"))
		}
		return outcomeAll(env, outbound.Transient, reply(451, "4.7.1", "Greylisted, try again later"))
	}
	h.loop.Start()
	t0 := h.clock.Now()
	due := func(id string) time.Duration {
		var d time.Time
		waitUntil(t, func() bool {
			h.store.mu.Lock()
			defer h.store.mu.Unlock()
			d = h.store.saved[id].NextDue
			return !d.IsZero()
		})
		return d.Sub(t0)
	}
	h.enqueue(t, newMessage("m1", t0, "a@x.test"), "b\r\n")
	h.enqueue(t, newMessage("m2", t0, "b@y.test"), "b\r\n")
	h.rec.waitFor(t, 2)
	if d := due("m1"); d != 30*time.Second {
		t.Errorf("greylisted at the first attempt: retry due after %v, want greylist_retry's 30s", d)
	}
	if d := due("m2"); d != 5*time.Minute {
		t.Errorf("rate-limited at the first attempt: retry due after %v, want retry_interval's 5m", d)
	}
	h.advance(t, 30*time.Second)
	h.rec.waitFor(t, 3)
	waitUntil(t, func() bool { return due("m1") != 30*time.Second })
	if d := due("m1"); d != 30*time.Second+10*time.Minute {
		t.Errorf("greylisted again at the second attempt: retry due %v after the first, want the schedule's 10m after the second", d)
	}
}
