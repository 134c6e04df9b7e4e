package engine

import (
	"testing"
	"time"

	"gannet/engine/outbound"
	"gannet/internal/clustertest"
	"gannet/internal/redistest"
	"gannet/resolver"
)

// TestClusterConnectionRateFollowsLimitScope: two nodes sharing one real
// redis-server. A site's max_connection_rate under limit_scope cluster
// (the default) is the fleet's: together the nodes may open its idle
// burst and then about its rate; under limit_scope node, or without a
// rate, the cluster holds no connection back.
func TestClusterConnectionRateFollowsLimitScope(t *testing.T) {
	srv := redistest.Need(t)
	cfg := clusterConfig(t, srv, `
[shaping."shared.test"]
max_connection_rate = "5/s"

[shaping."own.test"]
max_connection_rate = "5/s"
limit_scope = "node"
`)
	var nodes []outbound.SharedConnRate
	for _, id := range []string{"a", "b"} {
		e := &Engine{cfg: cfg, cluster: clustertest.Node(t, srv.URL(0), id)}
		nodes = append(nodes, e.sharedConnRate())
	}
	path := func(domain string) outbound.Path {
		return outbound.Path{Domain: domain, Site: resolver.MXSite([]string{"mx." + domain})}
	}
	for _, domain := range []string{"own.test", "free.test"} {
		for i, n := range nodes {
			for range 100 {
				if ok, _ := n.TakeConnection(path(domain)); !ok {
					t.Fatalf("node %d was refused a new connection by the cluster on %s", i, domain)
				}
			}
		}
	}
	t0 := time.Now()
	granted := 0
	for range 50 {
		for _, n := range nodes {
			if ok, _ := n.TakeConnection(path("shared.test")); ok {
				granted++
			}
		}
	}
	elapsed := time.Since(t0).Seconds()
	// The idle burst (2 batches of 1) and what the rate adds meanwhile,
	// with one to spare for the clocks.
	if most := 2 + int(5*elapsed) + 1; granted > most || granted < 1 {
		t.Errorf("the two nodes were granted %d of 100 new connections in %.3fs to shared.test (5/s for the fleet), want 1 to %d",
			granted, elapsed, most)
	}
	if ok, wait := nodes[0].TakeConnection(path("shared.test")); ok || wait <= 0 || wait > time.Second {
		t.Errorf("past the fleet's burst: %v, wait %v; want a refusal with a wait under a second", ok, wait)
	}
}
