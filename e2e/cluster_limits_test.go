package e2e

import (
	"fmt"
	"testing"

	bsink "gannet/bench/smtpsink/sink"
	"gannet/internal/redistest"
)

// TestE2EClusterSiteRate: two gannet processes sharing one redis-server,
// each given half of the mail to a site whose max_message_rate is
// 20/s: bench/smtpsink receives it at about 20/s in all, not 40/s (each
// node alone is allowed 20/s).
func TestE2EClusterSiteRate(t *testing.T) {
	w := newRelayWorld(t)
	srv, err := redistest.Start()
	if err != nil {
		missingPeer(t, "redis-server", err.Error())
	}
	t.Cleanup(srv.Stop)
	rcv := dlvSink(t, hostPort(mxIP1, w.port), "")
	const (
		rate    = 20.0 // messages per second, the fleet's
		perNode = 60
	)
	nodes := clusterPair(t, w, srv, fmt.Sprintf(`
[shaping.%q]
max_message_rate = "20/s"
`, domain1))
	for i := range perNode {
		for j, g := range nodes {
			dlvSend(t, g, fmt.Sprintf("r%d-%d@%s", j, i, domain1), "")
		}
	}
	got := dlvWaitMessages(t, rcv, 2*perNode)
	// Left out: the two batches of tokens an idle limit lets through at
	// once.
	checkFleetRate(t, got, 2*2, rate, 1.15, "messages to the site")
}

// TestE2EClusterConnectionRate: two gannet processes sharing one
// redis-server, each given half of the mail to a site whose
// max_connection_rate is 2/s, one delivery per connection: bench/smtpsink
// sees about 2 new connections/s from the fleet, not 4/s (each node alone
// is allowed 2/s). The mail is queued first, so the rate is the limit's
// alone.
func TestE2EClusterConnectionRate(t *testing.T) {
	w := newRelayWorld(t)
	srv := startRedis(t)
	rcv := dlvSink(t, hostPort(mxIP1, w.port), "")
	const (
		rate    = 2.0 // new connections per second, the fleet's
		perNode = 8
	)
	nodes := clusterPair(t, w, srv, fmt.Sprintf(`
[shaping.%q]
max_connection_rate = "2/s"
max_deliveries_per_connection = 1
max_message_rate = "1000/s"
`, domain1))
	queueSuspended(t, nodes, rcv, perNode, "c", "")
	got := dlvWaitMessages(t, rcv, 2*perNode)
	// One delivery per connection: the messages' arrivals are the
	// connections'.
	if st := rcv.Stats(); st.Connections != uint64(len(got)) {
		t.Fatalf("the sink had %d connections for %d messages, want one each", st.Connections, len(got))
	}
	// Left out: the two batches (of one) an idle limit lets through at
	// once.
	checkFleetRate(t, got, 2, rate, 1.25, "new connections to the site")
}

// clusterPair starts two gannet nodes, node-a and node-b, of a cluster on
// srv, relaying without TLS, with extra added to their configuration.
func clusterPair(t *testing.T, w *relayWorld, srv *redistest.Server, extra string) []*gannet {
	t.Helper()
	var nodes []*gannet
	for _, id := range []string{"node-a", "node-b"} {
		nodes = append(nodes, w.gannet(t, gannetConfig{TLSMode: "disabled", Extra: clusterTOML(srv, id) + extra}))
	}
	return nodes
}

// checkFleetRate checks that got, what a sink received from two nodes
// (one message each of what), arrived at about the cluster's limit (per
// second): at most over times it, at least 0.6 times it, leaving out
// the burst an idle limit lets through (see arrivalRate).
func checkFleetRate(t *testing.T, got []bsink.Message, burst int, limit, over float64, what string) {
	t.Helper()
	observed, elapsed := arrivalRate(got, burst)
	t.Logf("%d %s from two nodes in %.2fs at the sink: %.1f/s against the cluster's limit of %.0f/s",
		len(got), what, elapsed, observed, limit)
	if observed > limit*over {
		t.Errorf("the sink received %.1f %s/s from the cluster, over its limit of %.0f/s", observed, what, limit)
	}
	if observed < limit*0.6 {
		t.Errorf("the sink received only %.1f %s/s from the cluster, far under its limit of %.0f/s", observed, what, limit)
	}
}

// clusterTOML is the [cluster] table of node id of a test's cluster on
// srv, with a quick heartbeat.
func clusterTOML(srv *redistest.Server, id string) string {
	return fmt.Sprintf(`
[cluster]
redis = %q
node_id = %q
key_prefix = "e2e:"
heartbeat = "200ms"
node_ttl = "1s"
`, srv.URL(0), id)
}
