package e2e

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestE2EDKIMCrossTenant (issue #15, hostile clients): two tenants, each
// with its own API key and DKIM key. Tenant alpha's key injects mail whose
// From is tenant beta's domain, over both HTTP endpoints; it must arrive
// signed for alpha's dkim_domain only — no d=beta.test signature made with
// the other customer's key — and gannet's log must say why. Beta's own mail
// From its domain is still signed d=beta.test. dkimpy checks the delivered
// bytes against the keys in DNS.
func TestE2EDKIMCrossTenant(t *testing.T) {
	gannetBinary(t)
	keys := t.TempDir()
	alphaKey := keygen(t, keys, "alpha.test", "ta1", "ed25519")
	betaKey := keygen(t, keys, "beta.test", "tb1", "rsa")
	dns := startDNSAt(t, "127.0.0.1", 0, txtRecords(alphaKey, betaKey)...)
	port := receiverPort(t)
	rcv := startAiosmtpd(t, hostPort(mxIP1, port), aioOptions{})
	const alphaSecret, betaSecret = "alpha-e2e-key-1", "beta-e2e-key-2"
	g := startGannet(t, gannetConfig{DNS: dns.Addr, DeliveryPort: port, Extra: fmt.Sprintf(`
[[dkim]]
domain = "alpha.test"
selector = "ta1"
key_file = %q

[[dkim]]
domain = "beta.test"
selector = "tb1"
key_file = %q

[[tenant]]
name = "alpha"
dkim_domain = "alpha.test"

[[tenant]]
name = "beta"
dkim_domain = "beta.test"

[[api_key]]
key = %q
tenant = "alpha"

[[api_key]]
key = %q
tenant = "beta"
`, alphaKey.file, betaKey.file, alphaSecret, betaSecret)})

	type sent struct {
		name, rcpt string
		want       []string // d= of the signatures, top first
	}
	var cases []sent
	post := func(name, secret, path, body string, status int, rcpt string, want []string) {
		t.Helper()
		r := adminCurl(t, g, "POST", path, body, "-H", "Authorization: Bearer "+secret).want(t, name, status)
		if r.status == status {
			cases = append(cases, sent{name, rcpt, want})
		}
	}
	msg := func(from, to string) string {
		b, _ := json.Marshal(map[string]any{"from": from, "to": []string{to}, "subject": "quarterly numbers", "text": "Please wire the money.\n"})
		return string(b)
	}
	post("alpha's key, /v1/message From beta's domain", alphaSecret, "/v1/message",
		msg("ceo@beta.test", "a1@"+domain1), 202, "a1@"+domain1, []string{"alpha.test"})
	kumo, _ := json.Marshal(map[string]any{"envelope_sender": "bounces@alpha.test",
		"recipients": []map[string]string{{"email": "a2@" + domain1}},
		"content":    "From: CEO <ceo@beta.test>\nTo: a2@" + domain1 + "\nSubject: urgent\n\nPlease wire the money.\n"})
	post("alpha's key, /api/inject/v1 From beta's domain", alphaSecret, "/api/inject/v1",
		string(kumo), 200, "a2@"+domain1, []string{"alpha.test"})
	post("beta's key, From its own domain", betaSecret, "/v1/message",
		msg("ceo@beta.test", "b1@"+domain1), 202, "b1@"+domain1, []string{"beta.test"})

	got := waitArrivals(t, rcv, len(cases), deliveryMax)
	var files []string
	for _, c := range cases {
		a := findArrival(got, c.rcpt)
		if a == nil {
			t.Fatalf("%s: not delivered", c.name)
		}
		files = append(files, a.File)
	}
	results := dkimpyVerify(t, dns.Addr, files)
	for i, c := range cases {
		var ds []string
		for _, s := range results[files[i]] {
			ds = append(ds, s.D)
			if !s.OK {
				t.Errorf("%s: signature d=%s does not verify: %s", c.name, s.D, s.Err)
			}
		}
		if !slices.Equal(ds, c.want) {
			t.Errorf("%s: signed by %q, want %q", c.name, ds, c.want)
		}
		data := string(findArrival(got, c.rcpt).Data)
		if !slices.Contains(c.want, "beta.test") && strings.Contains(data, "d=beta.test") {
			t.Errorf("%s: delivered with a d=beta.test signature:\n%s", c.name, data)
		}
	}

	// The log says why, for each of alpha's two messages.
	waitFor(t, 10*time.Second, "the log line about the refused From domain", func() (bool, string) {
		out := g.p.out.String()
		n := 0
		for _, l := range strings.Split(out, "\n") {
			if strings.Contains(l, "DKIM: not signing From domain of another tenant") &&
				strings.Contains(l, "tenant=alpha") && strings.Contains(l, "domain=beta.test") && strings.Contains(l, " id=") {
				n++
			}
		}
		return n == 2, out
	})
}
