package delivery

import (
	"sync/atomic"
	"testing"
	"time"

	"gannet/engine/cluster"
	"gannet/engine/outbound"
	"gannet/internal/clustertest"
	"gannet/internal/redistest"
	"gannet/queue"
	"gannet/resolver"
)

// sharedRate is SharedRate over one cluster.RateLimiter for every path.
type sharedRate struct{ l *cluster.RateLimiter }

func (s sharedRate) Take(outbound.Path) (bool, time.Duration) { return s.l.Take() }

// TestSharedRateHoldsAcrossLoops: two delivery loops (two nodes) sharing a
// site's rate through one real redis-server deliver, together, within 5%
// of that rate, timed by the Redis server's clock; each alone has no limit
// of its own here.
func TestSharedRateHoldsAcrossLoops(t *testing.T) {
	srv := redistest.Need(t)
	const (
		rate    = 200.0 // messages per second, both loops together
		batch   = 10    // tokens per Redis call
		perLoop = 500
	)
	var delivered atomic.Int64
	var loops []*harness
	for i := range 2 {
		c := clustertest.Node(t, srv.URL(0), "node-"+itoa(i))
		lim := c.RateLimiter("site:x.test", rate, batch)
		h := newHarness(t, func(o *Options) {
			o.Clock = queue.SystemClock()
			o.Limits = func(outbound.Path) outbound.Limits { return outbound.Limits{Connections: 4} }
			o.SharedRate = sharedRate{lim}
		})
		h.route.routes["x.test"] = &resolver.Route{Domain: "x.test", Site: mxSite("mx.x.test")}
		h.tr.fn = func(_ *resolver.Route, env *outbound.Envelope) outbound.Outcome {
			delivered.Add(1)
			return outcomeAll(env, outbound.Delivered, reply(250, "2.0.0", "OK"))
		}
		loops = append(loops, h)
	}
	for i, h := range loops {
		for j := range perLoop {
			h.enqueue(t, newMessage("m"+itoa(i)+"-"+itoa(j), time.Now(), "r"+itoa(j)+"@x.test"), "b\r\n")
		}
	}
	start, err := srv.Time()
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range loops {
		h.loop.Start()
	}
	for _, h := range loops {
		h.rec.waitFor(t, perLoop)
	}
	end, err := srv.Time()
	if err != nil {
		t.Fatal(err)
	}
	n := delivered.Load()
	elapsed := end.Sub(start).Seconds()
	// An idle limit lets two batches go at once: leave them out.
	got := float64(n-2*batch) / elapsed
	errPct := (got - rate) / rate * 100
	t.Logf("%d messages in %.2fs (Redis clock): %.1f/s against a shared limit of %.0f/s (%+.1f%%)", n, elapsed, got, rate, errPct)
	if n != 2*perLoop {
		t.Errorf("%d messages delivered, want %d", n, 2*perLoop)
	}
	if errPct > 5 {
		t.Errorf("the two loops sent %.1f/s together, more than 5%% over the shared limit %.0f/s", got, rate)
	}
	if errPct < -25 {
		t.Errorf("the two loops sent only %.1f/s together, far below the shared limit %.0f/s", got, rate)
	}
}
