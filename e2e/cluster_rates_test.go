package e2e

import (
	"fmt"
	"math"
	"net"
	"net/netip"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	bsink "gannet/bench/smtpsink/sink"
	"gannet/internal/redistest"
)

// TestE2EClusterSharedCut: two gannet nodes on one redis-server deliver to
// one site, each limited to 20/s on its own (limit_scope "node", so that
// nothing but the shared cut links them). Node B's mail goes out alone
// at about 20/s; then node A's mail, and only A's, gets 421 from the site
// (bench/smtpsink, matched on A's recipients). A cuts its rate, the cut
// reaches B through Redis, and B's delivery rate to the site, measured at
// the sink, drops well under what it was, although B never saw a 421.
func TestE2EClusterSharedCut(t *testing.T) {
	w := newRelayWorld(t)
	srv := startRedis(t)
	fail, err := bsink.ParseFailure("rcpt~a-:421:1:4.7.0 Too many messages, slow down")
	if err != nil {
		t.Fatal(err)
	}
	rcv, err := bsink.Start(bsink.Config{Listen: []string{hostPort(mxIP1, w.port)}, Keep: true,
		Faults: bsink.Faults{Failures: []bsink.Failure{fail}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rcv.Close() })
	const perSec = 20.0
	node := func(id string) *gannet {
		return w.gannet(t, gannetConfig{TLSMode: "disabled", Extra: clusterTOML(srv, id) + fmt.Sprintf(`
[shaping.%q]
max_message_rate = "20/s"
limit_scope = "node"
`, domain1)})
	}
	a, b := node("node-a"), node("node-b")

	// B's mail waits behind a (shared) suspension until all is queued, so
	// that the sink sees B's own pace.
	if out, errOut, code := runGannetCLI(t, b, "suspend", "-domain", domain1, "-reason", "e2e: queue first"); code != 0 {
		t.Fatalf("suspend: %d %s%s", code, out, errOut)
	}
	const fromB = 160
	for i := range fromB {
		dlvSend(t, b, fmt.Sprintf("b-%d@%s", i, domain1), "")
	}
	if out, errOut, code := runGannetCLI(t, b, "resume", "-domain", domain1); code != 0 {
		t.Fatalf("resume: %d %s%s", code, out, errOut)
	}
	resumed := time.Now()
	time.Sleep(3500 * time.Millisecond)

	// A's mail: every recipient gets 421 at the site.
	throttledAt := time.Now()
	for i := range 20 {
		dlvSend(t, a, fmt.Sprintf("a-%d@%s", i, domain1), "")
	}
	time.Sleep(5 * time.Second)

	rateOfB := func(from, to time.Time) float64 {
		n := 0
		for _, m := range rcv.Messages() {
			if strings.HasPrefix(m.Rcpts[0], "b-") && !m.Received.Before(from) && m.Received.Before(to) {
				n++
			}
		}
		return float64(n) / to.Sub(from).Seconds()
	}
	for _, m := range rcv.Messages() {
		if strings.HasPrefix(m.Rcpts[0], "a-") {
			t.Fatalf("the sink accepted node A's %s: the 421 script did not apply", m.Rcpts[0])
		}
	}
	// Before: the second after the start (the limit's first burst) left out.
	before := rateOfB(resumed.Add(time.Second), throttledAt)
	// After: from a second after A's first 421 (a cut, published, heard),
	// for three seconds.
	after := rateOfB(throttledAt.Add(time.Second), throttledAt.Add(4*time.Second))
	t.Logf("node B's rate to the site at the sink: %.1f/s alone, %.1f/s after node A's 421s (each node's own limit %.0f/s)",
		before, after, perSec)
	if out, _, _ := runGannetCLI(t, b, "queue", "summary"); out != "" {
		t.Logf("node B's queue summary after the cut:\n%s", out)
	}
	// Redis is told of a path's changes, not of each reply: at most one
	// cut or step per recover_interval (1 s) and node, with the suspension
	// and its end.
	elapsed := time.Since(resumed).Seconds()
	throttles := len(selectRecords(a.Records(), recordFilter{Type: "TransientFailure"}))
	pubs := redisCalls(t, srv, "publish")
	t.Logf("%d PUBLISH calls to Redis in %.1fs for %d transient failures (421) on node A", pubs, elapsed, throttles)
	if limit := 2*int(elapsed+1) + 4; pubs > limit {
		t.Errorf("%d PUBLISH calls to Redis in %.1fs, over the %d of one change per second and node", pubs, elapsed, limit)
	}
	if before < perSec*0.6 {
		t.Fatalf("node B alone delivered at %.1f/s, far under its limit of %.0f/s: nothing to compare with", before, perSec)
	}
	if after > before*0.6 {
		t.Errorf("node B delivered at %.1f/s after node A's 421 burst, %.1f/s before: the cut did not reach B", after, before)
	}
}

// TestE2EWarmupClusterAllowance: two gannet nodes on one redis-server
// send from the same warming source (127.0.0.7, a day-1 allowance of 3
// messages) and a warm one (127.0.0.8), 6 messages each: the receiver,
// which records the client address, gets 3 from the warming source in all
// (not 3 per node) and the other 9 from the warm one.
func TestE2EWarmupClusterAllowance(t *testing.T) {
	const (
		perNode = 6
		allowed = 3
	)
	w := newRelayWorld(t)
	for _, ip := range []string{"127.0.0.7", "127.0.0.8"} {
		checkLoopbackAlias(t, ip)
	}
	srv := startRedis(t)
	rcv := dlvSink(t, hostPort(mxIP1, w.port), "")
	var nodes []*gannet
	for _, id := range []string{"node-a", "node-b"} {
		nodes = append(nodes, w.gannet(t, gannetConfig{TLSMode: "disabled", Extra: clusterTOML(srv, id) + warmupPoolTOML(allowed)}))
	}
	for i := range perNode {
		for j, g := range nodes {
			dlvSend(t, g, fmt.Sprintf("u%d-%d@%s", j, i, domain1), "X-Tenant: acme\r\n")
		}
	}
	from := map[string]int{}
	for _, m := range dlvWaitMessages(t, rcv, 2*perNode) {
		from[netip.MustParseAddrPort(m.Peer).Addr().String()]++
	}
	t.Logf("messages by client address: %v", from)
	if from["127.0.0.7"] != allowed || from["127.0.0.8"] != 2*perNode-allowed || len(from) != 2 {
		t.Fatalf("messages by client address = %v; want %d from the warming 127.0.0.7 (the fleet's allowance) and %d from the warm 127.0.0.8",
			from, allowed, 2*perNode-allowed)
	}
	// Each node's status: nothing left of the fleet's allowance.
	for _, g := range nodes {
		sc := scrapeMetrics(t, g.HTTPAddr)
		if v := sc.values[`gannet_egress_warmup_remaining{source="fresh",provider="default"}`]; v != 0 {
			t.Errorf("%s: gannet_egress_warmup_remaining of fresh = %v, want 0", g.HTTPAddr, v)
		}
	}
}

// TestE2ETuneClusterShared: node A of a cluster tunes a site whose hidden
// rate is 20/s (bench/smtpsink throttles past it) under a ceiling of
// 100/s, and is stopped. Node B, started afterwards on the same
// redis-server, has A's learned rate before it sends anything, and uses
// it: with the site's throttle gone, B's mail to it goes out near the
// learned rate, not at the 100/s ceiling.
func TestE2ETuneClusterShared(t *testing.T) {
	const (
		hidden  = 20.0
		ceiling = 100.0
		site    = "mx.d1.test"
		fromB   = 60
	)
	w := newRelayWorld(t)
	srv := startRedis(t)
	rcv, err := bsink.Start(bsink.Config{Listen: []string{hostPort(mxIP1, w.port)}, Keep: true,
		Faults: bsink.Faults{Throttle: bsink.Throttle{Limit: int(hidden), Per: time.Second, Text: unusualRate}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rcv.Close() })
	node := func(id string) *gannet {
		return w.gannet(t, gannetConfig{RetryInterval: "1s", MaxRetryInterval: "2s", TLSMode: "disabled",
			Extra: clusterTOML(srv, id) + tuneTOML(ceiling)})
	}
	metric := `gannet_site_tuned_rate{site="` + site + `"}`
	a := node("node-a")
	blast := startBlast0(t, a.SMTPAddr, 8*time.Second)
	var learned float64
	waitFor(t, 30*time.Second, "node A's tuned rate for "+site+" near the hidden rate", func() (bool, string) {
		v, ok := scrapeMetrics(t, a.HTTPAddr).values[metric]
		learned = v
		return ok && v < 1.5*hidden, fmt.Sprintf("%s = %v", metric, v)
	})
	blast.wait(t)
	a.Stop()
	// What A learned last: the last move its log tells of (a scrape
	// before the stop may miss one more move).
	moves := regexp.MustCompile(`msg="site's tuned limits moved" site=`+regexp.QuoteMeta(site)+` rate=([0-9.]+)`).
		FindAllStringSubmatch(a.p.out.String(), -1)
	if len(moves) == 0 {
		t.Fatalf("node A's log tells of no tuned rate for %s", site)
	}
	// The last move, or the one before it when A stopped before it
	// shared the last.
	var last []float64
	for _, m := range moves[max(0, len(moves)-2):] {
		v, _ := strconv.ParseFloat(m[1], 64)
		last = append(last, v)
	}
	learned = last[len(last)-1]
	t.Logf("node A learned %.1f/s for %s (hidden rate %v/s; moves %v) and stopped", learned, site, hidden, last)

	b := node("node-b")
	waitFor(t, 10*time.Second, "node A's learned rate on node B", func() (bool, string) {
		v, ok := scrapeMetrics(t, b.HTTPAddr).values[metric]
		return ok && slices.ContainsFunc(last, func(l float64) bool { return math.Abs(v-l) < 0.01*l }),
			fmt.Sprintf("%s = %v (present %v), want one of %v", metric, v, ok, last)
	})
	learned = scrapeMetrics(t, b.HTTPAddr).values[metric]

	// B's own mail, queued behind a suspension and let go at once, to a
	// site that no longer throttles.
	rcv.SetFaults(bsink.Faults{})
	if out, errOut, code := runGannetCLI(t, b, "suspend", "-domain", domain1, "-reason", "e2e: queue first"); code != 0 {
		t.Fatalf("suspend: %d %s%s", code, out, errOut)
	}
	for i := range fromB {
		dlvSend(t, b, fmt.Sprintf("b-%d@%s", i, domain1), "")
	}
	if out, errOut, code := runGannetCLI(t, b, "resume", "-domain", domain1); code != 0 {
		t.Fatalf("resume: %d %s%s", code, out, errOut)
	}
	var got []time.Time
	waitFor(t, deliveryMax, fmt.Sprintf("node B's %d messages at the sink", fromB), func() (bool, string) {
		got = got[:0]
		for _, m := range rcv.Messages() {
			if strings.HasPrefix(m.Rcpts[0], "b-") {
				got = append(got, m.Received)
			}
		}
		return len(got) >= fromB, fmt.Sprintf("have %d", len(got))
	})
	slices.SortFunc(got, time.Time.Compare)
	// Left out: the first two seconds' worth, which an idle limit lets
	// through at once.
	skip := int(2 * learned)
	rate := float64(len(got)-1-skip) / got[len(got)-1].Sub(got[skip]).Seconds()
	t.Logf("node B sent its %d messages at %.1f/s (A's learned rate %.1f/s, ceiling %.0f/s)", fromB, rate, learned, ceiling)
	if rate > 1.5*learned {
		t.Errorf("node B sent at %.1f/s, far over the %.1f/s node A learned: B did not use it", rate, learned)
	}
}

// redisCalls returns how many times srv ran command (INFO commandstats).
func redisCalls(t *testing.T, srv *redistest.Server, command string) int {
	t.Helper()
	host, port, _ := net.SplitHostPort(srv.Addr())
	out, err := exec.Command("redis-cli", "-h", host, "-p", port, "INFO", "commandstats").Output()
	if err != nil {
		t.Fatalf("redis-cli INFO commandstats: %v", err)
	}
	m := regexp.MustCompile(`(?m)^cmdstat_` + command + `:calls=(\d+)`).FindStringSubmatch(string(out))
	if m == nil {
		return 0
	}
	n, _ := strconv.Atoi(m[1])
	return n
}

// TestE2EClusterScriptRate: node A's policy script sets tenant acme's
// rate (kumo.limit_sending, 600 a minute) when a client greets it; node B,
// which runs no script, has acme's rate at 10/s within seconds (its queue
// summary), and keeps it after a restart with Redis gone (its spool).
func TestE2EClusterScriptRate(t *testing.T) {
	srv := startRedis(t)
	a := startGannet(t, gannetConfig{DNS: "127.0.0.1:1", DeliveryPort: 1, Extra: clusterTOML(srv, "node-a"), Script: `
kumo.on("smtp_server_greeting", function(domain, meta)
  kumo.limit_sending("acme", 600, { per = "minute" })
end)
`})
	b := startGannet(t, gannetConfig{DNS: "127.0.0.1:1", DeliveryPort: 1, Extra: clusterTOML(srv, "node-b")})
	injectSimple(t, b, "user@far.example", "acme", "", "queued on node-b") // its DNS answers nothing: it stays
	acmeRate := func(g *gannet) (float64, bool) {
		var sum struct {
			Tenants []struct {
				Name          string
				EffectiveRate float64 `json:"effective_rate"`
			}
		}
		getJSON(t, "http://"+g.HTTPAddr+"/api/admin/queue-summary/v1", &sum)
		for _, r := range sum.Tenants {
			if r.Name == "acme" {
				return r.EffectiveRate, true
			}
		}
		return 0, false
	}
	if r, ok := acmeRate(b); !ok || r != 0 {
		t.Fatalf("node B's acme rate before any script set it: %v (row %v), want none", r, ok)
	}
	t0 := time.Now()
	dlvSend(t, a, "user@far.example", "") // greets node A: its script sets the rate
	waitFor(t, 10*time.Second, "acme's rate of node A's script on node B", func() (bool, string) {
		r, ok := acmeRate(b)
		return ok && r > 9.99 && r < 10.01, fmt.Sprintf("%v (row %v)", r, ok)
	})
	t.Logf("node A's kumo.limit_sending in force on node B %v after the session to A began", time.Since(t0).Round(time.Millisecond))

	srv.Kill()
	b.Stop()
	b.Restart()
	waitFor(t, 10*time.Second, "node B's acme rate after a restart with Redis down, kept in its spool", func() (bool, string) {
		r, ok := acmeRate(b)
		return ok && r > 9.99 && r < 10.01, fmt.Sprintf("%v (row %v)", r, ok)
	})
}
