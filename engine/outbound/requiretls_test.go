package outbound

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"strings"
	"testing"

	"gannet/engine/dane"
	"gannet/engine/tlsrpt"
	"gannet/resolver"
)

// TestRequireTLS: a REQUIRETLS message (RFC 8689) goes only to an MX host
// validated by MTA-STS (enforce or testing), over verified TLS, to a server
// that offers REQUIRETLS, with REQUIRETLS on MAIL; every other case is a
// 451 4.7.10 with nothing sent, even with fallback_plaintext. A
// "TLS-Required: No" message sets an enforced policy aside, unless it came
// with REQUIRETLS too.
func TestRequireTLS(t *testing.T) {
	good, pool, _, _ := testCert(t, "mx1.dst.test")
	wrong, _, _, _ := testCert(t, "wrong.dst.test")
	roots := pool.Clone()
	roots.AddCert(wrong.Leaf)
	enforce := STSPolicy{Mode: STSEnforce, Domain: "dst.test", ID: "1", Hosts: hostList{"mx1.dst.test"}}
	testing_ := STSPolicy{Mode: STSTesting, Domain: "dst.test", ID: "2", Hosts: hostList{"mx1.dst.test"}}
	noMatch := STSPolicy{Mode: STSTesting, Domain: "dst.test", ID: "3", Hosts: hostList{"mx.other.test"}}
	const tlsNo = "TLS-Required: No\r\n"
	cases := []struct {
		name       string
		cert       *tls.Certificate // nil: no STARTTLS
		offer      bool             // the receiver offers REQUIRETLS
		sts        STSPolicy
		requireTLS bool
		header     string // prepended to the body
		status     Status
		text       string // in the reply or note
		mailParam  bool   // MAIL carried REQUIRETLS
		withTLS    bool
	}{
		{"enforce, offered", &good, true, enforce, true, "", Delivered, "", true, true},
		{"testing, offered", &good, true, testing_, true, "", Delivered, "", true, true},
		{"enforce, not offered", &good, false, enforce, true, "", Transient, "does not offer REQUIRETLS", false, false},
		{"no policy", &good, true, STSPolicy{}, true, "", Transient, "no MX host of dst.test is validated by MTA-STS or DANE (mx1.dst.test)", false, false},
		{"testing, host does not match", &good, true, noMatch, true, "", Transient, "is validated", false, false},
		{"testing, wrong-name cert", &wrong, true, testing_, true, "", Transient, "REQUIRETLS: no validated TLS", false, false},
		{"enforce, no STARTTLS", nil, true, enforce, true, "", Transient, "REQUIRETLS: no validated TLS", false, false},
		{"TLS-Required: No, enforce, wrong-name cert", &wrong, false, enforce, false, tlsNo, Delivered, "delivering in the clear", false, false},
		{"TLS-Required: No with REQUIRETLS: ignored", &wrong, true, enforce, true, tlsNo, Transient, "REQUIRETLS: no validated TLS", false, false},
		{"enforce, wrong-name cert, no header", &wrong, false, enforce, false, "", Transient, "MTA-STS", false, false},
	}
	// The outcome's TLSResultType (tls_result_type) of the refusals.
	results := map[string]string{
		"enforce, not offered":                      ResultRequireTLSNotOffered,
		"no policy":                                 ResultRequireTLSNotValidated,
		"testing, host does not match":              ResultRequireTLSNotValidated,
		"testing, wrong-name cert":                  tlsrpt.ResultCertHostMismatch,
		"enforce, no STARTTLS":                      tlsrpt.ResultSTARTTLSNotSupported,
		"TLS-Required: No with REQUIRETLS: ignored": tlsrpt.ResultCertHostMismatch,
		"enforce, wrong-name cert, no header":       tlsrpt.ResultCertHostMismatch,
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rx := newTestReceiver(t, "127.0.0.1")
			rx.RequireTLS = c.offer
			if c.cert != nil {
				rx.TLS = &tls.Config{Certificates: []tls.Certificate{*c.cert}}
			}
			rx.Start()
			asked := false
			m := newTestManager(t, rx.Addr.Port(), func(o *Options) {
				o.TLS = TLSPolicy{Mode: TLSOpportunistic, RootCAs: roots, FallbackPlaintext: true}
				o.STS = func(context.Context, string) STSPolicy { asked = true; return c.sts }
			})
			e := env(c.header+testBody, "a@dst.test")
			e.RequireTLS = c.requireTLS
			o := m.Deliver(context.Background(), routeTo("dst.test", "127.0.0.1"), e)
			wantStatuses(t, o, c.status)
			got := o.Results[0].Reply.String() + " | " + o.Note
			if !strings.Contains(got, c.text) {
				t.Errorf("reply and note %q, want %q", got, c.text)
			}
			if o.TLSResultType != results[c.name] {
				t.Errorf("TLSResultType %q, want %q", o.TLSResultType, results[c.name])
			}
			if (o.TLSVersion != "") != c.withTLS {
				t.Errorf("TLS version %q, want TLS %v", o.TLSVersion, c.withTLS)
			}
			if c.header != "" && !c.requireTLS && asked {
				t.Error("the MTA-STS policy was asked for a TLS-Required: No message")
			}
			txs := rx.Txs()
			if c.status == Transient {
				r := o.Results[0].Reply
				want := "4.7.10"
				if !c.requireTLS {
					want = "4.7.5"
				}
				if r.Code != 451 || r.Enhanced != want {
					t.Errorf("reply %s, want 451 %s", r, want)
				}
				if c.requireTLS && !RequireTLSFailure(r.Enhanced) {
					t.Errorf("RequireTLSFailure(%q) = false", r.Enhanced)
				}
				if len(txs) != 0 {
					t.Errorf("%d messages received", len(txs))
				}
				return
			}
			if len(txs) != 1 {
				t.Fatalf("%d messages received, want 1", len(txs))
			}
			if has := strings.HasSuffix(txs[0].MailLine, " REQUIRETLS"); has != c.mailParam {
				t.Errorf("MAIL line %q, want REQUIRETLS: %v", txs[0].MailLine, c.mailParam)
			}
		})
	}
}

// TestRequireTLSPooledConnections: a REQUIRETLS message never rides a
// pooled connection opened for other mail (one in the clear, or to a
// server without REQUIRETLS), and other mail never rides its pool.
func TestRequireTLSPooledConnections(t *testing.T) {
	good, pool, _, _ := testCert(t, "mx1.dst.test")
	rx := newTestReceiver(t, "127.0.0.1")
	rx.TLS = &tls.Config{Certificates: []tls.Certificate{good}}
	rx.RequireTLS = true
	rx.Start()
	m := newTestManager(t, rx.Addr.Port(), func(o *Options) {
		o.TLS = TLSPolicy{Mode: TLSDisabled, RootCAs: pool}
		o.STS = func(context.Context, string) STSPolicy {
			return STSPolicy{Mode: STSTesting, Domain: "dst.test", ID: "1", Hosts: hostList{"mx1.dst.test"}}
		}
	})
	wantStatuses(t, m.Deliver(context.Background(), routeTo("dst.test", "127.0.0.1"), env(testBody, "a@dst.test")), Delivered)
	e := env(testBody, "b@dst.test")
	e.RequireTLS = true
	o := m.Deliver(context.Background(), routeTo("dst.test", "127.0.0.1"), e)
	wantStatuses(t, o, Delivered)
	txs := rx.Txs()
	if len(txs) != 2 || txs[0].TLS || !txs[1].TLS || !strings.HasSuffix(txs[1].MailLine, " REQUIRETLS") {
		t.Fatalf("transactions %+v: want the first in the clear, the second over TLS with REQUIRETLS", txs)
	}
}

func TestTLSRequiredNo(t *testing.T) {
	for in, want := range map[string]bool{
		"TLS-Required: No\r\nSubject: x\r\n\r\nbody\r\n":     true,
		"Subject: x\r\ntls-required:   no  \r\n\r\nbody\r\n": true,
		"Subject: x\r\nTLS-Required: Yes\r\n\r\nbody\r\n":    false,
		"Subject: x\r\n\r\nTLS-Required: No\r\n":             false, // in the body
		"Subject: x\r\nX-TLS-Required: No\r\n\r\n":           false,
	} {
		if got := TLSRequiredNo([]byte(in)); got != want {
			t.Errorf("TLSRequiredNo(%q) = %v, want %v", in, got, want)
		}
	}
}

// TestRequireTLSRelayTo: through relay_to the smarthost stands for the MX:
// a REQUIRETLS message goes over TLS verified for its name when it offers
// REQUIRETLS, and is held (451 4.7.10) when it does not, or when its
// certificate does not verify; never in the clear.
func TestRequireTLSRelayTo(t *testing.T) {
	good, pool, _, _ := testCert(t, "relay.test")
	other, _, _, _ := testCert(t, "relay.test")
	for _, c := range []struct {
		name   string
		cert   tls.Certificate
		offer  bool
		status Status
		text   string
	}{
		{"offered", good, true, Delivered, ""},
		{"not offered", good, false, Transient, "does not offer REQUIRETLS"},
		{"untrusted certificate", other, true, Transient, "REQUIRETLS: no validated TLS"},
	} {
		t.Run(c.name, func(t *testing.T) {
			rx := newTestReceiver(t, "127.0.0.1")
			rx.TLS = &tls.Config{Certificates: []tls.Certificate{c.cert}}
			rx.RequireTLS = c.offer
			rx.Start()
			m := newTestManager(t, 0, func(o *Options) {
				o.RelayTo = rx.Addr.String()
				o.TLS = TLSPolicy{Mode: TLSOpportunistic, RootCAs: pool, FallbackPlaintext: true}
			})
			e := env(testBody, "a@dst.test")
			e.RequireTLS = true
			o := m.Deliver(context.Background(), nil, e)
			wantStatuses(t, o, c.status)
			if got := o.Results[0].Reply.String() + " | " + o.Note; !strings.Contains(got, c.text) {
				t.Errorf("reply and note %q, want %q", got, c.text)
			}
			txs := rx.Txs()
			if c.status == Delivered {
				if len(txs) != 1 || !txs[0].TLS || !strings.HasSuffix(txs[0].MailLine, " REQUIRETLS") {
					t.Errorf("transactions %+v, want one over TLS with REQUIRETLS", txs)
				}
				return
			}
			if r := o.Results[0].Reply; r.Enhanced != "4.7.10" || len(txs) != 0 {
				t.Errorf("reply %s and %d transactions, want 4.7.10 and none", r, len(txs))
			}
		})
	}
}

// TestRequireTLSDANE: an MX host under DANE with usable TLSA records is
// validated for REQUIRETLS (its certificate trusted by no root, only by
// its TLSA record); a secure host with no usable record is not. A
// "TLS-Required: No" message is delivered to a host whose certificate
// fails its TLSA records, without asking for them.
func TestRequireTLSDANE(t *testing.T) {
	good, _, _, _ := testCert(t, "mx1.dst.test")
	stranger, _, _, _ := testCert(t, "mx1.dst.test")
	for _, c := range []struct {
		name       string
		dh         DANEHost
		requireTLS bool
		header     string
		status     Status
		text       string
		askDANE    bool
	}{
		{"EE record matches", DANEHost{Secure: true, Records: []dane.Record{tlsaOf(3, 1, 1, good.Leaf)}}, true, "", Delivered, "", true},
		{"secure, no usable record", DANEHost{Secure: true}, true, "", Transient, "no MX host of dst.test is validated by MTA-STS or DANE (mx1.dst.test)", true},
		{"TLS-Required: No, record does not match", DANEHost{Secure: true, Records: []dane.Record{tlsaOf(3, 1, 1, stranger.Leaf)}}, false, "TLS-Required: no\r\n", Delivered, "", false},
	} {
		t.Run(c.name, func(t *testing.T) {
			rx := newTestReceiver(t, "127.0.0.1")
			rx.TLS = &tls.Config{Certificates: []tls.Certificate{good}}
			rx.RequireTLS = true
			rx.Start()
			asked := false
			m := newTestManager(t, rx.Addr.Port(), func(o *Options) {
				o.TLS = TLSPolicy{Mode: TLSOpportunistic, RootCAs: x509.NewCertPool(), FallbackPlaintext: true}
				o.DANE = func(context.Context, string, resolver.Host, int) DANEHost { asked = true; return c.dh }
			})
			e := env(c.header+testBody, "a@dst.test")
			e.RequireTLS = c.requireTLS
			o := m.Deliver(context.Background(), secureRoute("dst.test", "127.0.0.1"), e)
			wantStatuses(t, o, c.status)
			if got := o.Results[0].Reply.String() + " | " + o.Note; !strings.Contains(got, c.text) {
				t.Errorf("reply and note %q, want %q", got, c.text)
			}
			if asked != c.askDANE {
				t.Errorf("DANE asked: %v, want %v", asked, c.askDANE)
			}
			txs := rx.Txs()
			if c.status == Transient {
				if r := o.Results[0].Reply; r.Enhanced != "4.7.10" || len(txs) != 0 {
					t.Errorf("reply %s and %d transactions, want 4.7.10 and none", r, len(txs))
				}
				return
			}
			if len(txs) != 1 || strings.HasSuffix(txs[0].MailLine, " REQUIRETLS") != c.requireTLS {
				t.Errorf("transactions %+v, want one, REQUIRETLS on MAIL: %v", txs, c.requireTLS)
			}
			if c.requireTLS && o.TLSPolicy != TLSPolicyDANE {
				t.Errorf("TLSPolicy %q, want %q", o.TLSPolicy, TLSPolicyDANE)
			}
		})
	}
}
