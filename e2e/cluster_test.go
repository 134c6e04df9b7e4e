package e2e

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"gannet/internal/redistest"
)

// startRedis builds gannet and starts a private redis-server, stopped at
// the test's end.
func startRedis(t *testing.T) *redistest.Server {
	gannetBinary(t)
	srv, err := redistest.Start()
	if err != nil {
		missingPeer(t, "redis-server", err.Error())
	}
	t.Cleanup(srv.Stop)
	return srv
}

// TestE2EClusterStatus: two gannet processes sharing one redis-server see
// each other in `gannet cluster status` (asked of either); a node killed
// without a goodbye drops out of the list once its entry expires; with
// Redis gone the status fails clearly and the errors are counted; a node
// without [cluster] says clustering is off.
func TestE2EClusterStatus(t *testing.T) {
	srv := startRedis(t)
	node := func(id string) *gannet {
		return startGannet(t, gannetConfig{DNS: "127.0.0.1:1", DeliveryPort: 1, Extra: clusterTOML(srv, id)})
	}
	a, b := node("node-a"), node("node-b")

	status := func(g *gannet) (bool, string) {
		out, errOut, code := runGannetCLI(t, g, "cluster", "status")
		return code == 0, out + errOut
	}
	for _, g := range []*gannet{a, b} {
		waitFor(t, 10*time.Second, "both nodes in `gannet cluster status` of "+g.HTTPAddr, func() (bool, string) {
			ok, out := status(g)
			return ok && strings.Contains(out, "2 nodes") && strings.Contains(out, "node-a") && strings.Contains(out, "node-b"), out
		})
	}
	// Mail queued on node-b (its DNS answers nothing: it stays queued)
	// shows in node-b's queue depth, as node-a sees it.
	injectSimple(t, b, "rcpt@far.example", "", "", "queued on node-b")
	type entry struct {
		ID         string `json:"id"`
		Admin      string `json:"admin"`
		QueueDepth int    `json:"queue_depth"`
	}
	var r struct {
		Enabled bool    `json:"enabled"`
		Node    string  `json:"node"`
		Nodes   []entry `json:"nodes"`
	}
	waitFor(t, 10*time.Second, "node-b's queue depth 1 in node-a's `cluster status -json`", func() (bool, string) {
		out, errOut, code := runGannetCLI(t, a, "cluster", "status", "-json")
		r.Nodes = nil
		ok := code == 0 && json.Unmarshal([]byte(out), &r) == nil && r.Enabled && r.Node == "node-a" && len(r.Nodes) == 2
		return ok && r.Nodes[1].QueueDepth == 1, out + errOut
	})
	if n := r.Nodes[1]; n.ID != "node-b" || n.Admin != b.HTTPAddr {
		t.Errorf("node-b's entry: %+v, want its admin API %s", n, b.HTTPAddr)
	}
	_, shown := status(a)
	t.Logf("gannet cluster status:\n%s", shown)

	// `gannet queue summary -cluster`, asked of either node, sums both
	// nodes' queues: node-a's message and node-b's, each at far.example.
	injectSimple(t, a, "other@far.example", "", "", "queued on node-a")
	for _, g := range []*gannet{a, b} {
		waitFor(t, 10*time.Second, "both nodes' mail in `queue summary -cluster -json` of "+g.HTTPAddr, func() (bool, string) {
			out, errOut, code := runGannetCLI(t, g, "queue", "summary", "-cluster", "-json")
			var s struct {
				Totals struct {
					Messages   int `json:"messages"`
					Recipients int `json:"recipients"`
				} `json:"totals"`
				Domains []struct {
					Domain   string `json:"domain"`
					Messages int    `json:"messages"`
				} `json:"domains"`
			}
			ok := code == 0 && json.Unmarshal([]byte(out), &s) == nil && s.Totals.Messages == 2 && s.Totals.Recipients == 2 &&
				len(s.Domains) == 1 && s.Domains[0].Domain == "far.example" && s.Domains[0].Messages == 2
			return ok, out + errOut
		})
	}
	out, errOut, code := runGannetCLI(t, a, "queue", "summary", "-cluster")
	if code != 0 || !strings.Contains(out, "2 of 2 nodes answered") || !strings.Contains(out, "node-a 1") || !strings.Contains(out, "node-b 1") {
		t.Errorf("queue summary -cluster (%d):\n%s%s", code, out, errOut)
	}
	t.Logf("gannet queue summary -cluster:\n%s", out)

	b.Kill9() // no goodbye: node-b's entry expires after node_ttl
	waitFor(t, 10*time.Second, "node-b gone from `gannet cluster status`", func() (bool, string) {
		ok, out := status(a)
		return ok && strings.Contains(out, "1 nodes") && !strings.Contains(out, "node-b"), out
	})

	srv.Kill()
	if ok, out := status(a); ok || !strings.Contains(out, "Redis cannot be read") {
		t.Errorf("cluster status with Redis down: ok=%v %s", ok, out)
	}
	waitFor(t, 10*time.Second, "gannet_cluster_redis_errors_total counted", func() (bool, string) {
		m := scrapeMetrics(t, a.HTTPAddr)
		return m.values["gannet_cluster_redis_errors_total"] > 0, fmt.Sprint(m.values["gannet_cluster_redis_errors_total"])
	})

	solo := startGannet(t, gannetConfig{DNS: "127.0.0.1:1", DeliveryPort: 1})
	if ok, out := status(solo); !ok || !strings.Contains(out, "clustering is off") {
		t.Errorf("cluster status of a node without [cluster]: ok=%v %s", ok, out)
	}
}

// TestE2EClusterSharedSuspension: two gannet nodes relaying to one sink
// share their admin rules through Redis: a domain suspended on node-a is
// held on node-b too (its mail stays queued, the sink sees none), and the
// suspension resumed on node-b ends on both, which then deliver the held
// mail.
func TestE2EClusterSharedSuspension(t *testing.T) {
	srv := startRedis(t)
	sink := startGoSink(t, hostPort("127.0.0.1", freePort(t, false, "127.0.0.1")))
	node := func(id string) *gannet {
		return startGannet(t, gannetConfig{DNS: "127.0.0.1:1", DeliveryPort: 1,
			DeliveryExtra: fmt.Sprintf("relay_to = %q\n", sink.addr()), Extra: fmt.Sprintf(`
[cluster]
redis = %q
node_id = %q
key_prefix = "e2e-rules:"
`, srv.URL(0), id)})
	}
	a, b := node("node-a"), node("node-b")
	const held = "user@held.example"
	suspended := func(g *gannet) (bool, string) {
		out, errOut, code := runGannetCLI(t, g, "suspend", "-list")
		return code == 0 && strings.Contains(out, "held.example"), out + errOut
	}

	t0 := time.Now()
	if out, errOut, code := runGannetCLI(t, a, "suspend", "-domain", "held.example", "-reason", "e2e"); code != 0 {
		t.Fatalf("suspend on node-a: %d %s%s", code, out, errOut)
	}
	waitFor(t, 5*time.Second, "node-a's suspension listed on node-b", func() (bool, string) { return suspended(b) })
	t.Logf("the suspension made on node-a was in force on node-b after %v", time.Since(t0).Round(time.Millisecond))

	injectSimple(t, a, held, "", "", "held on node-a")
	injectSimple(t, b, held, "", "", "held on node-b")
	injectSimple(t, b, "user@free.example", "", "", "free")
	waitFor(t, deliveryMax, "the mail of free.example at the sink", func() (bool, string) {
		return findArrival(sink.arrivals(t), "user@free.example") != nil, ""
	})
	for _, g := range []*gannet{a, b} {
		waitFor(t, 5*time.Second, "held.example's message held on "+g.HTTPAddr, func() (bool, string) {
			out, errOut, code := runGannetCLI(t, g, "queue", "list", "-domain", "held.example", "-state", "suspended")
			return code == 0 && strings.Contains(out, "held.example"), out + errOut
		})
	}
	if got := sink.arrivals(t); findArrival(got, held) != nil {
		t.Fatalf("mail of a suspended domain reached the sink: %+v", got)
	}

	t0 = time.Now()
	if out, errOut, code := runGannetCLI(t, b, "resume", "-domain", "held.example"); code != 0 {
		t.Fatalf("resume on node-b: %d %s%s", code, out, errOut)
	}
	waitFor(t, 5*time.Second, "the suspension ended on node-a", func() (bool, string) {
		ok, out := suspended(a)
		return !ok, out
	})
	t.Logf("the resume on node-b ended the suspension on node-a after %v", time.Since(t0).Round(time.Millisecond))
	waitFor(t, deliveryMax, "both held messages at the sink", func() (bool, string) {
		n := 0
		for _, m := range sink.arrivals(t) {
			if findArrival([]arrival{m}, held) != nil {
				n++
			}
		}
		return n == 2, fmt.Sprint(n)
	})
}
