package e2e

import (
	"encoding/json"
	"fmt"
	"net"
	"net/smtp"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	bsink "gannet/bench/smtpsink/sink"
)

// The fleet test's shape: its site limits, shared by the three nodes, and
// the mail it injects (enough that every node always has some queued).
const (
	fleetRate      = 50.0 // max_message_rate of the site, messages per second for the whole fleet
	fleetConns     = 3    // connection_limit of the site, for the whole fleet (one per node when Redis is down)
	fleetMessages  = 4500 // injected through haproxy…
	fleetInjectFor = 18 * time.Second
	fleetInjectors = 6 // …over this many connections, two per node
)

// fleetInjector sends fleetMessages messages, each with its own X-Blast-Id,
// through haproxy from proxyClientOK, paced over fleetInjectFor, and
// keeps the ids gannet answered 250 to.
type fleetInjector struct {
	mu    sync.Mutex
	acked map[string]bool
	errs  []string
	done  sync.WaitGroup
}

func injectFleet(frontend, rcpt string) *fleetInjector {
	in := &fleetInjector{acked: map[string]bool{}}
	var next atomic.Int64
	every := fleetInjectFor * fleetInjectors / fleetMessages // each connection's pace
	deadline := time.Now().Add(fleetInjectFor + 20*time.Second)
	for w := range fleetInjectors {
		in.done.Add(1)
		go func() {
			defer in.done.Done()
			if err := in.run(w, frontend, rcpt, &next, every, deadline); err != nil {
				in.mu.Lock()
				in.errs = append(in.errs, fmt.Sprintf("injector %d: %v", w, err))
				in.mu.Unlock()
			}
		}()
	}
	return in
}

// run is one injecting connection: it sends until every message is taken
// or the deadline passes.
func (in *fleetInjector) run(w int, frontend, rcpt string, next *atomic.Int64, every time.Duration, deadline time.Time) error {
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(proxyClientOK)}, Timeout: 5 * time.Second}
	conn, err := d.Dial("tcp", frontend)
	if err != nil {
		return err
	}
	conn.SetDeadline(deadline)
	c, err := smtp.NewClient(conn, "relay.e2e.test")
	if err != nil {
		conn.Close()
		return err
	}
	defer c.Close()
	if err := c.Hello(fmt.Sprintf("injector%d.e2e.test", w)); err != nil {
		return err
	}
	tick := time.NewTicker(every)
	defer tick.Stop()
	for time.Now().Before(deadline) {
		n := next.Add(1)
		if n > fleetMessages {
			return c.Quit()
		}
		id := fmt.Sprintf("fleet-%d", n)
		if err := c.Mail(senderAddr); err != nil {
			return err
		}
		if err := c.Rcpt(rcpt); err != nil {
			return err
		}
		wc, err := c.Data()
		if err != nil {
			return err
		}
		fmt.Fprintf(wc, "From: %s\r\nTo: %s\r\nSubject: fleet %d\r\nX-Blast-Id: %s\r\n\r\nA message for the fleet.\r\n", senderAddr, rcpt, n, id)
		if err := wc.Close(); err != nil { // the reply to the final dot
			return err
		}
		in.mu.Lock()
		in.acked[id] = true
		in.mu.Unlock()
		<-tick.C
	}
	return fmt.Errorf("not done by the deadline")
}

// arrivalsBetween counts the messages the sink received in [from, to).
func arrivalsBetween(msgs []bsink.Message, from, to time.Time) int {
	n := 0
	for _, m := range msgs {
		if !m.Received.Before(from) && m.Received.Before(to) {
			n++
		}
	}
	return n
}

// fleetMetric sums a metric over the nodes.
func fleetMetric(t *testing.T, nodes []proxyNode, name string) (sum float64, each []float64) {
	for _, n := range nodes {
		v := scrapeMetrics(t, n.HTTPAddr).values[name]
		sum += v
		each = append(each, v)
	}
	return sum, each
}

// TestE2EClusterFleet: three gannet processes behind a real haproxy share
// one redis-server and deliver to one site (bench/smtpsink as its MX) whose
// max_message_rate (50/s) and connection_limit (3) are the fleet's. Mail is
// injected through haproxy (6 connections, two per node) at 250/s for 18 s,
// so every node always has plenty queued and alone would send at the full
// 50/s (150/s for the three). Phases, from the first message injected:
//
//   - 3–23 s, shared limits: the sink receives 50/s ±5% and never more than
//     3 connections at once. The first 3 s are left out: an idle limit lets
//     two lease batches through at once (the GCRA's burst tolerance), and
//     the injection has just begun.
//   - 23 s: a suspension of the domain made through node 0's admin API
//     stops delivery from all three within 1 s (the rule travels through
//     Redis: TestE2EClusterSharedSuspension covers its other paths); it is
//     resumed through node 2 two seconds later.
//   - 27–37 s, redis-server killed (SIGKILL): every node falls back to its
//     1/3 share and keeps delivering (each at about 16.7/s, the fleet at
//     about 50/s), and counts the failed calls in
//     gannet_cluster_redis_errors_total.
//   - 37 s, redis-server started again on the same port (empty): at most
//     3 connections right after it (each node keeps to its share until
//     its heartbeat has put its leases back), and from 40 s to 55 s the
//     shared limits hold again (50/s ±5%, at most 3 connections).
//
// At the end the domain is suspended again and each message gannet
// answered 250 to is either at the sink, once, or still queued on a node.
// The Redis round trips per 1,000 delivered messages are logged
// (gannet_cluster_redis_calls_total, by op).
func TestE2EClusterFleet(t *testing.T) {
	w := newRelayWorld(t)
	srv := startRedis(t)
	sink := dlvSink(t, hostPort(mxIP1, w.port), "")
	var nodes []proxyNode
	var pp []string
	for i := range 3 {
		n := startProxyNode(t, gannetConfig{DNS: w.dns.Addr, DeliveryPort: w.port, TLSMode: "disabled",
			Extra: clusterTOML(srv, fmt.Sprintf("fleet-%d", i)) + fmt.Sprintf(`
[shaping.%q]
max_message_rate = "%.0f/s"
connection_limit = %d
max_deliveries_per_connection = 25
`, domain1, fleetRate, fleetConns)})
		nodes = append(nodes, n)
		pp = append(pp, n.smtpPP)
	}
	fe := hostPort("127.0.0.1", freePort(t, false, "127.0.0.1"))
	startHAProxy(t, haproxyConfig(haproxyTCP("smtp", fe, "send-proxy-v2", pp...)), fe)
	for _, n := range nodes {
		waitFor(t, 10*time.Second, "3 nodes seen by "+n.HTTPAddr, func() (bool, string) {
			out, errOut, _ := runGannetCLI(t, n.gannet, "cluster", "status")
			return strings.Contains(out, "3 nodes"), out + errOut
		})
	}

	rcpt := "fleet@" + domain1
	t0 := time.Now()
	at := func(d time.Duration) time.Time { return t0.Add(d) }
	sleepUntil := func(d time.Duration) { time.Sleep(time.Until(at(d))) }
	in := injectFleet(fe, rcpt)
	defer in.done.Wait()

	rateIn := func(from, to time.Duration) float64 {
		n := arrivalsBetween(sink.Messages(), at(from), at(to))
		return float64(n) / (to - from).Seconds()
	}
	checkRate := func(phase string, from, to time.Duration) {
		got := rateIn(from, to)
		t.Logf("%s (%v–%v): the sink received %.1f/s, the fleet's limit is %.0f/s: error %+.1f%%", phase, from, to, got, fleetRate, 100*(got-fleetRate)/fleetRate)
		if got < fleetRate*0.95 || got > fleetRate*1.05 {
			t.Errorf("%s: the sink received %.1f/s from the fleet, not within 5%% of the site's limit of %.0f/s", phase, got, fleetRate)
		}
	}
	checkConns := func(phase string, limit int64) {
		peak := sink.TakeMaxConcurrent()
		t.Logf("%s: at most %d connections at the sink at once", phase, peak)
		if peak > limit {
			t.Errorf("%s: the sink saw %d connections from the fleet at once, over the site's connection_limit of %d", phase, peak, limit)
		}
	}

	// Shared limits.
	sleepUntil(3 * time.Second)
	checkConns("the first 3s", fleetConns)
	sleepUntil(23 * time.Second)
	checkConns("shared limits", fleetConns)
	checkRate("shared limits", 3*time.Second, 23*time.Second)

	// A suspension made on node 0 stops every node within a second.
	if out, errOut, code := runGannetCLI(t, nodes[0].gannet, "suspend", "-domain", domain1, "-reason", "fleet test"); code != 0 {
		t.Fatalf("suspend on node 0: %d %s%s", code, out, errOut)
	}
	suspended := time.Now()
	sleepUntil(25 * time.Second)
	var last time.Time
	for _, m := range sink.Messages() {
		if m.Received.After(last) {
			last = m.Received
		}
	}
	t.Logf("suspension on node 0: the last message reached the sink %v after it", last.Sub(suspended).Round(time.Millisecond))
	if late := arrivalsBetween(sink.Messages(), suspended.Add(time.Second), time.Now()); late > 0 || last.Sub(suspended) > time.Second {
		t.Errorf("suspension made on node 0: %d messages reached the sink more than 1s later (the last %v after)", late, last.Sub(suspended))
	}
	if out, errOut, code := runGannetCLI(t, nodes[2].gannet, "resume", "-domain", domain1); code != 0 {
		t.Fatalf("resume on node 2: %d %s%s", code, out, errOut)
	}

	// Redis killed: each node on its share.
	sleepUntil(27 * time.Second)
	errsBefore, _ := fleetMetric(t, nodes, "gannet_cluster_redis_errors_total")
	srv.Kill()
	sleepUntil(29 * time.Second)
	_, d0 := fleetMetric(t, nodes, "gannet_messages_delivered_total")
	s0 := time.Now()
	sink.TakeMaxConcurrent()
	sleepUntil(37 * time.Second)
	_, d1 := fleetMetric(t, nodes, "gannet_messages_delivered_total")
	secs := time.Since(s0).Seconds()
	// Not checked: each node opens no more than its share (one), but keeps
	// the connections it had when Redis went away until they are done.
	t.Logf("Redis down: at most %d connections at the sink at once", sink.TakeMaxConcurrent())
	share := fleetRate / float64(len(nodes))
	for i := range nodes {
		r := (d1[i] - d0[i]) / secs
		t.Logf("Redis down: node %d delivered %.1f/s (its share: %.1f/s)", i, r, share)
		if r < share*0.7 || r > share*1.3 {
			t.Errorf("Redis down: node %d delivered %.1f/s, want about its share of %.1f/s", i, r, share)
		}
	}
	if got := rateIn(29*time.Second, 37*time.Second); got < fleetRate*0.8 || got > fleetRate*1.2 {
		t.Errorf("Redis down: the sink received %.1f/s from the fleet, want about %.0f/s (each node its share)", got, fleetRate)
	} else {
		t.Logf("Redis down: the sink received %.1f/s", got)
	}
	errsAfter, errsEach := fleetMetric(t, nodes, "gannet_cluster_redis_errors_total")
	for i, v := range errsEach {
		if v == 0 {
			t.Errorf("node %d counted no failed Redis call while Redis was down", i)
		}
	}
	t.Logf("Redis down: %.0f failed Redis calls counted by the fleet", errsAfter-errsBefore)

	// Redis back: the shared limits return.
	if err := srv.Restart(); err != nil {
		t.Fatalf("restart redis-server: %v", err)
	}
	sink.TakeMaxConcurrent() // the Redis-down period ends
	sleepUntil(40 * time.Second)
	// Redis came back empty: the nodes keep to their shares until their
	// heartbeats have put their leases back in it.
	checkConns("the first 3s after Redis restarted", fleetConns)
	sleepUntil(55 * time.Second)
	checkRate("Redis restarted", 40*time.Second, 55*time.Second)
	checkConns("Redis restarted", fleetConns)

	// Nothing lost: every acked message delivered once or still queued.
	if out, errOut, code := runGannetCLI(t, nodes[1].gannet, "suspend", "-domain", domain1, "-reason", "fleet test: count"); code != 0 {
		t.Fatalf("suspend on node 1: %d %s%s", code, out, errOut)
	}
	in.done.Wait()
	for _, e := range in.errs {
		t.Errorf("%s", e)
	}
	time.Sleep(2 * time.Second) // the deliveries under way end
	seen := map[string]int{}
	for _, m := range sink.Messages() {
		id, _ := headerValue(m.Data, "X-Blast-Id")
		seen[id]++
	}
	var queued int
	waitFor(t, 10*time.Second, "the queue summary of the fleet", func() (bool, string) {
		out, errOut, code := runGannetCLI(t, nodes[0].gannet, "queue", "summary", "-cluster", "-json")
		var s struct {
			Totals struct {
				Messages int `json:"messages"`
			} `json:"totals"`
		}
		ok := code == 0 && json.Unmarshal([]byte(out), &s) == nil
		queued = s.Totals.Messages
		return ok, out + errOut
	})
	var dups, strays []string
	for id, n := range seen {
		if n > 1 {
			dups = append(dups, fmt.Sprintf("%s ×%d", id, n))
		}
		if !in.acked[id] {
			strays = append(strays, id)
		}
	}
	sort.Strings(dups)
	if len(dups) > 0 || len(strays) > 0 {
		t.Errorf("delivered more than once: %v; delivered but never acked: %v", dups, strays)
	}
	t.Logf("%d messages acked, %d delivered, %d queued on the fleet", len(in.acked), len(seen), queued)
	if len(seen)+queued != len(in.acked) {
		t.Errorf("%d messages acked, but %d delivered and %d queued: %d lost", len(in.acked), len(seen), queued, len(in.acked)-len(seen)-queued)
	}

	// What the cluster cost: Redis round trips per 1,000 messages delivered.
	delivered, _ := fleetMetric(t, nodes, "gannet_messages_delivered_total")
	var parts []string
	var total float64
	for _, op := range []string{"rate", "conn", "rules", "heartbeat", "other"} {
		v, _ := fleetMetric(t, nodes, `gannet_cluster_redis_calls_total{op="`+op+`"}`)
		total += v
		parts = append(parts, fmt.Sprintf("%s %.0f", op, 1000*v/delivered))
	}
	rate, _ := fleetMetric(t, nodes, `gannet_cluster_redis_calls_total{op="rate"}`)
	t.Logf("Redis round trips per 1,000 messages delivered: %.0f (%s); %d messages in all", 1000*total/delivered, strings.Join(parts, ", "), int(delivered))
	if rate == 0 || rate >= delivered {
		t.Errorf("%.0f rate calls to Redis for %.0f messages: want some, and fewer than one per message (tokens are leased 5 at a time)", rate, delivered)
	}
}
