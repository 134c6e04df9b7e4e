package engine

import (
	"cmp"
	"slices"
	"strings"
	"testing"
)

// TestSignTenantDomains: which keys sign a message (sign's rule). Mail of a
// [[tenant]] — bound by its API key or AUTH account (draft.tenant), or
// named by a trusted client's header — gets its From domain's signature
// only when the domain is the tenant's own (dkim_domain, dkim_domains),
// never another tenant's or a domain no tenant lists, and always its
// dkim_domain's; the refusal is logged with tenant, domain and id. Mail of
// no configured tenant is signed by its From domain as before.
func TestSignTenantDomains(t *testing.T) {
	for _, c := range []struct {
		name    string
		tenant  string // draft.tenant: API key or SMTP AUTH account
		header  string // X-Tenant from a trusted client
		from    string
		domains []string // d= of the verified signatures, in order
		logged  string   // "" for no log line
	}{
		{name: "API key of acme, From beta's domain", tenant: "acme", from: "ceo@beta.example",
			domains: []string{"esp.example"}, logged: "DKIM: not signing From domain of another tenant"},
		{name: "API key of beta, From acme's listed domain", tenant: "beta", from: "ceo@acme.example",
			domains: []string{"beta.example"}, logged: "DKIM: not signing From domain of another tenant"},
		{name: "API key of beta, From the ESP domain acme signs with", tenant: "beta", from: "billing@esp.example",
			domains: []string{"beta.example"}, logged: "DKIM: not signing From domain of another tenant"},
		{name: "tenant without domains, From a domain no tenant lists", tenant: "plain", from: "x@unlisted.example",
			logged: "DKIM: not signing From domain that is not the tenant's"},
		{name: "header tenant acme, From beta's domain", header: "acme", from: "ceo@beta.example",
			domains: []string{"esp.example"}, logged: "DKIM: not signing From domain of another tenant"},
		{name: "acme From its dkim_domains entry", tenant: "acme", from: "news@acme.example",
			domains: []string{"acme.example", "esp.example"}},
		{name: "beta From its dkim_domain", tenant: "beta", from: "ceo@BETA.example",
			domains: []string{"beta.example"}},
		{name: "acme From a domain without a key", tenant: "acme", from: "x@nokey.example",
			domains: []string{"esp.example"}},
		{name: "no tenant, From beta's domain", from: "ceo@beta.example",
			domains: []string{"beta.example"}},
		{name: "header tenant not configured, From beta's domain", header: "unknown", from: "ceo@beta.example",
			domains: []string{"beta.example"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			e, recs, logs := signingEngineLog(t)
			in := "From: <" + c.from + ">\r\nTo: u@d1.test\r\nSubject: s\r\n\r\nbody\r\n"
			if c.header != "" {
				in = "X-Tenant: " + c.header + "\r\n" + in
			}
			p, err := e.prepare(draft{id: "ID7", body: []byte(in), host: "h", tenant: c.tenant, trusted: true}, policyTime)
			if err != nil {
				t.Fatal(err)
			}
			if got := verify(t, p.body, recs); !slices.Equal(got, c.domains) {
				t.Errorf("signed by %q, want %q\n%s", got, c.domains, p.body)
			}
			domain := strings.ToLower(c.from[strings.IndexByte(c.from, '@')+1:])
			if !slices.Contains(c.domains, domain) && strings.Contains(string(p.body), "d="+domain+";") {
				t.Errorf("a signature with d=%s:\n%s", domain, p.body)
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
