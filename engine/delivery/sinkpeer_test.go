package delivery

// Tests of the delivery loop with the real outbound connection manager, the
// real shaper and bench/smtpsink as the receiver, with its fault injection.

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	bsink "gannet/bench/smtpsink/sink"
	"gannet/engine/logrec"
	"gannet/engine/outbound"
	"gannet/engine/shaping"
	"gannet/queue"
	"gannet/resolver"
	"gannet/resolver/dnstest"
)

// startBenchSink runs an in-process sink; the test's cleanup closes it.
func startBenchSink(t testing.TB, cfg bsink.Config) *bsink.Sink {
	t.Helper()
	s, err := bsink.Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// realPath is a delivery loop with a real Manager and Shaper, relaying
// everything to one receiver (RelayTo), with an in-memory store.
type realPath struct {
	loop  *Loop
	store *memStore
	rec   *recorder
	sh    *shaping.Shaper
	mgr   *outbound.Manager
}

func startRealPath(t testing.TB, relayTo string, base outbound.Limits, mod func(*outbound.Options, *Options, *shaping.Config)) *realPath {
	t.Helper()
	sc := shaping.Config{
		Base:    func(string, []string) outbound.Limits { return base },
		Backoff: shaping.Backoff{RecoverInterval: 200 * time.Millisecond},
	}
	mo := outbound.Options{
		EHLOName: "relay.gannet.test", RelayTo: relayTo,
		ConnectTimeout: 2 * time.Second, CommandTimeout: 5 * time.Second, DataTimeout: 5 * time.Second,
		HostBackoff: time.Millisecond, TLS: outbound.TLSPolicy{Mode: outbound.TLSDisabled},
	}
	p := &realPath{store: newMemStore(), rec: newRecorder()}
	lo := Options{
		Store: p.store, RelayTo: relayTo, Record: p.rec, Clock: queue.SystemClock(),
		Retry: queue.RetryPolicy{Initial: 100 * time.Millisecond, Max: 200 * time.Millisecond, MaxAge: time.Hour},
	}
	if mod != nil {
		mod(&mo, &lo, &sc)
	}
	p.sh = shaping.New(sc)
	mo.Limits = p.sh.Limits
	p.mgr = outbound.New(mo)
	lo.Transport, lo.Shaper = p.mgr, p.sh
	p.loop = New(lo)
	p.loop.Start()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		p.loop.Stop(ctx)
	})
	return p
}

// submit hands the loop a message with a Message-ID header equal to id.
func (p *realPath) submit(t testing.TB, id string, prio int, rcpts ...string) {
	t.Helper()
	m := newMessage(id, time.Now(), rcpts...)
	m.Priority = prio
	p.store.mu.Lock()
	p.store.bodies[id] = []byte("Message-ID: <" + id + ">\r\nSubject: test\r\n\r\nHello.\r\n")
	p.store.mu.Unlock()
	if err := p.loop.Enqueue(m); err != nil {
		t.Fatal(err)
	}
}

// site returns the status of the one site (RelayTo).
func (p *realPath) site(t testing.TB) SiteStatus {
	st := p.loop.Sites()
	if len(st) == 0 {
		return SiteStatus{}
	}
	return st[0]
}

// arrivals counts messages per Message-ID at a sink.
type arrivals struct {
	mu    sync.Mutex
	n     map[string]int
	times []time.Time
}

func (a *arrivals) onMessage(m *bsink.Message) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.n == nil {
		a.n = map[string]int{}
	}
	a.n[bsink.MessageKey(m.Data)]++
	a.times = append(a.times, m.Received)
}

func (a *arrivals) count() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.times)
}

func (a *arrivals) duplicates() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	var d []string
	for k, n := range a.n {
		if n > 1 {
			d = append(d, fmt.Sprintf("%s×%d", k, n))
		}
	}
	return d
}

func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestSinkShapingLimits: connection_limit, max_message_rate and
// max_deliveries_per_connection hold as the receiver sees them.
func TestSinkShapingLimits(t *testing.T) {
	var arr arrivals
	snk := startBenchSink(t, bsink.Config{Keep: true, OnMessage: arr.onMessage,
		Faults: bsink.Faults{Delays: []bsink.Delay{{Stage: bsink.StageDot, Duration: 20 * time.Millisecond}}}})
	const n, rate = 100, 40.0
	p := startRealPath(t, snk.Addr(), outbound.Limits{Connections: 3, MessageRate: rate, MaxDeliveriesPerConn: 10}, nil)
	for i := 0; i < n; i++ {
		p.submit(t, "m"+itoa(i), 0, "r@x.test")
	}
	waitFor(t, 20*time.Second, "100 arrivals", func() bool { return arr.count() == n })
	st := snk.Stats()
	if st.MaxConcurrentConns > 3 {
		t.Errorf("receiver saw %d connections at once, limit 3", st.MaxConcurrentConns)
	}
	if st.Connections < n/10 || st.Connections > n/2 {
		t.Errorf("%d connections for %d messages at 10 per connection", st.Connections, n)
	}
	arr.mu.Lock()
	sort.Slice(arr.times, func(i, j int) bool { return arr.times[i].Before(arr.times[j]) })
	span := arr.times[n-1].Sub(arr.times[0])
	arr.mu.Unlock()
	measured := float64(n-1) / span.Seconds()
	t.Logf("measured %.1f msg/s over %v (limit %.0f/s), %d connections, max %d at once", measured, span, rate, st.Connections, st.MaxConcurrentConns)
	if measured > rate*1.1 {
		t.Errorf("measured rate %.1f/s exceeds max_message_rate %.0f/s", measured, rate)
	}
	if d := arr.duplicates(); len(d) > 0 {
		t.Errorf("duplicates: %v", d)
	}
}

// TestSinkThrottleBackoffAndRecovery: while the receiver answers 421 past
// 20 messages a second, the site's effective rate and connections fall;
// once it stops, they climb back to the configured limits. Every message
// arrives exactly once and the connection limit always holds.
func TestSinkThrottleBackoffAndRecovery(t *testing.T) {
	var arr arrivals
	snk := startBenchSink(t, bsink.Config{OnMessage: arr.onMessage,
		Faults: bsink.Faults{Throttle: bsink.Throttle{Limit: 10, Per: 500 * time.Millisecond}}})
	base := outbound.Limits{Connections: 4, MessageRate: 100, MaxDeliveriesPerConn: 50}
	p := startRealPath(t, snk.Addr(), base, nil)
	for i := 0; i < 150; i++ {
		p.submit(t, "a"+itoa(i), 0, "r@x.test")
	}
	minRate, minConns := base.MessageRate, base.Connections
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) && (snk.Stats().Throttled < 10 || time.Since(deadline.Add(-15*time.Second)) < 1500*time.Millisecond) {
		s := p.site(t)
		if s.Site != "" {
			minRate, minConns = min(minRate, s.EffectiveRate), min(minConns, s.Connections)
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Logf("under throttling: %d refused with 421; effective rate fell to %.1f/s, connections to %d", snk.Stats().Throttled, minRate, minConns)
	if snk.Stats().Throttled == 0 || minRate > 0.75*base.MessageRate || minConns >= base.Connections {
		t.Fatalf("no back-off: throttled %d, min rate %.1f, min connections %d", snk.Stats().Throttled, minRate, minConns)
	}
	// The receiver stops throttling; more mail lets the site recover.
	snk.SetFaults(bsink.Faults{})
	for i := 0; i < 250; i++ {
		p.submit(t, "b"+itoa(i), 0, "r@x.test")
	}
	waitFor(t, 20*time.Second, "recovery to the configured limits", func() bool {
		s := p.site(t)
		return s.EffectiveRate == base.MessageRate && s.Connections == base.Connections
	})
	waitFor(t, 20*time.Second, "400 arrivals", func() bool { return arr.count() == 400 })
	if st := snk.Stats(); st.MaxConcurrentConns > int64(base.Connections) {
		t.Errorf("receiver saw %d connections at once, limit %d", st.MaxConcurrentConns, base.Connections)
	}
	if d := arr.duplicates(); len(d) > 0 {
		t.Errorf("duplicates: %v", d)
	}
}

// TestSinkConnectionLostRetriesEveryRecipient: a connection dropped after
// the data, before the final reply, leaves every recipient of the
// transaction to a retry; a recipient refused with 550 is bounced once and
// never also delivered.
func TestSinkConnectionLostRetriesEveryRecipient(t *testing.T) {
	var arr arrivals
	snk := startBenchSink(t, bsink.Config{Keep: true, OnMessage: arr.onMessage, Faults: bsink.Faults{
		Drops:    []bsink.Drop{{Stage: bsink.StageDot, Prob: 1}},
		Failures: []bsink.Failure{{Stage: bsink.StageRcpt, Code: 550, Prob: 1, Match: "bad", Text: "5.1.1 no such user"}},
	}})
	p := startRealPath(t, snk.Addr(), outbound.Limits{Connections: 1}, func(_ *outbound.Options, o *Options, _ *shaping.Config) {
		o.Retry = queue.RetryPolicy{Initial: 300 * time.Millisecond, Max: time.Second, MaxAge: time.Hour}
	})
	p.submit(t, "m1", 0, "one@x.test", "bad@x.test", "two@x.test")
	p.rec.waitFor(t, 3)
	snk.SetFaults(bsink.Faults{Failures: []bsink.Failure{{Stage: bsink.StageRcpt, Code: 550, Prob: 1, Match: "bad", Text: "5.1.1 no such user"}}})
	waitFor(t, 10*time.Second, "final outcomes", func() bool { return p.loop.Messages() == 0 })
	by := map[string][]string{}
	for _, r := range p.rec.all() {
		by[r.Recipient] = append(by[r.Recipient], string(r.Type)+" "+r.Response.EnhancedCode)
	}
	for _, rc := range []string{"one@x.test", "two@x.test"} {
		got := strings.Join(by[rc], ", ")
		if got != "TransientFailure 4.4.2, Delivery 2.0.0" {
			t.Errorf("%s: %s, want a transient 4.4.2 (connection lost) then a delivery", rc, got)
		}
	}
	if got := by["bad@x.test"]; len(got) == 0 || got[len(got)-1] != "Bounce 5.1.1" || strings.Contains(strings.Join(got, ","), "Delivery") {
		t.Errorf("bad@x.test: %v, want to end bounced and never delivered", got)
	}
	if n := arr.count(); n != 1 {
		t.Errorf("%d messages arrived, want 1", n)
	}
}

// TestFailoverToSecondMX: the first MX host refuses connections; the
// message goes to the second, and the record names it.
func TestFailoverToSecondMX(t *testing.T) {
	port := freePortOn(t, "127.0.0.2", "127.0.0.3")
	snk := startBenchSink(t, bsink.Config{Listen: []string{netip.AddrPortFrom(netip.MustParseAddr("127.0.0.3"), port).String()}})
	dns := dnstest.NewServer(t, `
$ORIGIN fo.test.
@    300 IN SOA ns hostmaster 1 3600 600 86400 60
@    300 IN MX  10 mx1
@    300 IN MX  20 mx2
mx1  300 IN A   127.0.0.2
mx2  300 IN A   127.0.0.3
`)
	res, err := resolver.New(resolver.Config{Nameservers: []string{dns.Addr}, Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	p := startRealPath(t, "", outbound.Limits{Connections: 2}, func(mo *outbound.Options, o *Options, _ *shaping.Config) {
		mo.SMTPPort = int(port)
		o.Router = res
	})
	p.submit(t, "m1", 0, "a@fo.test")
	recs := p.rec.waitFor(t, 1)
	if recs[0].Type != logrec.Delivery || recs[0].PeerAddress.Addr != "127.0.0.3" || recs[0].PeerAddress.Name != "mx2.fo.test" {
		t.Errorf("record %s peer %+v, want a Delivery through mx2.fo.test 127.0.0.3", recs[0].Type, recs[0].PeerAddress)
	}
	if recs[0].Site != "mx1.fo.test,mx2.fo.test" {
		t.Errorf("site %q", recs[0].Site)
	}
	if snk.Stats().Messages != 1 {
		t.Errorf("sink got %d messages", snk.Stats().Messages)
	}
}

// freePortOn returns a port free on every address given.
func freePortOn(t testing.TB, ips ...string) uint16 {
	t.Helper()
	for try := 0; try < 50; try++ {
		ln, err := net.Listen("tcp", ips[0]+":0")
		if err != nil {
			t.Fatal(err)
		}
		port := netip.MustParseAddrPort(ln.Addr().String()).Port()
		ok := true
		var others []net.Listener
		for _, ip := range ips[1:] {
			l2, err := net.Listen("tcp", netip.AddrPortFrom(netip.MustParseAddr(ip), port).String())
			if err != nil {
				ok = false
				break
			}
			others = append(others, l2)
		}
		ln.Close()
		for _, l := range others {
			l.Close()
		}
		if ok {
			return port
		}
	}
	t.Fatal("no port free on all addresses")
	return 0
}

// TestSMTPSinkRepliesAndBackoff: against Postfix's smtp-sink, a 421 at MAIL
// (-Q mail) cuts the site's rate and connections, while a 450 at RCPT
// (-r rcpt, a mailbox problem, not throttling) and a 550 (-f rcpt) leave
// them alone; the 550 bounces and the others are deferred.
func TestSMTPSinkRepliesAndBackoff(t *testing.T) {
	base := outbound.Limits{Connections: 4, MessageRate: 50}
	for _, c := range []struct {
		flag      string
		status    logrec.Type
		throttled bool
	}{
		{"mail", logrec.TransientFailure, true},
		{"rcpt", logrec.TransientFailure, false},
		{"rcpt5", logrec.Bounce, false},
	} {
		var flags []string
		switch c.flag {
		case "mail":
			flags = []string{"-Q", "mail"}
		case "rcpt":
			flags = []string{"-r", "rcpt"}
		case "rcpt5":
			flags = []string{"-f", "rcpt"}
		}
		snk := startSink(t, 0, flags...)
		p := startRealPath(t, netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), snk.port).String(), base, nil)
		p.submit(t, "m-"+c.flag, 0, "a@x.test")
		recs := p.rec.waitFor(t, 1)
		if recs[0].Type != c.status {
			t.Errorf("%v: record %s %d %s, want %s", flags, recs[0].Type, recs[0].Response.Code, recs[0].Response.EnhancedCode, c.status)
		}
		s := p.site(t)
		if got := s.EffectiveRate < base.MessageRate; got != c.throttled {
			t.Errorf("%v: effective rate %.1f, connections %d (configured %v): throttled %v, want %v",
				flags, s.EffectiveRate, s.Connections, base.MessageRate, got, c.throttled)
		}
	}
}
