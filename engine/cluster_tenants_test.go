package engine

import (
	"testing"
	"time"

	"gannet/internal/clustertest"
	"gannet/internal/redistest"
)

// TestClusterTenantRateFollowsLimitScope: two nodes sharing one real
// redis-server. A tenant whose max_message_rate leaves limit_scope at its
// default (cluster) gets it for the whole fleet: the two nodes together
// are granted its idle burst (two leased batches) and then about its rate;
// a tenant with limit_scope = "node", one without a rate and mail without
// a tenant are never held by the cluster.
func TestClusterTenantRateFollowsLimitScope(t *testing.T) {
	srv := redistest.Need(t)
	cfg := clusterConfig(t, srv, `
[[tenant]]
name = "shared"
max_message_rate = "20/s"

[[tenant]]
name = "own"
max_message_rate = "20/s"
limit_scope = "node"

[[tenant]]
name = "free"
`)
	var nodes []*clusterTenantRates
	for _, id := range []string{"a", "b"} {
		e := &Engine{cfg: cfg, cluster: clustertest.Node(t, srv.URL(0), id)}
		pol, err := buildPolicy(cfg, nil)
		if err != nil {
			t.Fatal(err)
		}
		e.live.Store(pol)
		nodes = append(nodes, &clusterTenantRates{e: e, recheck: true})
	}
	for _, tenant := range []string{"own", "free", ""} {
		for i, n := range nodes {
			for range 200 {
				if ok, _ := n.TakeTenant(tenant); !ok {
					t.Fatalf("node %d was held by the cluster for tenant %q", i, tenant)
				}
			}
		}
	}
	t0 := time.Now()
	granted := 0
	for range 100 {
		for _, n := range nodes {
			if ok, _ := n.TakeTenant("shared"); ok {
				granted++
			}
		}
	}
	elapsed := time.Since(t0).Seconds()
	// The idle burst (2 batches of 2) and what the rate adds meanwhile,
	// with one batch to spare for the clocks.
	if most := 2*leaseBatch(20) + int(20*elapsed) + leaseBatch(20); granted > most || granted < 2 {
		t.Errorf("the two nodes were granted %d of 200 tokens in %.3fs for tenant shared (20/s for the fleet), want 2 to %d",
			granted, elapsed, most)
	}
	if ok, wait := nodes[1].TakeTenant("shared"); ok || wait <= 0 || wait > time.Second {
		t.Errorf("past the fleet's burst: %v, wait %v; want a refusal with a wait under a second", ok, wait)
	}
}
