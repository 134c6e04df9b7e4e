package e2e

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// policyMessage is a small message with CRLF line ends for swaks.
func policyMessage(from, to, subject string, headers ...string) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "From: %s\r\nTo: %s\r\nSubject: %s\r\nDate: Mon, 07 Dec 2026 10:00:00 +0000\r\nMessage-ID: <%s.%d@src.test>\r\n",
		from, to, subject, strings.ReplaceAll(subject, " ", "-"), time.Now().UnixNano())
	for _, h := range headers {
		b.WriteString(h + "\r\n")
	}
	b.WriteString("\r\nHello from the policy test.\r\n")
	return []byte(b.String())
}

// metricSamples fetches /metrics with an API key (a script's http_request
// hook sees every request) and returns its samples by series.
func metricSamples(t *testing.T, g *gannet, key string) map[string]float64 {
	t.Helper()
	return scrapeMetrics(t, g.HTTPAddr, key).values
}

// TestPolicyScriptReference runs the reference script of policy.md as
// written (its listener addresses and key paths made the test's, and one
// more API key for the test's own admin calls appended) and checks each
// hook's effect with real clients and receivers:
//   - http_request: no key → 401 "Unauthorized" from the script; its key → 202;
//   - smtp_server_auth: wordpress/wp-secret over TLS on the submission
//     listener → 235, tenant acme; a wrong password → 535;
//   - smtp_server_greeting after AUTH: acme's rate (600/min = 10/s) in the
//     queue summary, and acme's DKIM key signs (dkimpy verifies d=acme.example);
//   - smtp_message_received: X-Campaign → List-Unsubscribe and
//     List-Unsubscribe-Post added and covered by the signature, and
//     gannet_campaign_events_total counts it; X-Type: transactional →
//     priority 1 (the admin API's inspect), other mail priority 0;
//   - smtp_delivery_result: a receiver answering 421 → the site's rate
//     drops by 30% (1000/min × 0.7) and the script's warning is logged.
func TestPolicyScriptReference(t *testing.T) {
	gannetBinary(t)
	root, err := repoRoot()
	if err != nil {
		t.Fatal(err)
	}
	src := string(readFile(t, filepath.Join(root, "engine", "policy", "lua", "testdata", "relay.lua")))
	src += "\n-- the test's own admin key\nAPI_KEYS[\"key-ops\"] = \"ops\"\n"
	keys := t.TempDir()
	exKey := keygen(t, keys, "example.com", "mail", "rsa")
	acmeKey := keygen(t, keys, "acme.example", "s1", "rsa")
	dns := startDNSAt(t, "127.0.0.1", 0, txtRecords(exKey, acmeKey)...)
	port := receiverPort(t)
	rcv := startAiosmtpd(t, hostPort(mxIP1, port), aioOptions{})
	startAiosmtpd(t, hostPort(mxIP2, port), aioOptions{TempfailFirst: "421 4.7.0 Too many messages, slow down"})
	sub := hostPort("127.0.0.1", freePort(t, false, "127.0.0.1"))
	g := startGannet(t, gannetConfig{DNS: dns.Addr, DeliveryPort: port, Script: src, MaxRetryInterval: "1h",
		ScriptReplace: []string{"127.0.0.1:2587", sub, `"keys/`, `"` + keys + "/"},
		Extra: `
[backoff]
enabled = false # only the script's adjust_domain_rate changes a rate here

[[tenant]]
name = "acme"

[[api_key]]
key = "key-acme-1"
tenant = "acme"

[[api_key]]
key = "key-ops"
`})
	const ops = "key-ops"

	// http_request.
	msg, _ := json.Marshal(map[string]any{"from": "app@src.test", "to": []string{"h1@" + domain1}, "subject": "hi", "text": "hello\n"})
	if r := adminCurl(t, g, "POST", "/v1/message", string(msg)); r.status != 401 || r.body != "Unauthorized" {
		t.Errorf("inject without a key: %d %q, want 401 Unauthorized from the script", r.status, r.body)
	}
	if r := adminCurl(t, g, "POST", "/v1/message", string(msg), "-H", "Authorization: Bearer wrong"); r.status != 401 {
		t.Errorf("inject with a wrong key: %d %q, want 401", r.status, r.body)
	}
	adminCurl(t, g, "POST", "/v1/message", string(msg), "-H", "Authorization: Bearer key-acme-1").want(t, "inject with acme's key", 202)

	// smtp_server_auth and the greeting after it.
	swaks := needExecutable(t, "swaks", "swaks")
	authArgs := func(pw string) []string {
		return []string{"--tls", "--auth", "PLAIN", "--auth-user", "wordpress", "--auth-password", pw}
	}
	out, _ := runClient(t, nil, swaks, append([]string{"--server", sub, "--from", "app@acme.example", "--to", "x@" + domain1,
		"--helo", "swaks.e2e.test", "--quit-after", "AUTH", "--timeout", "30"}, authArgs("nope")...)...)
	if !strings.Contains(out, "535 5.7.8") {
		t.Errorf("AUTH with a wrong password: want 535 5.7.8 in\n%s", out)
	}
	bulk := policyMessage("App <app@acme.example>", "u1@"+domain1, "spring sale", "X-Campaign: spring-sale")
	if r := swaksSend(t, sub, "app@acme.example", []string{"u1@" + domain1}, bulk, authArgs("wp-secret")...); !strings.HasPrefix(r, "250") {
		t.Fatalf("bulk message over AUTH: %q", r)
	}
	held := policyMessage("App <app@acme.example>", "u6@"+domain3, "acme held")
	if r := swaksSend(t, sub, "app@acme.example", []string{"u6@" + domain3}, held, authArgs("wp-secret")...); !strings.HasPrefix(r, "250") {
		t.Fatalf("acme's message to %s: %q", domain3, r)
	}

	// smtp_message_received: priority (d3.test has no receiver: the
	// messages stay queued, for inspect).
	tx := swaksSend(t, g.SMTPAddr, senderAddr, []string{"u3@" + domain3},
		policyMessage(senderAddr, "u3@"+domain3, "your receipt", "X-Type: transactional"))
	plain := swaksSend(t, g.SMTPAddr, senderAddr, []string{"u4@" + domain3}, policyMessage(senderAddr, "u4@"+domain3, "newsletter"))
	for _, c := range []struct {
		reply string
		want  int
	}{{tx, 1}, {plain, 0}} {
		var in struct{ Message struct{ Priority int } }
		adminCurl(t, g, "GET", "/api/admin/inspect-message/v1?id="+acceptedID(t, c.reply), "", "-H", "Authorization: Bearer "+ops).
			want(t, "inspect", 200).decode(t, &in)
		if in.Message.Priority != c.want {
			t.Errorf("message %q: priority %d, want %d", c.reply, in.Message.Priority, c.want)
		}
	}

	// The bulk message: List-Unsubscribe added, signed by acme's key.
	got := waitArrivals(t, rcv, 2, deliveryMax)
	a := findArrival(got, "u1@"+domain1)
	if a == nil {
		t.Fatalf("the bulk message was not delivered; got %d messages", len(got))
	}
	for _, h := range []string{"List-Unsubscribe: <mailto:unsubscribe@example.com?subject=unsubscribe>", "List-Unsubscribe-Post: List-Unsubscribe=One-Click"} {
		if !strings.Contains(string(a.Data), h+"\r\n") {
			t.Errorf("delivered bulk message lacks %q:\n%s", h, a.Data)
		}
	}
	sigs := dkimpyVerify(t, dns.Addr, []string{a.File})[a.File]
	signed := false
	for _, s := range sigs {
		if s.D != "acme.example" {
			continue
		}
		signed = true
		if !s.OK {
			t.Errorf("d=acme.example does not verify: %s", s.Err)
		}
		if h := strings.ToLower(s.H); !strings.Contains(h, "list-unsubscribe") || !strings.Contains(h, "list-unsubscribe-post") {
			t.Errorf("the signature does not cover List-Unsubscribe(-Post): h=%s", s.H)
		}
	}
	if !signed {
		t.Errorf("no d=acme.example signature from the greeting's kumo.sign_dkim: %+v", sigs)
	}

	// The greeting's kumo.limit_sending: acme's rate in the summary.
	var sum struct {
		Tenants []struct {
			Name          string
			EffectiveRate float64 `json:"effective_rate"`
		}
	}
	adminCurl(t, g, "GET", "/api/admin/queue-summary/v1", "", "-H", "Authorization: Bearer "+ops).want(t, "summary", 200).decode(t, &sum)
	found := false
	for _, r := range sum.Tenants {
		if r.Name == "acme" {
			found = true
			if r.EffectiveRate < 9.99 || r.EffectiveRate > 10.01 {
				t.Errorf("tenant acme's rate %v/s, want 600/min = 10/s from kumo.limit_sending", r.EffectiveRate)
			}
		}
	}
	if !found {
		t.Errorf("no row for tenant acme in the summary: %+v", sum.Tenants)
	}

	// smtp_delivery_result: 421 from mx.d2.test → 30% less.
	swaksSend(t, g.SMTPAddr, senderAddr, []string{"u5@" + domain2}, policyMessage(senderAddr, "u5@"+domain2, "throttled"))
	want := 1000.0 / 60 * 0.7
	waitFor(t, deliveryMax, "the site rate of mx.d2.test cut by 30%", func() (bool, string) {
		m := metricSamples(t, g, ops)
		for k, v := range m {
			if strings.HasPrefix(k, "gannet_site_effective_rate{") && strings.Contains(k, "mx.d2.test") {
				return v > want-0.01 && v < want+0.01, fmt.Sprintf("%s = %v, want %v", k, v, want)
			}
		}
		return false, "no gannet_site_effective_rate sample for mx.d2.test"
	})
	waitFor(t, 5*time.Second, "the script's warning in the log", func() (bool, string) {
		out := g.p.out.String()
		return strings.Contains(out, "Throttled by "+domain2+", reducing rate"), out
	})
	// Priority under bulk load: 80 bulk messages from smtp-source wait for
	// d1.test's 1000/min, and a transactional one sent after them all
	// overtakes most of them.
	before := len(rcv.arrivals(t))
	smtpSource(t, g.SMTPAddr, 4, 80, senderAddr, "bulk@"+domain1)
	if r := swaksSend(t, g.SMTPAddr, senderAddr, []string{"vip@" + domain1},
		policyMessage(senderAddr, "vip@"+domain1, "password reset", "X-Type: transactional")); !strings.HasPrefix(r, "250") {
		t.Fatalf("transactional message: %q", r)
	}
	all := waitArrivals(t, rcv, before+81, deliveryMax)[before:]
	pos := -1
	for i, a := range all {
		if len(a.Rcpts) == 1 && a.Rcpts[0] == "vip@"+domain1 {
			pos = i
		}
	}
	if pos < 0 || pos > 40 {
		t.Errorf("the transactional message arrived at position %d of %d, want ahead of most of the bulk queued before it", pos, len(all))
	} else {
		t.Logf("the transactional message arrived at position %d of %d", pos, len(all))
	}

	m := metricSamples(t, g, ops)
	if v := m[`gannet_campaign_events_total{campaign="spring-sale",event="queued"}`]; v != 1 {
		t.Errorf("gannet_campaign_events_total for spring-sale = %v, want 1", v)
	}
	for k, v := range m {
		if strings.HasPrefix(k, "gannet_policy_errors_total") && v > 0 {
			t.Errorf("%s = %v: the reference script should not fail", k, v)
		}
	}
}

// TestPolicyScriptFailures: a message hook that raises an error or loops
// forever costs no message and does not stop the relay: the client gets
// 451 4.3.0 (and may retry), gannet_policy_errors_total counts it, the log
// names the script's line, and the next message goes through. A failing
// http_request hook answers 500 JSON.
func TestPolicyScriptFailures(t *testing.T) {
	gannetBinary(t)
	dns := startDNS(t)
	port := receiverPort(t)
	rcv := startAiosmtpd(t, hostPort(mxIP1, port), aioOptions{})
	script := `
kumo.on("smtp_message_received", function(domain, meta)
  local h = meta.headers
  if h["X-Boom"] then
    error("boom on purpose")
  end
  if h["X-Loop"] then
    while true do end
  end
end)
kumo.on("http_request", function(request)
  if request.path == "/v1/message" and request.headers["X-Boom"] then
    local t = nil
    return t.status
  end
end)
`
	g := startGannet(t, gannetConfig{DNS: dns.Addr, DeliveryPort: port, Script: script, HookTimeout: "200ms"})
	for _, c := range []struct{ name, header string }{{"error", "X-Boom: 1"}, {"endless loop", "X-Loop: 1"}} {
		start := time.Now()
		r := swaksSend(t, g.SMTPAddr, senderAddr, []string{"f1@" + domain1}, policyMessage(senderAddr, "f1@"+domain1, c.name, c.header))
		if !strings.HasPrefix(r, "451 4.3.0") {
			t.Errorf("%s in the hook: reply %q, want 451 4.3.0", c.name, r)
		}
		if d := time.Since(start); d > 10*time.Second {
			t.Errorf("%s in the hook: the reply took %v", c.name, d)
		}
	}
	r := swaksSend(t, g.SMTPAddr, senderAddr, []string{"ok@" + domain1}, policyMessage(senderAddr, "ok@"+domain1, "fine"))
	if !strings.HasPrefix(r, "250") {
		t.Fatalf("a good message after the failures: %q", r)
	}
	got := waitArrivals(t, rcv, 1, deliveryMax)
	if findArrival(got, "ok@"+domain1) == nil || len(got) != 1 {
		t.Errorf("want only the good message delivered, got %d", len(got))
	}
	req, _ := json.Marshal(map[string]any{"from": "app@src.test", "to": []string{"h@" + domain1}, "subject": "x", "text": "x\n"})
	if r := adminCurl(t, g, "POST", "/v1/message", string(req), "-H", "X-Boom: 1"); r.status != 500 || !strings.Contains(r.body, `"error"`) {
		t.Errorf("failing http_request hook: %d %s, want 500 JSON", r.status, r.body)
	}
	m := scrapeMetrics(t, g.HTTPAddr).values
	if v := m[`gannet_policy_errors_total{event="smtp_message_received"}`]; v != 2 {
		t.Errorf("policy errors of smtp_message_received = %v, want 2", v)
	}
	if v := m[`gannet_policy_errors_total{event="http_request"}`]; v != 1 {
		t.Errorf("policy errors of http_request = %v, want 1", v)
	}
	out := g.p.out.String()
	if !strings.Contains(out, "policy.lua:5") || !strings.Contains(out, "boom on purpose") {
		t.Errorf("the log does not name the script's line of the error:\n%s", out)
	}
}

// TestPolicyScriptKumoMessageAPI: a policy written only with KumoMTA's
// message API delivers as it says: msg:set_meta sets tenant and campaign
// (the Delivery record shows them), msg:append_header adds a field,
// msg:dkim_sign with kumo.dkim.rsa_sha256_signer signs (dkimpy verifies),
// get_queue_config's max_age makes mail to a dead domain expire in seconds
// instead of the configured 10 minutes, and get_egress_path_config's rate
// becomes the site's rate.
func TestPolicyScriptKumoMessageAPI(t *testing.T) {
	gannetBinary(t)
	keys := t.TempDir()
	shopKey := keygen(t, keys, "shop.test", "k1", "rsa")
	dns := startDNSAt(t, "127.0.0.1", 0, txtRecords(shopKey)...)
	port := receiverPort(t)
	rcv := startAiosmtpd(t, hostPort(mxIP1, port), aioOptions{})
	script := fmt.Sprintf(`
local kumo = require 'kumo'

kumo.on('smtp_server_message_received', function(msg)
  msg:set_meta('tenant', 'shop')
  msg:set_meta('campaign', msg:get_first_named_header_value('X-Campaign') or 'none')
  msg:append_header('X-Relay-Policy', 'kumo-style')
  local from = msg:from_header()
  if from and from.domain == 'shop.test' then
    msg:dkim_sign(kumo.dkim.rsa_sha256_signer {
      domain = from.domain,
      selector = 'k1',
      headers = { 'From', 'To', 'Subject', 'X-Relay-Policy' },
      key = %q,
    })
  end
end)

kumo.on('get_queue_config', function(domain, tenant, campaign, routing_domain)
  if domain == 'd3.test' then
    return kumo.make_queue_config { retry_interval = '1s', max_retry_interval = '1s', max_age = '3s' }
  end
end)

kumo.on('get_egress_path_config', function(domain, egress_source, site_name)
  if domain == 'd1.test' then
    return kumo.make_egress_path { connection_limit = 2, max_message_rate = '120/m' }
  end
end)
`, shopKey.file)
	g := startGannet(t, gannetConfig{DNS: dns.Addr, DeliveryPort: port, Script: script})
	r := swaksSend(t, g.SMTPAddr, "news@shop.test", []string{"k1@" + domain1},
		policyMessage("Shop <news@shop.test>", "k1@"+domain1, "deals", "X-Campaign: winter"))
	id := acceptedID(t, r)
	dead := acceptedID(t, swaksSend(t, g.SMTPAddr, "news@shop.test", []string{"k2@" + domain3},
		policyMessage("Shop <news@shop.test>", "k2@"+domain3, "to nowhere")))

	got := waitArrivals(t, rcv, 1, deliveryMax)
	a := findArrival(got, "k1@"+domain1)
	if a == nil {
		t.Fatal("not delivered")
	}
	if !strings.Contains(string(a.Data), "X-Relay-Policy: kumo-style\r\n") {
		t.Errorf("msg:append_header: no X-Relay-Policy in\n%s", a.Data)
	}
	sigs := dkimpyVerify(t, dns.Addr, []string{a.File})[a.File]
	if len(sigs) != 1 || sigs[0].D != "shop.test" || !sigs[0].OK || !strings.Contains(strings.ToLower(sigs[0].H), "x-relay-policy") {
		t.Errorf("msg:dkim_sign: signatures %+v, want one valid d=shop.test covering X-Relay-Policy", sigs)
	}
	d := g.WaitRecords(recordFilter{Type: "Delivery", ID: id}, 1, deliveryMax)[0]
	if d.Tenant != "shop" || d.Campaign != "winter" {
		t.Errorf("Delivery record tenant %q campaign %q, want shop, winter", d.Tenant, d.Campaign)
	}
	// get_queue_config: expired within seconds, not after max_retry_age = 10m.
	g.WaitRecords(recordFilter{Type: "Expiration", ID: dead}, 1, 30*time.Second)
	// get_egress_path_config: 120/m is 2/s.
	waitFor(t, 10*time.Second, "the site rate of mx.d1.test from get_egress_path_config", func() (bool, string) {
		for k, v := range scrapeMetrics(t, g.HTTPAddr).values {
			if strings.HasPrefix(k, "gannet_site_effective_rate{") && strings.Contains(k, "mx.d1.test") {
				return v == 2, fmt.Sprintf("%s = %v, want 2", k, v)
			}
		}
		return false, "no gannet_site_effective_rate sample for mx.d1.test"
	})
}
