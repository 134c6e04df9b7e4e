package outbound

import (
	"context"
	"crypto/tls"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	bsink "gannet/bench/smtpsink/sink"
)

func startBenchSink(t testing.TB, cfg bsink.Config) *bsink.Sink {
	t.Helper()
	s, err := bsink.Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// TestEgressSources: each egress source connects from its own address and
// says its own EHLO name, on connections pooled separately; the receiver
// sees the peer addresses 127.0.0.5 and 127.0.0.6.
func TestEgressSources(t *testing.T) {
	snk := startBenchSink(t, bsink.Config{Keep: true})
	port := netip.MustParseAddrPort(snk.Addr()).Port()
	m := newTestManager(t, port, nil)
	srcA := Source{Name: "ip5", Addr: netip.MustParseAddr("127.0.0.5"), EHLOName: "out5.gannet.test"}
	srcB := Source{Name: "ip6", Addr: netip.MustParseAddr("127.0.0.6")}
	for i, src := range []Source{srcA, srcB, srcA, {}} {
		e := env(testBody, "a"+itoa(i)+"@dst.test")
		e.Source = src
		o := m.Deliver(context.Background(), routeTo("dst.test", "127.0.0.1"), e)
		wantStatuses(t, o, Delivered)
		if o.Source != src.Name {
			t.Errorf("Outcome.Source %q, want %q", o.Source, src.Name)
		}
	}
	msgs := snk.Messages()
	if len(msgs) != 4 {
		t.Fatalf("%d messages", len(msgs))
	}
	want := []struct{ ip, helo string }{
		{"127.0.0.5", "out5.gannet.test"}, {"127.0.0.6", "relay.gannet.test"},
		{"127.0.0.5", "out5.gannet.test"}, {"127.0.0.1", "relay.gannet.test"},
	}
	for i, msg := range msgs {
		peer := netip.MustParseAddrPort(msg.Peer).Addr().String()
		if peer != want[i].ip || msg.Helo != want[i].helo {
			t.Errorf("message %d from %s (EHLO %s), want %s (EHLO %s)", i, peer, msg.Helo, want[i].ip, want[i].helo)
		}
	}
	// Source A's connection was reused for its second message: three
	// connections for four messages.
	if n := snk.Stats().Connections; n != 3 {
		t.Errorf("%d connections, want 3 (one per source)", n)
	}
}

// TestConnectionRate: max_connection_rate paces new connections.
func TestConnectionRate(t *testing.T) {
	snk := startBenchSink(t, bsink.Config{})
	port := netip.MustParseAddrPort(snk.Addr()).Port()
	m := newTestManager(t, port, func(o *Options) {
		o.Limits = func(Path) Limits {
			return Limits{Connections: 4, MaxDeliveriesPerConn: 1, ConnectionRate: 10}
		}
	})
	start := time.Now()
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			o := m.Deliver(context.Background(), routeTo("dst.test", "127.0.0.1"), env(testBody, "a@dst.test"))
			wantStatuses(t, o, Delivered)
		}()
	}
	wg.Wait()
	el := time.Since(start)
	if st := snk.Stats(); st.Connections != 8 || st.MaxConcurrentConns > 4 {
		t.Errorf("connections %d (max %d at once), want 8 (max 4)", st.Connections, st.MaxConcurrentConns)
	}
	// 8 connections at 10/s: the last one no sooner than 0.7 s after the first.
	if el < 630*time.Millisecond {
		t.Errorf("8 connections in %v, faster than 10/s", el)
	}
}

// TestPerDomainTLSPolicy: [tls_policy."DOMAIN"] mode = "required" refuses
// a receiver without STARTTLS for that domain only, while other domains at
// the same MX go in the clear (opportunistic), on separate pools.
func TestPerDomainTLSPolicy(t *testing.T) {
	snk := startBenchSink(t, bsink.Config{})
	port := netip.MustParseAddrPort(snk.Addr()).Port()
	m := newTestManager(t, port, func(o *Options) {
		o.TLS = TLSPolicy{Mode: TLSOpportunistic, FallbackPlaintext: true}
		o.TLSFor = func(domain string) (TLSPolicy, string) {
			if domain == "secure.test" {
				return TLSPolicy{Mode: TLSRequired}, domain
			}
			return o.TLS, ""
		}
	})
	r := routeTo("plain.test", "127.0.0.1")
	o := m.Deliver(context.Background(), r, env(testBody, "a@plain.test"))
	wantStatuses(t, o, Delivered)
	r2 := routeTo("secure.test", "127.0.0.1")
	r2.Site = r.Site // same MX site
	o = m.Deliver(context.Background(), r2, env(testBody, "a@secure.test"))
	wantStatuses(t, o, Transient)
	if rep := o.Results[0].Reply; rep.Enhanced != "4.7.10" || !o.Results[0].Local {
		t.Errorf("secure.test: %s (local %v), want a local 451 4.7.10", rep, o.Results[0].Local)
	}
	if !strings.Contains(o.Note, "STARTTLS") {
		t.Errorf("note %q", o.Note)
	}
	if n := snk.Stats().Messages; n != 1 {
		t.Errorf("%d messages at the receiver, want 1 (plain.test only)", n)
	}
}

// TestTLSVersionInOutcome: a STARTTLS session reports version and cipher.
func TestTLSVersionInOutcome(t *testing.T) {
	tc, err := bsink.SelfSignedTLS("mx1.dst.test")
	if err != nil {
		t.Fatal(err)
	}
	snk := startBenchSink(t, bsink.Config{TLS: tc})
	port := netip.MustParseAddrPort(snk.Addr()).Port()
	m := newTestManager(t, port, func(o *Options) {
		o.TLS = TLSPolicy{Mode: TLSOpportunisticInsecure, MinVersion: tls.VersionTLS12}
	})
	o := m.Deliver(context.Background(), routeTo("dst.test", "127.0.0.1"), env(testBody, "a@dst.test"))
	wantStatuses(t, o, Delivered)
	if o.TLSVersion != "TLSv1.3" || o.TLSCipher == "" {
		t.Errorf("TLS %q %q", o.TLSVersion, o.TLSCipher)
	}
}
