package engine

import (
	"cmp"
	"slices"
	"strings"
	"testing"
)

// TestSignTenantDomains: the store path signs with the keys the policy
// chooses (policy.Rules; its table test, TestRulesSigningDomains, covers
// the rule) and logs a refused From domain with the tenant, the domain and
// the message id: the signatures verify, and no key signs that the policy
// did not choose.
func TestSignTenantDomains(t *testing.T) {
	for _, c := range []struct {
		name    string
		tenant  string // policy.Message.Tenant: API key or SMTP AUTH account
		header  string // X-Tenant from a trusted client
		from    string
		domains []string // d= of the verified signatures, in order
		logged  string   // "" for no log line
	}{
		{name: "API key of acme, From beta's domain", tenant: "acme", from: "ceo@beta.example",
			domains: []string{"esp.example"}, logged: "DKIM: not signing From domain of another tenant"},
		{name: "tenant without domains, From a domain no tenant lists", tenant: "plain", from: "x@unlisted.example",
			logged: "DKIM: not signing From domain that is not the tenant's"},
		{name: "acme From its dkim_domains entry", tenant: "acme", from: "news@acme.example",
			domains: []string{"acme.example", "esp.example"}},
		{name: "no tenant, From beta's domain", from: "ceo@beta.example",
			domains: []string{"beta.example"}},
		{name: "header tenant acme, From beta's domain", header: "acme", from: "ceo@beta.example",
			domains: []string{"esp.example"}, logged: "DKIM: not signing From domain of another tenant"},
	} {
		t.Run(c.name, func(t *testing.T) {
			e, recs, logs := signingEngineLog(t)
			in := "From: <" + c.from + ">\r\nTo: u@d1.test\r\nSubject: s\r\n\r\nbody\r\n"
			if c.header != "" {
				in = "X-Tenant: " + c.header + "\r\n" + in
			}
			p, _ := prepareTest(t, e, testArrival(e, in, c.tenant, true), "ID7")
			if got := verify(t, p.final, recs); !slices.Equal(got, c.domains) {
				t.Errorf("signed by %q, want %q\n%s", got, c.domains, p.final)
			}
			domain := strings.ToLower(c.from[strings.IndexByte(c.from, '@')+1:])
			if !slices.Contains(c.domains, domain) && strings.Contains(string(p.final), "d="+domain+";") {
				t.Errorf("a signature with d=%s:\n%s", domain, p.final)
			}
			log := logs.String()
			switch {
			case c.logged == "" && log != "":
				t.Errorf("unexpected log:\n%s", log)
			case c.logged != "" && (!strings.Contains(log, c.logged) || !strings.Contains(log, "id=ID7") ||
				!strings.Contains(log, "domain="+domain) || !strings.Contains(log, "tenant="+cmp.Or(c.tenant, c.header))):
				t.Errorf("log %q, want %q with id, tenant and domain", log, c.logged)
			}
		})
	}
}
