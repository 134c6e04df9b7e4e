package outbound

import (
	"context"
	"crypto/tls"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"gannet/engine/trace"
	"gannet/smtpwire"
)

// relayReceiver is a smarthost with TLS (a certificate for 127.0.0.1 from
// its own CA) and one account.
func relayReceiver(t *testing.T, mechs string, implicit bool) (*testReceiver, TLSPolicy) {
	cert, pool, _, _ := testCert(t, "127.0.0.1")
	rx := newTestReceiver(t, "127.0.0.1")
	rx.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	rx.AuthMechs = mechs
	rx.ImplicitTLS = implicit
	rx.Users = map[string]string{"relay@src.test": "s3cret"}
	rx.Start()
	return rx, TLSPolicy{Mode: TLSOpportunistic, RootCAs: pool}
}

func relayManager(t *testing.T, rx *testReceiver, pol TLSPolicy, ra RelayAuth, failures *atomic.Int32) *Manager {
	return newTestManager(t, 1, func(o *Options) {
		o.RelayTo = rx.Addr.String()
		o.TLS = pol
		o.RelayAuth = func(string, string, string) RelayAuth { return ra }
		o.OnAuthFailure = func(host, peer, user string, r smtpwire.Reply) {
			if failures != nil {
				failures.Add(1)
			}
		}
	})
}

func sentAuth(rx *testReceiver) bool {
	for _, c := range rx.Commands() {
		if strings.HasPrefix(strings.ToUpper(c), "AUTH") {
			return true
		}
	}
	return false
}

func TestRelayAuth(t *testing.T) {
	for _, tc := range []struct {
		name     string
		mechs    string
		implicit bool
		ra       RelayAuth
		wantMech string
	}{
		{"plain over STARTTLS", "LOGIN PLAIN", false, RelayAuth{User: "relay@src.test", Password: "s3cret"}, "AUTH PLAIN "},
		{"login over STARTTLS", "LOGIN", false, RelayAuth{User: "relay@src.test", Password: "s3cret"}, "AUTH LOGIN"},
		{"plain over implicit TLS", "PLAIN", true, RelayAuth{TLS: RelayImplicitTLS, User: "relay@src.test", Password: "s3cret"}, "AUTH PLAIN "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rx, pol := relayReceiver(t, tc.mechs, tc.implicit)
			m := relayManager(t, rx, pol, tc.ra, nil)
			o := m.Deliver(context.Background(), nil, env(testBody, "a@anywhere.test"))
			wantStatuses(t, o, Delivered)
			txs := rx.Txs()
			if len(txs) != 1 || !txs[0].TLS || txs[0].AuthUser != "relay@src.test" {
				t.Fatalf("transactions %+v, want one over TLS as relay@src.test", txs)
			}
			found := false
			for _, c := range rx.Commands() {
				found = found || strings.HasPrefix(c, tc.wantMech)
			}
			if !found {
				t.Errorf("no %q in %q", tc.wantMech, rx.Commands())
			}
		})
	}
}

func TestRelayAuthRefused(t *testing.T) {
	rx, pol := relayReceiver(t, "PLAIN", false)
	var failures atomic.Int32
	m := relayManager(t, rx, pol, RelayAuth{User: "relay@src.test", Password: "wrong"}, &failures)
	o := m.Deliver(context.Background(), nil, env(testBody, "a@anywhere.test"))
	wantStatuses(t, o, Transient)
	r := o.Results[0].Reply
	if r.Code != 451 || !strings.Contains(r.Text(), `refused the credentials of relay_user "relay@src.test"`) || !strings.Contains(r.Text(), "535 5.7.8") {
		t.Errorf("reply %s, want a 451 that names the user and the 535", r)
	}
	if strings.Contains(r.Text(), "wrong") {
		t.Errorf("the reply shows the password: %s", r)
	}
	if failures.Load() != 1 {
		t.Errorf("%d AUTH failures reported, want 1", failures.Load())
	}
	if len(rx.Txs()) != 0 {
		t.Error("a transaction was sent after a refused AUTH")
	}
}

// Credentials go only over verified TLS.
func TestRelayAuthNeedsVerifiedTLS(t *testing.T) {
	ra := RelayAuth{User: "relay@src.test", Password: "s3cret"}
	t.Run("no STARTTLS offered", func(t *testing.T) {
		rx := newTestReceiver(t, "127.0.0.1")
		rx.AuthMechs, rx.Users = "PLAIN", map[string]string{"relay@src.test": "s3cret"}
		rx.Start()
		m := relayManager(t, rx, TLSPolicy{Mode: TLSOpportunistic}, ra, nil)
		o := m.Deliver(context.Background(), nil, env(testBody, "a@anywhere.test"))
		wantStatuses(t, o, Transient)
		if sentAuth(rx) || o.Results[0].Reply.Enhanced != "4.7.10" {
			t.Errorf("reply %s, commands %q: want 4.7.10 and no AUTH", o.Results[0].Reply, rx.Commands())
		}
	})
	t.Run("untrusted certificate", func(t *testing.T) {
		rx, _ := relayReceiver(t, "PLAIN", false)
		// Opportunistic with fallback would deliver in the clear: not with
		// credentials.
		m := relayManager(t, rx, TLSPolicy{Mode: TLSOpportunistic, FallbackPlaintext: true}, ra, nil)
		o := m.Deliver(context.Background(), nil, env(testBody, "a@anywhere.test"))
		wantStatuses(t, o, Transient)
		if sentAuth(rx) {
			t.Errorf("AUTH sent over an unverified session: %q", rx.Commands())
		}
	})
	t.Run("relay_tls none", func(t *testing.T) {
		rx, pol := relayReceiver(t, "PLAIN", false)
		ra := ra
		ra.TLS = RelayNoTLS
		m := relayManager(t, rx, pol, ra, nil)
		o := m.Deliver(context.Background(), nil, env(testBody, "a@anywhere.test"))
		wantStatuses(t, o, Transient)
		if sentAuth(rx) {
			t.Errorf("AUTH sent in the clear: %q", rx.Commands())
		}
	})
	t.Run("relay_allow_insecure_auth", func(t *testing.T) {
		rx, pol := relayReceiver(t, "PLAIN", false)
		ra := ra
		ra.TLS, ra.AllowInsecureAuth = RelayNoTLS, true
		m := relayManager(t, rx, pol, ra, nil)
		o := m.Deliver(context.Background(), nil, env(testBody, "a@anywhere.test"))
		wantStatuses(t, o, Delivered)
		if txs := rx.Txs(); len(txs) != 1 || txs[0].TLS || txs[0].AuthUser != "relay@src.test" {
			t.Errorf("transactions %+v, want one in the clear as relay@src.test", txs)
		}
	})
}

func TestParseRelayTLS(t *testing.T) {
	for _, s := range []string{"", "starttls", "implicit", "none"} {
		r, err := ParseRelayTLS(s)
		if err != nil || (s != "" && r.String() != s) {
			t.Errorf("%q: %v %v", s, r, err)
		}
	}
	if _, err := ParseRelayTLS("ssl"); err == nil {
		t.Error("ssl accepted")
	}
}

// TestRelayAuthTraceAndPools: a trace of a smarthost session shows the AUTH
// command without the credentials, and deliveries with different logins
// (two tenants) do not share a connection.
func TestRelayAuthTraceAndPools(t *testing.T) {
	rx, pol := relayReceiver(t, "LOGIN", false)
	rx.Users["other@src.test"] = "0ther"
	hub := trace.NewHub(nil)
	m := newTestManager(t, 1, func(o *Options) {
		o.RelayTo = rx.Addr.String()
		o.TLS = pol
		o.Trace = hub
		o.RelayAuth = func(tenant, domain, relayTo string) RelayAuth {
			if tenant == "other" {
				return RelayAuth{User: "other@src.test", Password: "0ther"}
			}
			return RelayAuth{User: "relay@src.test", Password: "s3cret"}
		}
	})
	sub := hub.Subscribe(trace.Filter{Side: trace.Client}, 0)
	defer sub.Close()
	for _, tenant := range []string{"", "other", ""} {
		e := env(testBody, "a@anywhere.test")
		e.Tenant = tenant
		wantStatuses(t, m.Deliver(context.Background(), nil, e), Delivered)
	}
	var users []string
	for _, tx := range rx.Txs() {
		users = append(users, tx.AuthUser)
	}
	if strings.Join(users, ",") != "relay@src.test,other@src.test,relay@src.test" {
		t.Errorf("transactions as %v", users)
	}
	if s, _ := rx.stats(); s != 2 {
		t.Errorf("%d sessions, want 2 (one per login, the first reused)", s)
	}
	var lines []string
	timeout := time.After(5 * time.Second)
	for len(lines) < 200 && !strings.Contains(strings.Join(lines, "\n"), "(AUTH response elided)") {
		select {
		case ev := <-sub.Events():
			lines = append(lines, string(ev.Kind)+" "+ev.Text)
		case <-timeout:
			t.Fatalf("trace so far:\n%s", strings.Join(lines, "\n"))
		}
	}
	got := strings.Join(lines, "\n")
	for _, secret := range []string{"s3cret", "czNjcmV0", "cmVsYXlAc3JjLnRlc3Q", "0ther"} {
		if strings.Contains(got, secret) {
			t.Errorf("the trace shows %q:\n%s", secret, got)
		}
	}
	if !strings.Contains(got, "command AUTH LOGIN") {
		t.Errorf("the trace lacks the AUTH command:\n%s", got)
	}
}
