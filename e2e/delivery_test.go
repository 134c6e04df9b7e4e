package e2e

// End-to-end tests of the delivery policy through bin/gannet: egress
// sources chosen by tenant, per-domain TLS policy against a receiver
// without STARTTLS, and the gannet_site_effective_rate gauge. The
// receivers are bench/smtpsink's library (in process), which records the
// peer address and EHLO name of each message.

import (
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"

	bsink "gannet/bench/smtpsink/sink"
)

// dlvSink starts an in-process smtpsink on addr that keeps messages.
func dlvSink(t *testing.T, addr string, tlsHost string) *bsink.Sink {
	t.Helper()
	cfg := bsink.Config{Listen: []string{addr}, Keep: true}
	if tlsHost != "" {
		tc, err := bsink.SelfSignedTLS(tlsHost)
		if err != nil {
			t.Fatal(err)
		}
		cfg.TLS = tc
	}
	s, err := bsink.Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// dlvSend sends one message through gannet's SMTP listener and returns its
// queue id.
func dlvSend(t *testing.T, g *gannet, rcpt string, headers string) string {
	t.Helper()
	c := dialSMTP(t, "127.0.0.1", g.SMTPAddr)
	defer c.Quit()
	msg := []byte(headers + "From: " + senderAddr + "\r\nTo: " + rcpt + "\r\nSubject: delivery policy\r\n\r\nHello.\r\n")
	return acceptedID(t, c.Send(senderAddr, []string{rcpt}, msg))
}

// dlvWaitMessages waits until s has n messages.
func dlvWaitMessages(t *testing.T, s *bsink.Sink, n int) []bsink.Message {
	t.Helper()
	var got []bsink.Message
	waitFor(t, deliveryMax, fmt.Sprintf("%d message(s) at %s", n, s.Addr()), func() (bool, string) {
		got = s.Messages()
		return len(got) >= n, fmt.Sprintf("have %d", len(got))
	})
	return got
}

// TestE2EEgressSourceByTenant: a tenant's mail leaves from its egress
// pool's source address with the source's EHLO name; other mail from the
// kernel's choice with [delivery] ehlo_name. The receiver checks the peer.
func TestE2EEgressSourceByTenant(t *testing.T) {
	w := newRelayWorld(t)
	checkLoopbackAlias(t, "127.0.0.7")
	rcv := dlvSink(t, hostPort(mxIP1, w.port), "")
	g := w.gannet(t, gannetConfig{TLSMode: "disabled", Extra: `
[[egress_source]]
name = "ip7"
source_address = "127.0.0.7"
ehlo_name = "out7.e2e.test"

[[egress_pool]]
name = "acme-pool"
sources = [{name = "ip7", weight = 1}]

[[tenant]]
name = "acme"
egress_pool = "acme-pool"
`})
	idAcme := dlvSend(t, g, "a@"+domain1, "X-Tenant: acme\r\n")
	g.WaitRecords(recordFilter{Type: "Delivery", ID: idAcme}, 1, deliveryMax)
	idOther := dlvSend(t, g, "b@"+domain1, "")
	g.WaitRecords(recordFilter{Type: "Delivery", ID: idOther}, 1, deliveryMax)
	msgs := dlvWaitMessages(t, rcv, 2)
	for _, m := range msgs {
		peer := netip.MustParseAddrPort(m.Peer).Addr().String()
		switch m.Rcpts[0] {
		case "a@" + domain1:
			if peer != "127.0.0.7" || m.Helo != "out7.e2e.test" {
				t.Errorf("tenant acme's message came from %s (EHLO %s), want 127.0.0.7 (EHLO out7.e2e.test)", peer, m.Helo)
			}
		default:
			if peer == "127.0.0.7" || m.Helo != "relay.e2e.test" {
				t.Errorf("untenanted message came from %s (EHLO %s), want the default source", peer, m.Helo)
			}
		}
	}
}

// TestE2ETLSPolicyPerDomain: with [tls] opportunistic and
// [tls_policy."d2.test"] mode = "required", mail to d1.test goes in the
// clear to a receiver without STARTTLS, mail to d2.test (same kind of
// receiver) is deferred with 4.7.10 and never sent in the clear, and mail
// to d3.test, whose receiver offers STARTTLS with a self-signed
// certificate, is delivered over TLS (opportunistic-insecure there) with
// the version and cipher in the Delivery record.
func TestE2ETLSPolicyPerDomain(t *testing.T) {
	w := newRelayWorld(t)
	plain1 := dlvSink(t, hostPort(mxIP1, w.port), "")
	plain2 := dlvSink(t, hostPort(mxIP2, w.port), "")
	withTLS := dlvSink(t, hostPort(mxIP3, w.port), "mx.d3.test")
	g := w.gannet(t, gannetConfig{TLSMode: "opportunistic", MaxRetryAge: "1h", Extra: `
[tls_policy."d2.test"]
mode = "required"

[tls_policy."d3.test"]
mode = "opportunistic-insecure"
`})
	id1 := dlvSend(t, g, "a@"+domain1, "")
	id2 := dlvSend(t, g, "b@"+domain2, "")
	id3 := dlvSend(t, g, "c@"+domain3, "")
	g.WaitRecords(recordFilter{Type: "Delivery", ID: id1}, 1, deliveryMax)
	tf := g.WaitRecords(recordFilter{Type: "TransientFailure", ID: id2}, 1, deliveryMax)
	if tf[0].Response.EnhancedCode() != "4.7.10" {
		t.Errorf("d2.test (TLS required, no STARTTLS): %s, want 4.7.10", tf[0].Raw)
	}
	d3 := g.WaitRecords(recordFilter{Type: "Delivery", ID: id3}, 1, deliveryMax)
	if d3[0].TLSProtocolVersion == "" || !strings.Contains(d3[0].Raw, `"tls_cipher":"TLS_`) {
		t.Errorf("d3.test Delivery record without TLS version/cipher: %s", d3[0].Raw)
	}
	time.Sleep(settleTime)
	if n := len(plain2.Messages()); n != 0 {
		t.Errorf("d2.test's receiver got %d messages in the clear under TLS required", n)
	}
	if m := plain1.Messages(); len(m) != 1 || m[0].TLS {
		t.Errorf("d1.test's receiver: %d messages", len(m))
	}
	if m := withTLS.Messages(); len(m) != 1 || !m[0].TLS {
		t.Errorf("d3.test's receiver: %+v, want one message over TLS", m)
	}
}

// TestE2ESiteEffectiveRateMetric: /metrics exposes
// gannet_site_effective_rate for a site mail went to, with the configured
// rate while nothing throttles.
func TestE2ESiteEffectiveRateMetric(t *testing.T) {
	w := newRelayWorld(t)
	rcv := dlvSink(t, hostPort(mxIP1, w.port), "")
	g := w.gannet(t, gannetConfig{TLSMode: "disabled", Extra: `
[shaping."d1.test"]
max_message_rate = "600/m"
`})
	id := dlvSend(t, g, "a@"+domain1, "")
	g.WaitRecords(recordFilter{Type: "Delivery", ID: id}, 1, deliveryMax)
	dlvWaitMessages(t, rcv, 1)
	resp, err := http.Get("http://" + g.HTTPAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	want := `gannet_site_effective_rate{site="mx.d1.test",source=""} 10`
	if !strings.Contains(string(body), want) {
		t.Errorf("/metrics lacks %q:\n%s", want, grepLines(string(body), "gannet_site"))
	}
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
