package outbound

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"gannet/engine/tlsrpt"
)

// hostList is a HostMatcher of exact names.
type hostList []string

func (h hostList) Match(host string) bool {
	for _, n := range h {
		if n == host {
			return true
		}
	}
	return false
}

// TestMTASTS: an enforced policy delivers only to a matching MX host over
// verified TLS, and refuses (451 4.7.5, nothing sent) a host that does not
// match, a certificate for another name and a host without STARTTLS, even
// with fallback_plaintext; testing mode delivers and reports.
func TestMTASTS(t *testing.T) {
	good, pool, _, _ := testCert(t, "mx1.dst.test")
	wrong, wrongPool, _, _ := testCert(t, "wrong.dst.test")
	expired := expiredCert(t, "mx1.dst.test")
	roots := pool.Clone()
	roots.AddCert(wrong.Leaf)
	roots.AddCert(expired.Leaf)
	_ = wrongPool
	cases := []struct {
		name      string
		cert      *tls.Certificate // nil: no STARTTLS
		sts       STSPolicy
		status    Status
		withTLS   bool
		policy    string
		text      string // in the reply or note
		stsReport bool   // a failure reported with policy "sts"
		tls11     bool   // the receiver speaks TLS 1.1 at most
	}{
		{"enforce, match, good cert", &good, STSPolicy{Mode: STSEnforce, Domain: "dst.test", ID: "1", Hosts: hostList{"mx1.dst.test"}}, Delivered, true, TLSPolicySTSEnforce, "", false, false},
		{"enforce, no match", &good, STSPolicy{Mode: STSEnforce, Domain: "dst.test", ID: "1", Hosts: hostList{"mx.other.test"}}, Transient, false, TLSPolicySTSEnforce, "4.7.5 MTA-STS: mx1.dst.test does not match the policy of dst.test", true, false},
		{"enforce, wrong-name cert", &wrong, STSPolicy{Mode: STSEnforce, Domain: "dst.test", ID: "2", Hosts: hostList{"mx1.dst.test"}}, Transient, false, TLSPolicySTSEnforce, "MTA-STS: policy of dst.test enforced: TLS handshake", true, false},
		{"enforce, expired cert", &expired, STSPolicy{Mode: STSEnforce, Domain: "dst.test", ID: "6", Hosts: hostList{"mx1.dst.test"}}, Transient, false, TLSPolicySTSEnforce, "expired", true, false},
		{"enforce, no STARTTLS", nil, STSPolicy{Mode: STSEnforce, Domain: "dst.test", ID: "3", Hosts: hostList{"mx1.dst.test"}}, Transient, false, TLSPolicySTSEnforce, "does not offer STARTTLS", true, false},
		{"testing, no match", &good, STSPolicy{Mode: STSTesting, Domain: "dst.test", ID: "4", Hosts: hostList{"mx.other.test"}}, Delivered, true, TLSPolicySTSTesting, "MTA-STS testing: mx1.dst.test does not match", true, false},
		{"testing, wrong-name cert", &wrong, STSPolicy{Mode: STSTesting, Domain: "dst.test", ID: "5", Hosts: hostList{"mx1.dst.test"}}, Delivered, false, TLSPolicySTSTesting, "delivering in the clear", true, false},
		{"no policy", &good, STSPolicy{}, Delivered, true, TLSPolicyOpportunistic, "", false, false},
		// [tls] min_version = "1.0" below; under an enforced policy Gannet asks for 1.2 at least.
		{"enforce, TLS 1.1 only", &good, STSPolicy{Mode: STSEnforce, Domain: "dst.test", ID: "7", Hosts: hostList{"mx1.dst.test"}}, Transient, false, TLSPolicySTSEnforce, "protocol version", true, true},
		{"no policy, TLS 1.1 only", &good, STSPolicy{}, Delivered, true, TLSPolicyOpportunistic, "", false, true},
	}
	// The outcome's TLSResultType (tls_result_type) of the refusals; ""
	// for the others.
	results := map[string]string{
		"enforce, no match":        tlsrpt.ResultValidationFailure,
		"enforce, wrong-name cert": tlsrpt.ResultCertHostMismatch,
		"enforce, expired cert":    tlsrpt.ResultCertExpired,
		"enforce, no STARTTLS":     tlsrpt.ResultSTARTTLSNotSupported,
		"enforce, TLS 1.1 only":    tlsrpt.ResultValidationFailure,
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rx := newTestReceiver(t, "127.0.0.1")
			if c.cert != nil {
				rx.TLS = &tls.Config{Certificates: []tls.Certificate{*c.cert}}
				if c.tls11 {
					rx.TLS.MinVersion, rx.TLS.MaxVersion = tls.VersionTLS10, tls.VersionTLS11
				}
			}
			rx.Start()
			var mu sync.Mutex
			var reports []string
			m := newTestManager(t, rx.Addr.Port(), func(o *Options) {
				o.TLS = TLSPolicy{Mode: TLSOpportunistic, RootCAs: roots, FallbackPlaintext: true, MinVersion: tls.VersionTLS10}
				o.STS = func(_ context.Context, domain string) STSPolicy {
					if domain != "dst.test" {
						t.Errorf("STS asked for %q", domain)
					}
					return c.sts
				}
				o.OnTLSFailure = func(policy, _, host string, _ netip.AddrPort, err error) {
					mu.Lock()
					reports = append(reports, policy+" "+host+" "+err.Error())
					mu.Unlock()
				}
			})
			o := m.Deliver(context.Background(), routeTo("dst.test", "127.0.0.1"), env(testBody, "a@dst.test"))
			wantStatuses(t, o, c.status)
			if o.TLSPolicy != c.policy {
				t.Errorf("TLSPolicy %q, want %q", o.TLSPolicy, c.policy)
			}
			if o.TLSResultType != results[c.name] {
				t.Errorf("TLSResultType %q, want %q", o.TLSResultType, results[c.name])
			}
			if (o.TLSVersion != "") != c.withTLS {
				t.Errorf("TLS version %q, want TLS %v", o.TLSVersion, c.withTLS)
			}
			got := o.Results[0].Reply.String() + " | " + o.Note
			if !strings.Contains(got, c.text) {
				t.Errorf("reply and note %q, want %q", got, c.text)
			}
			if c.status == Transient {
				if r := o.Results[0].Reply; r.Code != 451 || r.Enhanced != "4.7.5" {
					t.Errorf("reply %s, want 451 4.7.5", r)
				}
				// A host the policy refuses is up: no back-off for other mail.
				m.Deliver(context.Background(), routeTo("dst.test", "127.0.0.1"), env(testBody, "a@dst.test"))
				if m.health.skip(rx.Addr.String()) {
					t.Error("a host refused by the MTA-STS policy was put in back-off")
				}
				if n := len(rx.Txs()); n != 0 {
					t.Errorf("%d messages received under an enforced policy that failed", n)
				}
			}
			mu.Lock()
			defer mu.Unlock()
			sts := false
			for _, r := range reports {
				sts = sts || strings.HasPrefix(r, FailurePolicySTS+" ")
			}
			if sts != c.stsReport {
				t.Errorf("failure reports %q, want an sts one: %v", reports, c.stsReport)
			}
		})
	}
}

// TestMTASTSSkippedForRelay: relay_to deliveries never ask for a policy.
func TestMTASTSSkippedForRelay(t *testing.T) {
	rx := newTestReceiver(t, "127.0.0.1").Start()
	m := newTestManager(t, 0, func(o *Options) {
		o.RelayTo = rx.Addr.String()
		o.STS = func(context.Context, string) STSPolicy {
			t.Error("STS asked for a relay_to delivery")
			return STSPolicy{}
		}
	})
	o := m.Deliver(context.Background(), routeTo("dst.test", "127.0.0.1"), env(testBody, "a@dst.test"))
	wantStatuses(t, o, Delivered)
	if o.TLSPolicy != TLSPolicyNone {
		t.Errorf("TLSPolicy %q, want %q ([tls] mode disabled)", o.TLSPolicy, TLSPolicyNone)
	}
}

// expiredCert is a self-signed certificate for names that expired an hour
// ago.
func expiredCert(t *testing.T, names ...string) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: names[0]}, DNSNames: names,
		NotBefore: time.Now().Add(-48 * time.Hour), NotAfter: time.Now().Add(-time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true, IsCA: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(der)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}
}
