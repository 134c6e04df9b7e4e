package outbound

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"gannet/engine/dane"
	"gannet/resolver"
)

// handshakes counts Options.OnTLSHandshake calls.
type handshakes struct{ full, resumed atomic.Int32 }

func (h *handshakes) add(resumed bool) {
	if resumed {
		h.resumed.Add(1)
	} else {
		h.full.Add(1)
	}
}

// tlsReceiver starts a test receiver that offers STARTTLS with cert.
func tlsReceiver(t *testing.T, cert tls.Certificate) *testReceiver {
	rx := newTestReceiver(t, "127.0.0.1")
	rx.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	return rx.Start()
}

// oneTxPerConn makes every delivery open a new connection.
func oneTxPerConn(Path) Limits { return Limits{Connections: 1, MaxDeliveriesPerConn: 1} }

// TestTLSSessionResumption: the second and later connections to the same
// MX host resume the first one's TLS 1.3 session (RFC 8446 §2.2) instead
// of a full handshake, as the receiver sees it, and OnTLSHandshake counts
// both kinds.
func TestTLSSessionResumption(t *testing.T) {
	cert, pool, _, _ := testCert(t, "mx1.dst.test")
	rx := tlsReceiver(t, cert)
	var hs handshakes
	m := newTestManager(t, rx.Addr.Port(), func(o *Options) {
		o.TLS = TLSPolicy{Mode: TLSRequired, RootCAs: pool}
		o.Limits = oneTxPerConn
		o.OnTLSHandshake = hs.add
	})
	for _, rcpt := range []string{"a@dst.test", "b@dst.test", "c@dst.test"} {
		o := m.Deliver(context.Background(), routeTo("dst.test", "127.0.0.1"), env(testBody, rcpt))
		wantStatuses(t, o, Delivered)
		if o.TLSVersion != "TLSv1.3" {
			t.Errorf("%s: TLS %q, want TLSv1.3", rcpt, o.TLSVersion)
		}
	}
	rx.mu.Lock()
	sessions, full, resumed := rx.sessions, rx.tlsHandsOK, rx.tlsResumed
	rx.mu.Unlock()
	if sessions != 3 || full != 3 || resumed != 2 {
		t.Errorf("receiver: %d sessions, %d handshakes, %d resumed; want 3, 3, 2", sessions, full, resumed)
	}
	if full, resumed := hs.full.Load(), hs.resumed.Load(); full != 1 || resumed != 2 {
		t.Errorf("OnTLSHandshake: %d full, %d resumed; want 1, 2", full, resumed)
	}
}

// TestTLSSessionResumptionKeepsChecks: a session that can be resumed does
// not let a connection skip a check a full handshake would make. Under
// DANE the TLSA records are checked on the resumed connection too; and a
// session made without verifying the certificate (another domain's
// opportunistic-insecure policy, the same MX host) is not resumed where
// the certificate must verify.
func TestTLSSessionResumptionKeepsChecks(t *testing.T) {
	t.Run("DANE", func(t *testing.T) {
		good, _, _, _ := testCert(t, "mx1.dst.test")
		stranger, _, _, _ := testCert(t, "mx1.dst.test")
		rx := tlsReceiver(t, good)
		var mu sync.Mutex
		records := []dane.Record{tlsaOf(3, 1, 1, good.Leaf)}
		var hs handshakes
		m := newTestManager(t, rx.Addr.Port(), func(o *Options) {
			o.TLS = TLSPolicy{Mode: TLSOpportunistic, RootCAs: x509.NewCertPool(), FallbackPlaintext: true}
			o.Limits = oneTxPerConn
			o.OnTLSHandshake = hs.add
			o.DANE = func(context.Context, string, resolver.Host, int) DANEHost {
				mu.Lock()
				defer mu.Unlock()
				return DANEHost{Secure: true, Records: records}
			}
		})
		route := secureRoute("dst.test", "127.0.0.1")
		for _, rcpt := range []string{"a@dst.test", "b@dst.test"} {
			o := m.Deliver(context.Background(), route, env(testBody, rcpt))
			wantStatuses(t, o, Delivered)
		}
		if hs.resumed.Load() != 1 {
			t.Fatalf("OnTLSHandshake: %d resumed, want the second of 2", hs.resumed.Load())
		}
		// The host's records change: its cached session must not pass.
		mu.Lock()
		records = []dane.Record{tlsaOf(3, 1, 1, stranger.Leaf)}
		mu.Unlock()
		o := m.Deliver(context.Background(), route, env(testBody, "c@dst.test"))
		wantStatuses(t, o, Transient)
		if want := "no TLSA record matches the certificate of mx1.dst.test"; !strings.Contains(o.Results[0].Reply.String(), want) {
			t.Errorf("reply %s, want it to say %q", o.Results[0].Reply, want)
		}
		if n := len(rx.Txs()); n != 2 {
			t.Errorf("%d messages received, want 2", n)
		}
	})
	t.Run("unverified session, verifying policy", func(t *testing.T) {
		cert, _, _, _ := testCert(t, "mx1.dst.test")
		rx := tlsReceiver(t, cert)
		var hs handshakes
		m := newTestManager(t, rx.Addr.Port(), func(o *Options) {
			o.Limits = oneTxPerConn
			o.OnTLSHandshake = hs.add
			// No root trusts the certificate: only the insecure policy
			// of insecure.test delivers.
			o.TLSFor = func(domain string) (TLSPolicy, string) {
				if domain == "insecure.test" {
					return TLSPolicy{Mode: TLSOpportunisticInsecure}, "insecure"
				}
				return TLSPolicy{Mode: TLSRequired, RootCAs: x509.NewCertPool()}, ""
			}
		})
		// Both domains have the same MX host, mx1.dst.test.
		insecure := routeTo("dst.test", "127.0.0.1")
		insecure.Domain = "insecure.test"
		for _, rcpt := range []string{"a@insecure.test", "b@insecure.test"} {
			wantStatuses(t, m.Deliver(context.Background(), insecure, env(testBody, rcpt)), Delivered)
		}
		if hs.resumed.Load() != 1 {
			t.Fatalf("OnTLSHandshake: %d resumed, want the second of 2", hs.resumed.Load())
		}
		o := m.Deliver(context.Background(), routeTo("dst.test", "127.0.0.1"), env(testBody, "c@dst.test"))
		wantStatuses(t, o, Transient)
		if o.Results[0].Reply.Enhanced != "4.7.10" {
			t.Errorf("reply %s, want 4.7.10 (the certificate does not verify)", o.Results[0].Reply)
		}
		if n := len(rx.Txs()); n != 2 {
			t.Errorf("%d messages received, want 2", n)
		}
	})
}
