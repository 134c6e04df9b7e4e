package config

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestDeliveryPolicyKeys: egress sources and pools, tenant pools, provider
// tables, automation rules, [backoff] and [tls_policy] parse and combine.
func TestDeliveryPolicyKeys(t *testing.T) {
	c := mustParse(t, `
[delivery]
egress_pool = "main"
send_bounces = true

[tls]
fallback_plaintext = false

[[egress_source]]
name = "ip5"
source_address = "127.0.0.5"
ehlo_name = "out5.example.test"

[[egress_source]]
name = "ip6"
source_address = "127.0.0.6"

[[egress_pool]]
name = "main"
sources = [{name = "ip5", weight = 3}, {name = "ip6"}]

[[egress_pool]]
name = "vip"
sources = [{name = "ip6", weight = 1}]

[[tenant]]
name = "acme"
egress_pool = "vip"

[shaping.google]
mx_suffix = [".google.com"]
connection_limit = 20
max_message_rate = "50/s"

[shaping."gmail.com"]
connection_limit = 5

[[shaping_rule]]
match_mx_suffix = [".yahoodns.net"]
regex = "\\[TS03\\]"
action = "Rate"
duration = "30m"
rate = "10/m"

[backoff]
factor = 0.5
throttle_regex = ["(?i)slow down"]

[tls_policy."Secure.Example"]
mode = "required"
`)
	if !c.Delivery.SendBounces || c.TLS.FallbackPlaintext {
		t.Errorf("send_bounces %v fallback_plaintext %v", c.Delivery.SendBounces, c.TLS.FallbackPlaintext)
	}
	if s := c.EgressSource("ip5"); s == nil || s.Addr().String() != "127.0.0.5" || s.EHLOName != "out5.example.test" {
		t.Errorf("egress source ip5 %+v", s)
	}
	if p := c.TenantEgressPool("acme"); p == nil || p.Name != "vip" {
		t.Errorf("acme's pool %+v", p)
	}
	if p := c.TenantEgressPool("other"); p == nil || p.Name != "main" || len(p.Sources) != 2 || p.Sources[0].Weight != 3 {
		t.Errorf("default pool %+v", p)
	}
	gmx := []string{"gmail-smtp-in.l.google.com", "alt1.gmail-smtp-in.l.google.com"}
	if r := c.ShapingFor("example.org", gmx); r.ConnectionLimit != 20 || r.MaxMessageRate != (Rate{50, time.Second}) {
		t.Errorf("provider table by MX suffix: %+v", r)
	}
	if r := c.ShapingFor("gmail.com", gmx); r.ConnectionLimit != 5 || r.MaxMessageRate != (Rate{50, time.Second}) {
		t.Errorf("domain table over provider table: %+v", r)
	}
	if r := c.ShapingFor("other.test", []string{"mx.other.test"}); r.ConnectionLimit != 10 {
		t.Errorf("unmatched destination: %+v", r)
	}
	if len(c.ShapingRules) != 1 || c.ShapingRules[0].Action != ActionRate || c.ShapingRules[0].Rate != (Rate{10, time.Minute}) {
		t.Errorf("rules %+v", c.ShapingRules)
	}
	if c.Backoff.Factor != 0.5 || !c.Backoff.Enabled || c.Backoff.RecoverStep != 0.1 || len(c.Backoff.ThrottleRegex) != 1 {
		t.Errorf("backoff %+v", c.Backoff)
	}
	if tl := c.TLSFor("secure.example."); tl.Mode != TLSRequired || tl.MinVersion != "1.2" || tl.FallbackPlaintext {
		t.Errorf("tls for secure.example %+v", tl)
	}
	if tl := c.TLSFor("other.test"); tl.Mode != TLSOpportunistic {
		t.Errorf("tls for other.test %+v", tl)
	}
}

// TestDeliveryPolicyErrors: each bad key is reported at its line.
func TestDeliveryPolicyErrors(t *testing.T) {
	src := `[delivery]
egress_pool = "nope"

[[egress_source]]
name = "ip5"
source_address = "not-an-ip"

[[egress_pool]]
name = "p"
sources = [{name = "missing"}]

[[shaping_rule]]
regex = "(["
action = "explode"
duration = "0s"

[backoff]
factor = 1.5

[tls_policy."x.test"]
mode = "sometimes"

[shaping.default]
limit_scope = "fleet"

[[tenant]]
name = "acme"
limit_scope = "everywhere"
`
	_, err := Parse("bad.toml", []byte(src))
	if err == nil {
		t.Fatal("no error")
	}
	got := err.Error()
	for _, want := range []string{
		`bad.toml:2: delivery.egress_pool: no [[egress_pool]] is named "nope"`,
		`bad.toml:6: egress_source[0].source_address: "not-an-ip" is not an IP address`,
		`bad.toml:10: egress_pool[0].sources: no [[egress_source]] is named "missing"`,
		`bad.toml:13: shaping_rule[0].regex:`,
		`bad.toml:14: shaping_rule[0].action: "explode" is not one of`,
		`bad.toml:15: shaping_rule[0].duration: must be a positive duration`,
		`bad.toml:18: backoff.factor: must be between 0 and 1`,
		`tls_policy."x.test".mode: "sometimes" is not one of`,
		`shaping.default.limit_scope: "fleet" is not one of "cluster", "node"`,
		`bad.toml:28: tenant[0].limit_scope: "everywhere" is not one of "cluster", "node"`,
	} {
		if !strings.Contains(got, want) {
			t.Errorf("missing %q in:\n%s", want, got)
		}
	}
}

// TestTLSMTASTSKeys: [tls] mta_sts is on by default, a domain can turn it
// off, and ca_file must be a readable PEM file of certificates.
func TestTLSMTASTSKeys(t *testing.T) {
	c, err := Parse("sts.toml", []byte(`
[tls_policy."no-sts.test"]
mta_sts = false
`))
	if err != nil {
		t.Fatal(err)
	}
	if !c.TLS.MTASTS || c.TLS.CAFile != "" {
		t.Errorf("defaults: mta_sts %v ca_file %q", c.TLS.MTASTS, c.TLS.CAFile)
	}
	if c.TLSFor("No-STS.test.").MTASTS || !c.TLSFor("other.test").MTASTS {
		t.Errorf("per-domain mta_sts: %+v %+v", c.TLSFor("no-sts.test"), c.TLSFor("other.test"))
	}
	dir := t.TempDir()
	notPEM := filepath.Join(dir, "ca.txt")
	os.WriteFile(notPEM, []byte("hello"), 0o600)
	for file, want := range map[string]string{
		notPEM:                        "holds no PEM certificate",
		filepath.Join(dir, "missing"): "cannot read",
	} {
		_, err := Parse("ca.toml", []byte("[tls]\nca_file = "+strconv.Quote(file)+"\n"))
		if err == nil || !strings.Contains(err.Error(), "tls.ca_file") || !strings.Contains(err.Error(), want) {
			t.Errorf("ca_file %s: %v, want %q", file, err, want)
		}
	}
}

// TestTLSRPTKeys: [tls] tlsrpt is on by default; tlsrpt_sender must be an
// address; organization and contact one short line.
func TestTLSRPTKeys(t *testing.T) {
	c, err := Parse("rpt.toml", []byte("[tls]\ntlsrpt_sender = \"tlsrpt@relay.test\"\n"))
	if err != nil {
		t.Fatal(err)
	}
	if !c.TLS.TLSRPT || c.TLS.TLSRPTSender != "tlsrpt@relay.test" || c.TLS.TLSRPTOrganization != "" {
		t.Errorf("tls: %+v", c.TLS)
	}
	for _, bad := range []string{
		`tlsrpt_sender = "no-at"`,
		`tlsrpt_sender = "<a@b.test>"`,
		`tlsrpt_sender = "a@b@c.test"`,
		`tlsrpt_organization = "two\nlines"`,
		`tlsrpt_contact = "` + strings.Repeat("x", 300) + `"`,
	} {
		if _, err := Parse("rpt.toml", []byte("[tls]\n"+bad+"\n")); err == nil || !strings.Contains(err.Error(), "tls.tlsrpt_") {
			t.Errorf("%s: %v", bad, err)
		}
	}
}
