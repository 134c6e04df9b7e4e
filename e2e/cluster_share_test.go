package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"

	bsink "gannet/bench/smtpsink/sink"
)

// ruleTOML is a [[shaping_rule]] that suspends a site for duration when
// its reply says [TS01].
func ruleTOML(duration string) string {
	return fmt.Sprintf(`
[[shaping_rule]]
regex = "\\[TS01\\]"
action = "suspend"
duration = %q
`, duration)
}

// TestE2EClusterRuleSuspension: two gannet nodes relaying to one sink
// (one site); the sink answers node-a's first RCPT to trigger@ with
// "421 4.7.0 [TS01]", whose [[shaping_rule]] suspends the site on node-a,
// and through Redis on node-b within about a second: node-b's mail to
// the site stays queued (the sink sees none of it) until the suspension
// ends by itself, everywhere alike, and then it is delivered.
func TestE2EClusterRuleSuspension(t *testing.T) {
	srv := startRedis(t)
	sink := startGoSink(t, hostPort("127.0.0.1", freePort(t, false, "127.0.0.1")),
		"rcpt~trigger@:421:#1:4.7.0 [TS01] deferred due to complaints")
	const suspension = 8 * time.Second
	node := func(id string) *gannet {
		return startGannet(t, gannetConfig{DNS: "127.0.0.1:1", DeliveryPort: 1,
			DeliveryExtra: fmt.Sprintf("relay_to = %q\n", sink.addr()),
			Extra:         clusterTOML(srv, id) + ruleTOML(suspension.String())})
	}
	a, b := node("node-a"), node("node-b")
	suspended := func(g *gannet) (bool, string) {
		out, errOut, code := runGannetCLI(t, g, "suspend", "-list")
		return code == 0 && strings.Contains(out, "rule:"), out + errOut
	}
	// A message to b's site first: it goes (nothing is suspended yet).
	injectSimple(t, b, "before@site.example", "", "", "before")
	waitFor(t, deliveryMax, "node-b's first message at the sink", func() (bool, string) {
		return findArrival(sink.arrivals(t), "before@site.example") != nil, ""
	})

	injectSimple(t, a, "trigger@site.example", "", "", "trigger")
	waitFor(t, deliveryMax, "the site suspended by the rule on node-a", func() (bool, string) { return suspended(a) })
	tA := time.Now()
	waitFor(t, 5*time.Second, "node-a's rule suspension on node-b", func() (bool, string) { return suspended(b) })
	t.Logf("the suspension a rule made on node-a was in force on node-b after %v", time.Since(tA).Round(time.Millisecond))

	injectSimple(t, b, "held@site.example", "", "", "held on node-b")
	time.Sleep(3 * time.Second) // node-b alone would deliver it in well under a second
	if time.Since(tA) < suspension-time.Second {
		if got := sink.arrivals(t); findArrival(got, "held@site.example") != nil {
			t.Fatal("node-b delivered to a site a rule suspended on node-a")
		}
		out, errOut, _ := runGannetCLI(t, b, "queue", "list", "-domain", "site.example")
		if !strings.Contains(out, "held@site.example") {
			t.Errorf("node-b's held message is not in its queue:\n%s%s", out, errOut)
		}
	} else {
		t.Errorf("the check came too late (%v after the suspension): the machine is too slow for it", time.Since(tA))
	}
	// The suspension ends by itself on both: the held mail goes, and the
	// trigger is delivered on its retry (the sink refused it once only).
	waitFor(t, suspension+deliveryMax, "the held and the trigger message at the sink", func() (bool, string) {
		got := sink.arrivals(t)
		return findArrival(got, "held@site.example") != nil && findArrival(got, "trigger@site.example") != nil, ""
	})
	if d := time.Since(tA); d < suspension-2*time.Second {
		t.Errorf("the held message was delivered %v after the suspension of %v began", d, suspension)
	}
	for _, g := range []*gannet{a, b} {
		if ok, out := suspended(g); ok {
			t.Errorf("still suspended on %s after its end:\n%s", g.HTTPAddr, out)
		}
	}
}

// TestE2EClusterSharedSuppression: an address put on the suppression
// list with `gannet suppress add` on node-a is refused at RCPT with 550
// 5.7.1 by node-b within 2 s; removed on node-b, node-a takes it again.
func TestE2EClusterSharedSuppression(t *testing.T) {
	srv := startRedis(t)
	node := func(id string) *gannet {
		return startGannet(t, gannetConfig{DNS: "127.0.0.1:1", DeliveryPort: 1, Extra: clusterTOML(srv, id)})
	}
	a, b := node("node-a"), node("node-b")
	const addr = "gone@far.example"
	rcpt := func(g *gannet) string {
		c := dialSMTP(t, "", g.SMTPAddr)
		defer c.Cmd("QUIT")
		if r := c.Cmd("MAIL FROM:<app@src.test>"); !strings.HasPrefix(r, "250") {
			t.Fatalf("MAIL: %q", r)
		}
		return c.Cmd("RCPT TO:<" + addr + ">")
	}
	if r := rcpt(b); !strings.HasPrefix(r, "250") {
		t.Fatalf("RCPT before the entry: %q", r)
	}
	// Both nodes subscribed: their heartbeat registered them.
	waitFor(t, 10*time.Second, "both nodes in the cluster", func() (bool, string) {
		out, errOut, code := runGannetCLI(t, a, "cluster", "status")
		return code == 0 && strings.Contains(out, "2 nodes"), out + errOut
	})

	t0 := time.Now()
	if out, errOut, code := runGannetCLI(t, a, "suppress", "add", addr, "-reason", "e2e"); code != 0 {
		t.Fatalf("suppress add on node-a: %d %s%s", code, out, errOut)
	}
	waitFor(t, 2*time.Second, "node-b refuses the address with 550 5.7.1", func() (bool, string) {
		r := rcpt(b)
		return strings.HasPrefix(r, "550 5.7.1"), r
	})
	t.Logf("an entry added on node-a was in force on node-b after %v", time.Since(t0).Round(time.Millisecond))
	out, _, _ := runGannetCLI(t, b, "suppress", "list")
	if !strings.Contains(out, addr) || !strings.Contains(out, "e2e") {
		t.Errorf("node-b's suppress list does not show the entry with its reason:\n%s", out)
	}

	t0 = time.Now()
	if out, errOut, code := runGannetCLI(t, b, "suppress", "remove", addr); code != 0 {
		t.Fatalf("suppress remove on node-b: %d %s%s", code, out, errOut)
	}
	waitFor(t, 2*time.Second, "node-a takes the address again", func() (bool, string) {
		r := rcpt(a)
		return strings.HasPrefix(r, "250"), r
	})
	t.Logf("its removal on node-b was in force on node-a after %v", time.Since(t0).Round(time.Millisecond))

	// Persisted in node-b's spool: still refused after a restart, with
	// Redis gone (the entry is node-b's own now).
	if out, errOut, code := runGannetCLI(t, a, "suppress", "add", addr, "-reason", "again"); code != 0 {
		t.Fatalf("suppress add on node-a: %d %s%s", code, out, errOut)
	}
	waitFor(t, 2*time.Second, "node-b refuses the address again", func() (bool, string) {
		r := rcpt(b)
		return strings.HasPrefix(r, "550 5.7.1"), r
	})
	srv.Kill()
	b.Stop()
	b.Restart()
	if r := rcpt(b); !strings.HasPrefix(r, "550 5.7.1") {
		t.Errorf("after a restart with Redis down, node-b's RCPT reply %q, want 550 5.7.1", r)
	}
}

// TestE2EClusterTenantRate: two gannet processes sharing one
// redis-server, each given half of a tenant's mail; the tenant's
// max_message_rate of 10/s is the fleet's (limit_scope left at its
// default), so bench/smtpsink receives about 10/s in all, not 20/s (each
// node alone is allowed 10/s); the site's own limit is far above. The
// mail is queued first, so the rate is the limit's alone.
func TestE2EClusterTenantRate(t *testing.T) {
	w := newRelayWorld(t)
	srv := startRedis(t)
	rcv := dlvSink(t, hostPort(mxIP1, w.port), "")
	const (
		rate    = 10.0 // messages per second, the tenant's for the fleet
		perNode = 30
	)
	nodes := clusterPair(t, w, srv, fmt.Sprintf(`
[[tenant]]
name = "acme"
max_message_rate = "10/s"

[shaping.%q]
max_message_rate = "1000/s"
`, domain1))
	queueSuspended(t, nodes, rcv, perNode, "t", "X-Tenant: acme\r\n")
	got := dlvWaitMessages(t, rcv, 2*perNode)
	// Left out: the two leased batches (of one) an idle limit lets
	// through at once.
	checkFleetRate(t, got, 2, rate, 1.2, "messages of the tenant")
}

// queueSuspended gives each of nodes perNode messages to domain1 (local
// parts prefix, then the node's and the message's number; headers
// before From) while the domain is suspended on the cluster (a shared
// admin rule), checks that rcv received none of them, and resumes the
// domain: from then on the mail leaves at the pace of the limits alone,
// not at the injection's.
func queueSuspended(t *testing.T, nodes []*gannet, rcv *bsink.Sink, perNode int, prefix, headers string) {
	t.Helper()
	if out, errOut, code := runGannetCLI(t, nodes[0], "suspend", "-domain", domain1, "-reason", "e2e"); code != 0 {
		t.Fatalf("suspend: %d %s%s", code, out, errOut)
	}
	last := nodes[len(nodes)-1]
	waitFor(t, 5*time.Second, "the suspension on the last node", func() (bool, string) {
		out, errOut, code := runGannetCLI(t, last, "suspend", "-list")
		return code == 0 && strings.Contains(out, domain1), out + errOut
	})
	for i := range perNode {
		for j, g := range nodes {
			dlvSend(t, g, fmt.Sprintf("%s%d-%d@%s", prefix, j, i, domain1), headers)
		}
	}
	if n := len(rcv.Messages()); n > 0 {
		t.Fatalf("%d messages delivered while the domain was suspended", n)
	}
	if out, errOut, code := runGannetCLI(t, last, "resume", "-domain", domain1); code != 0 {
		t.Fatalf("resume: %d %s%s", code, out, errOut)
	}
}

// arrivalRate is the rate (per second) at which a sink received msgs,
// from the first to the last, leaving out the first (the clock starts with
// it) and burst more (what an idle limit lets through at once); and the
// seconds from the first to the last.
func arrivalRate(msgs []bsink.Message, burst int) (rate, elapsed float64) {
	first, last := msgs[0].Received, msgs[0].Received
	for _, m := range msgs {
		if m.Received.Before(first) {
			first = m.Received
		}
		if m.Received.After(last) {
			last = m.Received
		}
	}
	elapsed = last.Sub(first).Seconds()
	return float64(len(msgs)-1-burst) / elapsed, elapsed
}
