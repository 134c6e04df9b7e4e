package engine

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"gannet/engine/cluster"
	"gannet/engine/config"
	"gannet/engine/outbound"
	"gannet/internal/redistest"
	"gannet/resolver"
)

// TestClusterRatesFollowLimitScope: two nodes sharing one real
// redis-server. A site whose shaping entry leaves limit_scope at its
// default (cluster) gets its max_message_rate from the whole fleet,
// counted against the Redis server's clock; one with limit_scope = "node"
// and one without a rate are never held by the cluster (each node keeps
// its own full limit).
func TestClusterRatesFollowLimitScope(t *testing.T) {
	srv := redistest.Need(t)
	cfg, err := config.Parse("cluster.toml", []byte(`
[cluster]
redis = "`+srv.URL(0)+`"

[shaping."shared.test"]
max_message_rate = "100/s"

[shaping."own.test"]
max_message_rate = "100/s"
limit_scope = "node"
`))
	if err != nil {
		t.Fatal(err)
	}
	var nodes []*clusterRates
	for _, id := range []string{"a", "b"} {
		c := cfg.Cluster
		cl, err := cluster.New(cluster.Options{URL: c.Redis, NodeID: id, KeyPrefix: c.KeyPrefix,
			Heartbeat: c.Heartbeat.Duration, NodeTTL: c.NodeTTL.Duration, Timeout: time.Second})
		if err != nil {
			t.Fatal(err)
		}
		cl.Start("")
		t.Cleanup(cl.Stop)
		nodes = append(nodes, &clusterRates{e: &Engine{cfg: cfg, cluster: cl}})
	}
	path := func(domain string) outbound.Path {
		return outbound.Path{Domain: domain, Site: resolver.MXSite([]string{"mx." + domain})}
	}

	for _, domain := range []string{"own.test", "free.test"} {
		for i, n := range nodes {
			for range 500 {
				if ok, _ := n.Take(path(domain)); !ok {
					t.Fatalf("node %d was held by the cluster on %s", i, domain)
				}
			}
		}
	}

	const (
		rate   = 100.0
		target = 400
	)
	var granted atomic.Int64
	var wg sync.WaitGroup
	start, err := srv.Time()
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for granted.Load() < target {
				if ok, wait := n.Take(path("shared.test")); ok {
					granted.Add(1)
				} else {
					time.Sleep(min(wait, 20*time.Millisecond))
				}
			}
		}()
	}
	wg.Wait()
	end, err := srv.Time()
	if err != nil {
		t.Fatal(err)
	}
	elapsed := end.Sub(start).Seconds()
	// An idle limit lets two batches go at once: leave them out.
	got := float64(granted.Load()-int64(2*leaseBatch(rate))) / elapsed
	errPct := (got - rate) / rate * 100
	t.Logf("%d grants in %.2fs (Redis clock): %.1f/s against a fleet limit of %.0f/s (%+.1f%%)", granted.Load(), elapsed, got, rate, errPct)
	if errPct > 5 || errPct < -5 {
		t.Errorf("the fleet was granted %.1f/s, more than 5%% off its limit %.0f/s", got, rate)
	}
}
