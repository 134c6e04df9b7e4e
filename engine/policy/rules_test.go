package policy

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"gannet/engine/config"
)

var receivedAt = time.Date(2026, 3, 1, 12, 0, 0, 0, time.FixedZone("", 3600))

// rulesConfig is the default configuration with tenants: acme (an ESP
// signing as esp.example, with acme.example its own, and an https
// list_unsubscribe), mailonly (a mailto list_unsubscribe), beta (signing as
// beta.example) and plain (no domains); and [[dkim]] keys for esp.example,
// acme.example, beta.example and unlisted.example. Rules only reads the
// key domains: no key file is loaded.
func rulesConfig() *config.Config {
	c := config.Default()
	c.Tenants = []config.Tenant{
		{Name: "acme", DKIMDomain: "esp.example", DKIMDomains: []string{"acme.example"}, ListUnsubscribe: "https://acme.example/u/{id}"},
		{Name: "mailonly", ListUnsubscribe: "mailto:unsub@acme.example?subject={id}"},
		{Name: "beta", DKIMDomain: "beta.example"},
		{Name: "plain"},
	}
	for _, d := range []string{"esp.example", "acme.example", "beta.example", "unlisted.example"} {
		c.DKIM = append(c.DKIM, config.DKIM{Domain: d, Selector: "s1", KeyFile: "unused.pem"})
	}
	return c
}

// decideAndApply runs Rules on m and applies the edits.
func decideAndApply(t *testing.T, c *config.Config, m *Message) (Decision, string) {
	t.Helper()
	m.ID, m.Hostname, m.Time = cmp.Or(m.ID, "ID1"), cmp.Or(m.Hostname, "relay.test"), receivedAt
	d, err := NewRules(c).Decide(*m)
	if err != nil {
		t.Fatal(err)
	}
	out, err := AppendEdited(nil, m.Body, d.Edits)
	if err != nil {
		t.Fatal(err)
	}
	return d, string(out)
}

// TestRulesAddedFields: Date and Message-ID (RFC 5322 §3.6) when missing,
// List-Unsubscribe (and List-Unsubscribe-Post for https, RFC 8058) on bulk
// mail of a tenant that has one, at the end of the header section.
func TestRulesAddedFields(t *testing.T) {
	const full = "From: a@acme.example\r\nDate: Sun, 1 Mar 2026 10:00:00 +0000\r\nMessage-ID: <x@acme.example>\r\n\r\nbody\r\n"
	for _, tc := range []struct {
		name, tenant, campaign, in, want string
		noAdd                            bool
	}{
		{name: "complete message untouched", in: full, want: full},
		{name: "Date and Message-ID added before the empty line",
			in:   "From: a@acme.example\r\nSubject: x\r\n\r\nbody\r\n",
			want: "From: a@acme.example\r\nSubject: x\r\nDate: Sun, 01 Mar 2026 12:00:00 +0100\r\nMessage-ID: <ID1@relay.test>\r\n\r\nbody\r\n"},
		{name: "header only, last line without CRLF",
			in:   "From: a@acme.example\r\nDate: x",
			want: "From: a@acme.example\r\nDate: x\r\nMessage-ID: <ID1@relay.test>\r\n"},
		{name: "empty message", in: "",
			want: "Date: Sun, 01 Mar 2026 12:00:00 +0100\r\nMessage-ID: <ID1@relay.test>\r\n"},
		{name: "bulk mail of a tenant with list_unsubscribe", tenant: "acme", campaign: "spring", in: full,
			want: strings.Replace(full, "\r\n\r\n", "\r\nList-Unsubscribe: <https://acme.example/u/ID1>\r\nList-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n\r\n", 1)},
		{name: "mailto only: no one-click", tenant: "mailonly", campaign: "spring", in: full,
			want: strings.Replace(full, "\r\n\r\n", "\r\nList-Unsubscribe: <mailto:unsub@acme.example?subject=ID1>\r\n\r\n", 1)},
		{name: "no campaign: not bulk", tenant: "acme", in: full, want: full},
		{name: "unknown tenant", tenant: "nobody", campaign: "spring", in: full, want: full},
		{name: "sender's own List-Unsubscribe kept", tenant: "acme", campaign: "spring",
			in:   "list-unsubscribe: <mailto:x@acme.example>\r\n" + full,
			want: "list-unsubscribe: <mailto:x@acme.example>\r\n" + full},
		{name: "add_missing_headers off", noAdd: true, in: "From: a@acme.example\r\n\r\nb\r\n", want: "From: a@acme.example\r\n\r\nb\r\n"},
		{name: "folded headers and bare LF empty line",
			in:   "From: a@acme.example\r\nSubject: one\r\n two\r\nDate: x\r\n\nbody",
			want: "From: a@acme.example\r\nSubject: one\r\n two\r\nDate: x\r\nMessage-ID: <ID1@relay.test>\r\n\nbody"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := rulesConfig()
			c.Meta.AddMissingHeaders = !tc.noAdd
			_, got := decideAndApply(t, c, &Message{Body: []byte(tc.in), Tenant: tc.tenant, Campaign: tc.campaign})
			if got != tc.want {
				t.Errorf("got\n%q\nwant\n%q", got, tc.want)
			}
		})
	}
}

// TestRulesListUnsubscribeID: "{id}" is replaced everywhere in the
// template, escaped for a URI path.
func TestRulesListUnsubscribeID(t *testing.T) {
	c := rulesConfig()
	c.Tenants[0].ListUnsubscribe = "https://acme.example/u/{id}?again={id}"
	d, _ := decideAndApply(t, c, &Message{ID: "a/b c", Body: []byte("Date: x\r\nMessage-ID: <y>\r\n\r\n"), Tenant: "acme", Campaign: "c"})
	want := []HeaderEdit{
		{Kind: Add, Name: "List-Unsubscribe", Value: "<https://acme.example/u/a%2Fb%20c?again=a%2Fb%20c>"},
		{Kind: Add, Name: "List-Unsubscribe-Post", Value: "List-Unsubscribe=One-Click"},
	}
	if !slices.Equal(d.Edits, want) {
		t.Errorf("edits %+v, want %+v", d.Edits, want)
	}
}

// TestRulesMeta: the [meta] headers count only from a trusted client, are
// stripped either way (strip_meta_headers), and give way to the tenant and
// campaign the client is bound to or the API names; priority is the
// higher of the two.
func TestRulesMeta(t *testing.T) {
	const msg = "X-Tenant: acme\r\nFrom: a@acme.example\r\nx-campaign:\r\n spring\r\nX-Type: Transactional\r\nSubject: s\r\n" +
		"Date: x\r\nMessage-ID: <y>\r\nList-Unsubscribe: <mailto:u@acme.example>\r\n\r\nX-Tenant: body, not header\r\n"
	const stripped = "From: a@acme.example\r\nSubject: s\r\nDate: x\r\nMessage-ID: <y>\r\nList-Unsubscribe: <mailto:u@acme.example>\r\n" +
		"\r\nX-Tenant: body, not header\r\n"
	for _, tc := range []struct {
		name                   string
		m                      Message
		noStrip                bool
		tenant, campaign, want string
		priority               int
	}{
		{name: "trusted", m: Message{Trusted: true}, tenant: "acme", campaign: "spring", priority: 1, want: stripped},
		{name: "untrusted: values do not count, fields still stripped", want: stripped},
		{name: "strip_meta_headers off", m: Message{Trusted: true}, noStrip: true, tenant: "acme", campaign: "spring", priority: 1, want: msg},
		{name: "bound tenant and API campaign first", m: Message{Trusted: true, Tenant: "plain", Campaign: "api"},
			tenant: "plain", campaign: "api", priority: 1, want: stripped},
		{name: "API priority kept", m: Message{Priority: 1}, priority: 1, want: stripped},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := rulesConfig()
			c.Meta.StripMetaHeaders = !tc.noStrip
			m := tc.m
			m.Body = []byte(msg)
			d, got := decideAndApply(t, c, &m)
			if d.Tenant != tc.tenant || d.Campaign != tc.campaign || d.Priority != tc.priority {
				t.Errorf("tenant %q campaign %q priority %d, want %q %q %d", d.Tenant, d.Campaign, d.Priority, tc.tenant, tc.campaign, tc.priority)
			}
			if got != tc.want {
				t.Errorf("got\n%q\nwant\n%q", got, tc.want)
			}
		})
	}
	// A reloaded [meta] names other fields.
	c := rulesConfig()
	c.Meta.TenantHeader = "X-Customer"
	if d, _ := decideAndApply(t, c, &Message{Trusted: true, Body: []byte("X-Customer: acme\r\nX-Tenant: other\r\n\r\n")}); d.Tenant != "acme" {
		t.Errorf("tenant_header X-Customer: tenant %q", d.Tenant)
	}
}

// TestRulesStrippedFieldsDoNotCount: a stripped field is not in the final
// message, so it neither stands for a present Date nor gives the From
// domain (a [meta] header configured with such a name).
func TestRulesStrippedFieldsDoNotCount(t *testing.T) {
	c := rulesConfig()
	c.Meta.PriorityHeader = "Date"
	c.Meta.CampaignHeader = "From"
	d, got := decideAndApply(t, c, &Message{Body: []byte("Date: x\r\nFrom: a@beta.example\r\nMessage-ID: <y>\r\n\r\n")})
	if want := "Message-ID: <y>\r\nDate: Sun, 01 Mar 2026 12:00:00 +0100\r\n\r\n"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	if d.DKIMDomains != nil {
		t.Errorf("signed for %q without a From field", d.DKIMDomains)
	}
}

// TestRulesSigningDomains: which keys sign a message. Mail of a [[tenant]]
// — bound by its API key or AUTH account (Message.Tenant), or named by a
// trusted client's header — gets its From domain's signature only when
// the domain is the tenant's own (dkim_domain, dkim_domains), never
// another tenant's or a domain no tenant lists, and always its
// dkim_domain's; the refusal is a warning with tenant and domain. Mail of
// no configured tenant is signed by its From domain.
func TestRulesSigningDomains(t *testing.T) {
	for _, c := range []struct {
		name    string
		tenant  string // Message.Tenant: API key or SMTP AUTH account
		header  string // X-Tenant from a trusted client
		from    string
		domains []string
		warning string // "" for none
		owner   string
	}{
		{name: "API key of acme, From beta's domain", tenant: "acme", from: "ceo@beta.example",
			domains: []string{"esp.example"}, warning: "DKIM: not signing From domain of another tenant", owner: "beta"},
		{name: "API key of beta, From acme's listed domain", tenant: "beta", from: "ceo@acme.example",
			domains: []string{"beta.example"}, warning: "DKIM: not signing From domain of another tenant", owner: "acme"},
		{name: "API key of beta, From the ESP domain acme signs with", tenant: "beta", from: "billing@esp.example",
			domains: []string{"beta.example"}, warning: "DKIM: not signing From domain of another tenant", owner: "acme"},
		{name: "tenant without domains, From a domain no tenant lists", tenant: "plain", from: "x@unlisted.example",
			warning: "DKIM: not signing From domain that is not the tenant's (dkim_domain, dkim_domains)"},
		{name: "tenant without domains, From a domain without a key", tenant: "plain", from: "x@nokey.example"},
		{name: "header tenant acme, From beta's domain", header: "acme", from: "ceo@beta.example",
			domains: []string{"esp.example"}, warning: "DKIM: not signing From domain of another tenant", owner: "beta"},
		{name: "acme From its dkim_domains entry", tenant: "acme", from: "news@acme.example",
			domains: []string{"acme.example", "esp.example"}},
		{name: "acme From its dkim_domain: one signature", tenant: "acme", from: "news@ESP.example",
			domains: []string{"esp.example"}},
		{name: "beta From its dkim_domain, any case", tenant: "beta", from: "ceo@BETA.example",
			domains: []string{"beta.example"}},
		{name: "acme From a domain without a key", tenant: "acme", from: "x@nokey.example",
			domains: []string{"esp.example"}},
		{name: "no tenant, From beta's domain", from: "ceo@beta.example",
			domains: []string{"beta.example"}},
		{name: "no tenant, From a subdomain: no parent key", from: "x@news.beta.example"},
		{name: "header tenant not configured, From beta's domain", header: "unknown", from: "ceo@beta.example",
			domains: []string{"beta.example"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			in := "From: Someone <" + c.from + ">\r\nTo: u@d1.test\r\nSubject: s\r\n\r\nbody\r\n"
			if c.header != "" {
				in = "X-Tenant: " + c.header + "\r\n" + in
			}
			d, _ := decideAndApply(t, rulesConfig(), &Message{Body: []byte(in), Tenant: c.tenant, Trusted: true})
			if !slices.Equal(d.DKIMDomains, c.domains) {
				t.Errorf("signing domains %q, want %q", d.DKIMDomains, c.domains)
			}
			switch {
			case c.warning == "" && d.Warnings != nil:
				t.Errorf("unexpected warnings %+v", d.Warnings)
			case c.warning != "":
				domain := strings.ToLower(c.from[strings.IndexByte(c.from, '@')+1:])
				want := []any{"tenant", cmp.Or(c.tenant, c.header), "domain", domain}
				if c.owner != "" {
					want = append(want, "owner", c.owner)
				}
				if len(d.Warnings) != 1 || d.Warnings[0].Text != c.warning || fmt.Sprint(d.Warnings[0].Args) != fmt.Sprint(want) {
					t.Errorf("warnings %+v, want %q %v", d.Warnings, c.warning, want)
				}
			}
		})
	}
	// Without [[dkim]] nothing is signed.
	c := rulesConfig()
	c.DKIM = nil
	if d, _ := decideAndApply(t, c, &Message{Body: []byte("From: a@beta.example\r\n\r\n"), Tenant: "beta"}); d.DKIMDomains != nil || d.Warnings != nil {
		t.Errorf("no [[dkim]]: %+v", d)
	}
}

// BenchmarkRulesDecide: the decision for a 2 KB message with the three
// meta headers, a campaign of a tenant with list_unsubscribe and a key.
func BenchmarkRulesDecide(b *testing.B) {
	body := "X-Tenant: acme\r\nX-Campaign: spring\r\nX-Type: transactional\r\nFrom: News <news@acme.example>\r\n" +
		"To: u@dst.test\r\nSubject: The spring sale\r\n\r\n" + strings.Repeat(strings.Repeat("x", 62)+"\r\n", 32)
	r := NewRules(rulesConfig())
	m := &Message{ID: "0abcdefghij", Hostname: "relay.test", Time: receivedAt, Body: []byte(body), Trusted: true}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := r.Decide(*m); err != nil {
			b.Fatal(err)
		}
	}
}
