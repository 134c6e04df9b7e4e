package engine

import (
	"testing"
	"time"

	"gannet/engine/outbound"
	"gannet/engine/shaping"
	"gannet/internal/clustertest"
	"gannet/internal/redistest"
	"gannet/resolver"
	"gannet/smtpwire"
)

// TestClusterRateFollowsSharedCut: two nodes sharing one real
// redis-server and a site whose max_message_rate of 100/s is the fleet's.
// Node a's shaper cuts the path on a 421 and tells node b (as the
// cluster's rules do): the fleet is then granted about 70/s, the cut
// share of its limit, not 100/s.
func TestClusterRateFollowsSharedCut(t *testing.T) {
	srv := redistest.Need(t)
	cfg := clusterConfig(t, srv, `
[shaping."shared.test"]
max_message_rate = "100/s"
`)
	p := outbound.Path{Domain: "shared.test", Site: resolver.MXSite([]string{"mx.shared.test"})}
	var cuts []shaping.CutState
	var nodes []*clusterRates
	for _, id := range []string{"a", "b"} {
		e := &Engine{cfg: cfg, cluster: clustertest.Node(t, srv.URL(0), id)}
		var err error
		if e.shaper, err = newShaper(e.conf, time.Now, nil, nil, nil, nil, func(st shaping.CutState) { cuts = append(cuts, st) }); err != nil {
			t.Fatal(err)
		}
		e.shaper.Limits(p) // the node delivers on the path
		nodes = append(nodes, &clusterRates{e: e})
	}
	a, b := nodes[0].e.shaper, nodes[1].e.shaper
	a.Observe(p, &outbound.Outcome{SessionReply: smtpwire.Reply{Code: 421, Enhanced: "4.7.0", Lines: []string{"slow down"}}})
	if len(cuts) != 1 || !b.ApplyCut(cuts[0]) {
		t.Fatalf("node a's cut %+v not applied on node b", cuts)
	}
	const want = 70.0
	got := fleetRate(t, srv, nodes, p, 280, want)
	errPct := (got - want) / want * 100
	t.Logf("%.1f/s granted after the shared cut to %.0f%% of the fleet's 100/s (%+.1f%%)", got, want, errPct)
	if errPct > 5 || errPct < -15 {
		t.Errorf("the fleet was granted %.1f/s after the cut, want about %.0f/s", got, want)
	}
}
