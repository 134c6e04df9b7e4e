package outbound

import (
	"context"
	"crypto/tls"
	"sync"
	"testing"

	"gannet/engine/tlsrpt"
)

type sessionLog struct {
	mu sync.Mutex
	s  []TLSSession
}

func (l *sessionLog) ObserveTLS(s TLSSession) {
	l.mu.Lock()
	l.s = append(l.s, s)
	l.mu.Unlock()
}

// TestTLSObserver: every new session to an MX host is reported once, with
// the RFC 8460 result type of what happened, the policy it ran under and
// the addresses; the clear retry after a failed handshake is not a second
// session; relay_to is not reported.
func TestTLSObserver(t *testing.T) {
	good, pool, _, _ := testCert(t, "mx1.dst.test")
	wrong, _, _, _ := testCert(t, "wrong.dst.test")
	untrusted, _, _, _ := testCert(t, "mx1.dst.test")
	expired := expiredCert(t, "mx1.dst.test")
	roots := pool.Clone()
	roots.AddCert(wrong.Leaf)
	roots.AddCert(expired.Leaf)
	match := hostList{"mx1.dst.test"}
	other := hostList{"mx.other.test"}
	cases := []struct {
		name   string
		cert   *tls.Certificate // nil: no STARTTLS
		sts    STSPolicy
		result string
		peer   bool // the session has a receiving address
	}{
		{"enforce, good", &good, STSPolicy{Mode: STSEnforce, Domain: "dst.test", ID: "1", Hosts: match}, "", true},
		{"enforce, no match", &good, STSPolicy{Mode: STSEnforce, Domain: "dst.test", ID: "1", Hosts: other}, tlsrpt.ResultValidationFailure, false},
		{"enforce, wrong name", &wrong, STSPolicy{Mode: STSEnforce, Domain: "dst.test", ID: "1", Hosts: match}, tlsrpt.ResultCertHostMismatch, true},
		{"enforce, expired", &expired, STSPolicy{Mode: STSEnforce, Domain: "dst.test", ID: "1", Hosts: match}, tlsrpt.ResultCertExpired, true},
		{"enforce, untrusted", &untrusted, STSPolicy{Mode: STSEnforce, Domain: "dst.test", ID: "1", Hosts: match}, tlsrpt.ResultCertNotTrusted, true},
		{"enforce, no STARTTLS", nil, STSPolicy{Mode: STSEnforce, Domain: "dst.test", ID: "1", Hosts: match}, tlsrpt.ResultSTARTTLSNotSupported, true},
		{"testing, no match", &good, STSPolicy{Mode: STSTesting, Domain: "dst.test", ID: "1", Hosts: other}, tlsrpt.ResultValidationFailure, true},
		{"testing, wrong name", &wrong, STSPolicy{Mode: STSTesting, Domain: "dst.test", ID: "1", Hosts: match}, tlsrpt.ResultCertHostMismatch, true},
		{"no policy, good", &good, STSPolicy{}, "", true},
		{"no policy, no STARTTLS", nil, STSPolicy{}, tlsrpt.ResultSTARTTLSNotSupported, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rx := newTestReceiver(t, "127.0.0.1")
			if c.cert != nil {
				rx.TLS = &tls.Config{Certificates: []tls.Certificate{*c.cert}}
			}
			rx.Start()
			log := &sessionLog{}
			m := newTestManager(t, rx.Addr.Port(), func(o *Options) {
				o.TLS = TLSPolicy{Mode: TLSOpportunistic, RootCAs: roots, FallbackPlaintext: true}
				o.STS = func(context.Context, string) STSPolicy { return c.sts }
				o.TLSObserver = log
			})
			m.Deliver(context.Background(), routeTo("dst.test", "127.0.0.1"), env(testBody, "a@dst.test"))
			log.mu.Lock()
			defer log.mu.Unlock()
			if len(log.s) != 1 {
				t.Fatalf("%d sessions reported, want 1: %+v", len(log.s), log.s)
			}
			s := log.s[0]
			if s.ResultType != c.result || s.Domain != "dst.test" || s.STS.Mode != c.sts.Mode || s.Host == "" {
				t.Errorf("session %+v, want result %q", s, c.result)
			}
			if (c.result == "") != (s.Err == nil) {
				t.Errorf("err %v with result %q", s.Err, s.ResultType)
			}
			if c.peer && (s.Peer != rx.Addr || s.Local.String() != "127.0.0.1") {
				t.Errorf("peer %v local %v, want %v from 127.0.0.1", s.Peer, s.Local, rx.Addr)
			}
		})
	}
	t.Run("relay_to", func(t *testing.T) {
		rx := newTestReceiver(t, "127.0.0.1").Start()
		log := &sessionLog{}
		m := newTestManager(t, 0, func(o *Options) {
			o.RelayTo = rx.Addr.String()
			o.TLSObserver = log
		})
		m.Deliver(context.Background(), routeTo("dst.test", "127.0.0.1"), env(testBody, "a@dst.test"))
		if len(log.s) != 0 {
			t.Errorf("relay_to sessions reported: %+v", log.s)
		}
	})
}

// TestTLSObserverFetchFailure: a delivery to a domain whose policy could
// not be fetched goes on as without a policy, and its session is reported
// as a failure of that kind.
func TestTLSObserverFetchFailure(t *testing.T) {
	good, pool, _, _ := testCert(t, "mx1.dst.test")
	rx := newTestReceiver(t, "127.0.0.1")
	rx.TLS = &tls.Config{Certificates: []tls.Certificate{good}}
	rx.Start()
	log := &sessionLog{}
	m := newTestManager(t, rx.Addr.Port(), func(o *Options) {
		o.TLS = TLSPolicy{Mode: TLSOpportunistic, RootCAs: pool}
		o.STS = func(context.Context, string) STSPolicy {
			return STSPolicy{Domain: "dst.test", FetchFailure: tlsrpt.ResultSTSPolicyFetchError}
		}
		o.TLSObserver = log
	})
	o := m.Deliver(context.Background(), routeTo("dst.test", "127.0.0.1"), env(testBody, "a@dst.test"))
	wantStatuses(t, o, Delivered)
	if o.TLSPolicy != TLSPolicyOpportunistic || o.TLSVersion == "" {
		t.Errorf("outcome %+v", o)
	}
	log.mu.Lock()
	defer log.mu.Unlock()
	if len(log.s) != 1 || log.s[0].ResultType != tlsrpt.ResultSTSPolicyFetchError || log.s[0].STS.FetchFailure == "" || log.s[0].Err == nil {
		t.Errorf("sessions %+v", log.s)
	}
}
