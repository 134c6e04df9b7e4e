package outbound

import (
	"context"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net/netip"
	"strings"
	"sync"
	"testing"

	"gannet/engine/dane"
	"gannet/resolver"
)

// tlsaOf is the TLSA record of usage, selector and matching type for c.
func tlsaOf(usage, selector, mtype uint8, c *x509.Certificate) dane.Record {
	content := c.Raw
	if selector == dane.SelectorSPKI {
		content = c.RawSubjectPublicKeyInfo
	}
	data := append([]byte(nil), content...)
	switch mtype {
	case dane.MatchSHA256:
		s := sha256.Sum256(content)
		data = s[:]
	case dane.MatchSHA512:
		s := sha512.Sum512(content)
		data = s[:]
	}
	return dane.Record{Usage: usage, Selector: selector, MatchingType: mtype, Data: data}
}

// secureRoute is routeTo with every host found securely (DNSSEC).
func secureRoute(domain string, ips ...string) *resolver.Route {
	r := routeTo(domain, ips...)
	for i := range r.Hosts {
		r.Hosts[i].Secure = true
	}
	return r
}

// TestDANE: a host with usable TLSA records gets mail only over TLS with a
// certificate that matches them (DANE-EE ignoring names and dates,
// DANE-TA with the MX name), whatever the WebPKI says; every failure is a
// 451 4.7.5 that says why, reported with policy "dane" and its RFC 8460
// result type, and nothing is sent in the clear.
func TestDANE(t *testing.T) {
	good, _, _, _ := testCert(t, "mx1.dst.test")
	wrongName, _, _, _ := testCert(t, "other.dst.test")
	expired := expiredCert(t, "unrelated.invalid")
	stranger, _, _, _ := testCert(t, "mx1.dst.test")
	aliasTarget, _, _, _ := testCert(t, "real.hoster.test")
	lookupErr := errors.New("SERVFAIL")
	cases := []struct {
		name     string
		cert     *tls.Certificate // nil: no STARTTLS
		secure   bool             // the route's host was found securely
		dh       DANEHost
		sts      STSPolicy
		status   Status
		withTLS  bool
		policy   string
		text     string // in the reply or note
		result   string // the result type reported ("": no DANE report)
		noAskDNS bool   // Options.DANE must not be asked
	}{
		{"EE 3 1 1", &good, true, DANEHost{Secure: true, Records: []dane.Record{tlsaOf(3, 1, 1, good.Leaf)}}, STSPolicy{}, Delivered, true, TLSPolicyDANE, "", "", false},
		{"EE 3 0 2, wrong name", &wrongName, true, DANEHost{Secure: true, Records: []dane.Record{tlsaOf(3, 0, 2, wrongName.Leaf)}}, STSPolicy{}, Delivered, true, TLSPolicyDANE, "", "", false},
		{"EE 3 1 0, expired", &expired, true, DANEHost{Secure: true, Records: []dane.Record{tlsaOf(3, 1, 0, expired.Leaf)}}, STSPolicy{}, Delivered, true, TLSPolicyDANE, "", "", false},
		{"TA 2 1 1 self-issued, MX name", &good, true, DANEHost{Secure: true, Records: []dane.Record{tlsaOf(2, 1, 1, good.Leaf)}}, STSPolicy{}, Delivered, true, TLSPolicyDANE, "", "", false},
		{"TA 2 0 1, wrong name", &wrongName, true, DANEHost{Secure: true, Records: []dane.Record{tlsaOf(2, 0, 1, wrongName.Leaf)}}, STSPolicy{}, Transient, false, TLSPolicyDANE, "4.7.5 DANE: the certificate of mx1.dst.test fails the TLSA check", ResultTLSAInvalid, false},
		{"TA, certificate for the CNAME target named by DANEHost.Names", &aliasTarget, true, DANEHost{Secure: true, Records: []dane.Record{tlsaOf(2, 1, 1, aliasTarget.Leaf)}, Names: []string{"real.hoster.test"}}, STSPolicy{}, Delivered, true, TLSPolicyDANE, "", "", false},
		{"TA, certificate for the CNAME target not named", &aliasTarget, true, DANEHost{Secure: true, Records: []dane.Record{tlsaOf(2, 1, 1, aliasTarget.Leaf)}}, STSPolicy{}, Transient, false, TLSPolicyDANE, "does not match the MX host name", ResultTLSAInvalid, false},
		{"no match", &good, true, DANEHost{Secure: true, Records: []dane.Record{tlsaOf(3, 1, 1, stranger.Leaf)}}, STSPolicy{}, Transient, false, TLSPolicyDANE, "4.7.5 DANE: no TLSA record matches the certificate of mx1.dst.test", ResultTLSAInvalid, false},
		{"no STARTTLS", nil, true, DANEHost{Secure: true, Records: []dane.Record{tlsaOf(3, 1, 1, good.Leaf)}}, STSPolicy{}, Transient, false, TLSPolicyDANE, "DANE: TLS required by the TLSA records of mx1.dst.test", ResultSTARTTLSNotSupported, false},
		{"TLSA lookup failed", &good, true, DANEHost{Err: lookupErr}, STSPolicy{}, Transient, false, TLSPolicyDANE, "DANE: TLSA lookup for _PORT._tcp.mx1.dst.test failed: SERVFAIL", ResultDNSSECInvalid, false},
		{"only unusable records: TLS without authentication", &good, true, DANEHost{Secure: true}, STSPolicy{}, Delivered, true, TLSPolicyDANE, "", "", false},
		{"insecure TLSA: opportunistic", &good, true, DANEHost{}, STSPolicy{}, Delivered, false, TLSPolicyOpportunistic, "delivering in the clear", "", false},
		{"insecure host: TLSA not asked", &good, false, DANEHost{Secure: true, Records: []dane.Record{tlsaOf(3, 1, 1, stranger.Leaf)}}, STSPolicy{}, Delivered, false, TLSPolicyOpportunistic, "", "", true},
		{"DANE over an MTA-STS policy that does not list the host", &good, true, DANEHost{Secure: true, Records: []dane.Record{tlsaOf(3, 1, 1, good.Leaf)}},
			STSPolicy{Mode: STSEnforce, Domain: "dst.test", ID: "1", Hosts: hostList{"mx.other.test"}}, Delivered, true, TLSPolicyDANE, "", "", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rx := newTestReceiver(t, "127.0.0.1")
			if c.cert != nil {
				rx.TLS = &tls.Config{Certificates: []tls.Certificate{*c.cert}}
			}
			rx.Start()
			var mu sync.Mutex
			var reports []string
			asked := 0
			sessions := &sessionLog{}
			m := newTestManager(t, rx.Addr.Port(), func(o *Options) {
				o.TLSObserver = sessions
				// No roots trust any of these certificates: only DANE can.
				o.TLS = TLSPolicy{Mode: TLSOpportunistic, RootCAs: x509.NewCertPool(), FallbackPlaintext: true}
				o.STS = func(context.Context, string) STSPolicy { return c.sts }
				o.DANE = func(_ context.Context, domain string, host resolver.Host, port int) DANEHost {
					mu.Lock()
					asked++
					mu.Unlock()
					if domain != "dst.test" || host.Name != "mx1.dst.test" || port != int(rx.Addr.Port()) {
						t.Errorf("DANE asked for %q, %q, %d", domain, host.Name, port)
					}
					return c.dh
				}
				o.OnTLSFailure = func(policy, resultType, host string, _ netip.AddrPort, err error) {
					mu.Lock()
					defer mu.Unlock()
					var de *DANEError
					if policy == FailurePolicyDANE {
						if !errors.As(err, &de) {
							t.Errorf("dane failure %v is not a *DANEError", err)
							return
						}
						if resultType != de.ResultType {
							t.Errorf("result type %q, the DANEError says %q", resultType, de.ResultType)
						}
						reports = append(reports, de.ResultType)
					}
				}
			})
			route := routeTo("dst.test", "127.0.0.1")
			if c.secure {
				route = secureRoute("dst.test", "127.0.0.1")
			}
			o := m.Deliver(context.Background(), route, env(testBody, "a@dst.test"))
			wantStatuses(t, o, c.status)
			if o.TLSPolicy != c.policy {
				t.Errorf("TLSPolicy %q, want %q", o.TLSPolicy, c.policy)
			}
			// A DANE failure decides the outcome: its result type is the
			// log record's tls_result_type.
			if o.TLSResultType != c.result {
				t.Errorf("TLSResultType %q, want %q", o.TLSResultType, c.result)
			}
			if (o.TLSVersion != "") != c.withTLS {
				t.Errorf("TLS version %q, want TLS %v", o.TLSVersion, c.withTLS)
			}
			got := o.Results[0].Reply.String() + " | " + o.Note
			if want := strings.ReplaceAll(c.text, "PORT", itoa(int(rx.Addr.Port()))); !strings.Contains(got, want) {
				t.Errorf("reply and note %q, want %q", got, want)
			}
			if c.status == Transient {
				if r := o.Results[0].Reply; r.Code != 451 || r.Enhanced != "4.7.5" || !strings.HasPrefix(r.Lines[0], "DANE: ") {
					t.Errorf("reply %s, want 451 4.7.5 DANE: …", r)
				}
				if n := len(rx.Txs()); n != 0 {
					t.Errorf("%d messages received from a failed DANE host", n)
				}
				if m.health.skip(rx.Addr.String()) {
					t.Error("a host refused under DANE was put in back-off")
				}
			}
			mu.Lock()
			defer mu.Unlock()
			if (asked == 0) != c.noAskDNS {
				t.Errorf("DANE asked %d times", asked)
			}
			want := []string(nil)
			if c.result != "" {
				want = []string{c.result}
			}
			if strings.Join(reports, ",") != strings.Join(want, ",") {
				t.Errorf("DANE reports %q, want %q", reports, want)
			}
			checkDANESessions(t, sessions, c.policy == TLSPolicyDANE, c.result, c.dh.Records)
		})
	}
}

// checkDANESessions: a delivery under DANE told TLSObserver of one
// session, under DANE with the host's TLSA records and not under MTA-STS,
// with the result type of its failure (a failed TLSA lookup: no address);
// one not under DANE told of no DANE session.
func checkDANESessions(t *testing.T, log *sessionLog, underDANE bool, result string, records []dane.Record) {
	t.Helper()
	log.mu.Lock()
	defer log.mu.Unlock()
	if !underDANE {
		for _, s := range log.s {
			if s.DANE {
				t.Errorf("a DANE session reported for a host not under DANE: %+v", s)
			}
		}
		return
	}
	if len(log.s) != 1 {
		t.Fatalf("%d sessions reported, want 1: %+v", len(log.s), log.s)
	}
	s := log.s[0]
	var tlsa []string
	for _, r := range records {
		tlsa = append(tlsa, r.String())
	}
	if !s.DANE || s.STS.Mode != STSNone || s.Domain != "dst.test" || s.Host != "mx1.dst.test" || s.From != "sender@src.test" {
		t.Errorf("session %+v, want one under DANE for mx1.dst.test", s)
	}
	if strings.Join(s.TLSA, ",") != strings.Join(tlsa, ",") {
		t.Errorf("session TLSA %q, want %q", s.TLSA, tlsa)
	}
	if s.ResultType != result || (result == "") != (s.Err == nil) {
		t.Errorf("session result %q (%v), want %q", s.ResultType, s.Err, result)
	}
	if s.Peer.IsValid() == (result == ResultDNSSECInvalid) {
		t.Errorf("session peer %v with result %q", s.Peer, result)
	}
	if s.Local.IsValid() == (result == ResultDNSSECInvalid) {
		t.Errorf("session local address %v with result %q", s.Local, result)
	}
}

// TestDANEMinVersion: under DANE, TLS 1.2 at least, whatever [tls]
// min_version says.
func TestDANEMinVersion(t *testing.T) {
	good, _, _, _ := testCert(t, "mx1.dst.test")
	rx := newTestReceiver(t, "127.0.0.1")
	rx.TLS = &tls.Config{Certificates: []tls.Certificate{good}, MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS11}
	rx.Start()
	m := newTestManager(t, rx.Addr.Port(), func(o *Options) {
		o.TLS = TLSPolicy{Mode: TLSOpportunistic, MinVersion: tls.VersionTLS10, FallbackPlaintext: true}
		o.DANE = func(context.Context, string, resolver.Host, int) DANEHost {
			return DANEHost{Secure: true, Records: []dane.Record{tlsaOf(3, 1, 1, good.Leaf)}}
		}
	})
	o := m.Deliver(context.Background(), secureRoute("dst.test", "127.0.0.1"), env(testBody, "a@dst.test"))
	wantStatuses(t, o, Transient)
	if len(rx.Txs()) != 0 {
		t.Error("delivered over TLS 1.1 or in the clear under DANE")
	}
}
