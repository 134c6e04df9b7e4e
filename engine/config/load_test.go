package config

import (
	"encoding"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"gannet/engine/certs"
)

func TestDefaultParsesAndValidates(t *testing.T) {
	c := Default()
	if probs := c.validate(); len(probs) > 0 {
		t.Fatalf("default config has problems: %v", probs)
	}
	// The contract's "Embedded default config".
	if c.Spool.Path != "./data/spool" || c.Log.Path != "./data/logs" {
		t.Errorf("spool/log paths = %q, %q", c.Spool.Path, c.Log.Path)
	}
	if len(c.SMTPListeners) != 1 || c.SMTPListeners[0].Listen != "127.0.0.1:2525" {
		t.Fatalf("smtp listeners = %+v", c.SMTPListeners)
	}
	l := c.SMTPListeners[0]
	for _, a := range []string{"127.0.0.1", "127.1.2.3", "::1"} {
		if !l.RelayHosts.Contains(netip.MustParseAddr(a)) {
			t.Errorf("default relay_hosts does not contain %s", a)
		}
	}
	if l.RelayHosts.Contains(netip.MustParseAddr("192.0.2.1")) {
		t.Error("default relay_hosts contains 192.0.2.1")
	}
	if l.ImplicitTLS || !l.SelfSignedTLS() || l.Hostname == "" {
		t.Errorf("listener TLS/hostname: %+v", l)
	}
	if l.MaxMessageSize != 20<<20 || l.BareLF != BareLFNormalize {
		t.Errorf("listener size/bare_lf: %v %q", l.MaxMessageSize, l.BareLF)
	}
	// Hostile clients (issue #15): a connection lasts at most 30 minutes,
	// and one address may open 50 at once, as Postfix's
	// smtpd_client_connection_count_limit.
	if l.SessionTimeout.Duration != 30*time.Minute || l.MaxConnectionsPerIP != 50 {
		t.Errorf("listener session_timeout/max_connections_per_ip: %v %d", l.SessionTimeout, l.MaxConnectionsPerIP)
	}
	if len(c.HTTPListeners) != 1 || c.HTTPListeners[0].Listen != "127.0.0.1:8000" {
		t.Fatalf("http listeners = %+v", c.HTTPListeners)
	}
	h := c.HTTPListeners[0]
	for _, s := range []string{ServiceInject, ServiceAdmin, ServiceMetrics} {
		if !h.Serves(s) {
			t.Errorf("default http listener does not serve %s", s)
		}
	}
	if !h.TrustedHosts.Contains(netip.MustParseAddr("::1")) || !h.TrustedHosts.Contains(netip.MustParseAddr("127.0.0.1")) {
		t.Errorf("trusted_hosts = %v", h.TrustedHosts)
	}
	if len(c.Resolver.Nameservers) != 0 || c.Delivery.RelayTo != "" || c.TLS.Mode != TLSOpportunistic {
		t.Errorf("resolver/delivery/tls: %+v %+v %+v", c.Resolver, c.Delivery, c.TLS)
	}
	if c.Queue.RetryInterval.Duration != 5*time.Minute || c.Queue.MaxRetryAge.Duration != 72*time.Hour {
		t.Errorf("queue = %+v", c.Queue)
	}
}

// TestDefaultTOMLDocumentsEveryKey checks that default.toml names every key
// of Config (set, or shown commented out) with a comment line above it.
func TestDefaultTOMLDocumentsEveryKey(t *testing.T) {
	text := string(DefaultTOML())
	var walk func(prefix string, typ reflect.Type)
	walk = func(prefix string, typ reflect.Type) {
		for i := 0; i < typ.NumField(); i++ {
			f := typ.Field(i)
			tag := f.Tag.Get("toml")
			if tag == "" || tag == "-" {
				continue
			}
			ft := f.Type
			for ft.Kind() == reflect.Pointer || ft.Kind() == reflect.Slice || ft.Kind() == reflect.Map {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct && !reflect.PointerTo(ft).Implements(reflect.TypeOf((*encoding.TextUnmarshaler)(nil)).Elem()) {
				walk(prefix+tag+".", ft)
				continue
			}
			re := regexp.MustCompile(`(?m)^(#\s*)?` + regexp.QuoteMeta(tag) + `\s*=`)
			if !re.MatchString(text) {
				t.Errorf("default.toml does not list %s%s", prefix, tag)
			}
		}
	}
	walk("", reflect.TypeOf(Config{}))

	assign := regexp.MustCompile(`^#?\s*[a-z_]+\s*=`)
	lines := strings.Split(text, "\n")
	for i, l := range lines {
		if i > 0 && assign.MatchString(l) {
			prev := lines[i-1]
			if !strings.HasPrefix(prev, "#") || assign.MatchString(prev) {
				t.Errorf("default.toml:%d: %q has no comment line above it", i+1, l)
			}
		}
	}
}

func TestContractExampleParses(t *testing.T) {
	t.Chdir("testdata")
	c, err := Load("contract.toml")
	if err != nil {
		t.Fatal(err)
	}
	l := c.SMTPListeners[0]
	if l.Name != "relay-in" || l.Hostname != "relay.example.test" || l.MaxRecipients != 1000 || l.MaxMessageSize != 20<<20 {
		t.Errorf("listener = %+v", l)
	}
	// Keys the example leaves out come from the built-in listener.
	if l.BareLF != BareLFNormalize || l.CommandTimeout.Duration != 5*time.Minute {
		t.Errorf("listener defaults not applied: %+v", l)
	}
	if !reflect.DeepEqual(l.AuthMechanisms, []string{"PLAIN", "LOGIN", "CRAM-MD5"}) || !l.AuthRequireTLS {
		t.Errorf("auth = %v %v", l.AuthMechanisms, l.AuthRequireTLS)
	}
	if u := c.SMTPUser("app1"); u == nil || u.Tenant != "acme" || !u.CheckPassword("...") || u.CheckPassword("x") {
		t.Errorf("smtp_user = %+v", u)
	}
	if k := c.APIKey("..."); k == nil || k.Tenant != "acme" {
		t.Errorf("api_key lookup = %+v", k)
	}
	if c.APIKey("wrong") != nil {
		t.Error("a wrong API key matched")
	}
	if c.Delivery.MaxMessageRate != (Rate{1000, time.Minute}) || c.Delivery.EHLOName != "relay.example.test" {
		t.Errorf("delivery = %+v", c.Delivery)
	}
	if c.Queue.MaxRetryInterval.Duration != time.Hour {
		t.Errorf("queue = %+v", c.Queue)
	}
	ten := c.Tenant("acme")
	if ten == nil || ten.MaxMessageRate.PerSecond() != 500.0/60 || ten.ListUnsubscribe != "https://acme.example/u/{id}" {
		t.Errorf("tenant = %+v", ten)
	}
	if k := c.DKIMKey("Example.COM"); k == nil || k.Selector != "mail" || len(k.Headers) != 7 {
		t.Errorf("dkim = %+v", k)
	}
	if r := c.Shaping("gmail.com"); r.ConnectionLimit != 5 || r.MaxMessageRate.PerSecond() != 100 {
		t.Errorf("shaping gmail.com = %+v", r)
	}
	if c.File != "contract.toml" {
		t.Errorf("File = %q", c.File)
	}
}

func TestArrayElementsStartFromBuiltInEntry(t *testing.T) {
	c := mustParse(t, `
[[smtp_listener]]
name = "a"
listen = "127.0.0.1:2600"
max_recipients = 5
max_connections_per_ip = 0
session_timeout = "0s"

[[smtp_listener]]
listen = "127.0.0.1:2601"
relay_hosts = ["10.0.0.1"]
`)
	if len(c.SMTPListeners) != 2 {
		t.Fatalf("listeners = %d", len(c.SMTPListeners))
	}
	a, b := c.SMTPListeners[0], c.SMTPListeners[1]
	if a.MaxRecipients != 5 || b.MaxRecipients != 1000 {
		t.Errorf("max_recipients = %d, %d", a.MaxRecipients, b.MaxRecipients)
	}
	if a.MaxConnectionsPerIP != 0 || b.MaxConnectionsPerIP != 50 || a.SessionTimeout.Duration != 0 || b.SessionTimeout.Duration != 30*time.Minute {
		t.Errorf("max_connections_per_ip = %d, %d; session_timeout = %v, %v (an explicit 0 means no limit)",
			a.MaxConnectionsPerIP, b.MaxConnectionsPerIP, a.SessionTimeout, b.SessionTimeout)
	}
	if b.Name != "127.0.0.1:2601" {
		t.Errorf("unnamed listener got name %q", b.Name)
	}
	if !a.RelayHosts.Contains(netip.MustParseAddr("127.0.0.5")) || b.RelayHosts.Contains(netip.MustParseAddr("127.0.0.5")) || !b.RelayHosts.Contains(netip.MustParseAddr("10.0.0.1")) {
		t.Errorf("relay_hosts = %v / %v", a.RelayHosts, b.RelayHosts)
	}
	// The HTTP listener was not mentioned: the built-in one stays.
	if len(c.HTTPListeners) != 1 {
		t.Errorf("http listeners = %+v", c.HTTPListeners)
	}
	// An HTTP listener's size limits default to the built-in entry's.
	c = mustParse(t, "[[http_listener]]\nlisten = \"127.0.0.1:2602\"\n[[http_listener]]\nlisten = \"127.0.0.1:2603\"\nmax_inject_bytes = \"64MiB\"\n")
	if h := c.HTTPListeners; h[0].MaxMessageSize != 20<<20 || h[0].MaxInjectBytes != 256<<20 || h[1].MaxInjectBytes != 64<<20 {
		t.Errorf("http listener sizes: %d/%d, %d/%d", h[0].MaxMessageSize, h[0].MaxInjectBytes, h[1].MaxMessageSize, h[1].MaxInjectBytes)
	}

	c = mustParse(t, "smtp_listener = []\nhttp_listener = []\n")
	if len(c.SMTPListeners) != 0 || len(c.HTTPListeners) != 0 {
		t.Errorf("empty lists did not remove the listeners: %+v %+v", c.SMTPListeners, c.HTTPListeners)
	}
}

func TestNormalization(t *testing.T) {
	c := mustParse(t, `
[resolver]
nameservers = ["127.0.0.53", "[::1]:5353"]
[[smtp_listener]]
listen = "127.0.0.1:0"
auth_mechanisms = ["plain", "cram-md5"]
`)
	if !reflect.DeepEqual(c.Resolver.Nameservers, []string{"127.0.0.53:53", "[::1]:5353"}) {
		t.Errorf("nameservers = %v", c.Resolver.Nameservers)
	}
	if !reflect.DeepEqual(c.SMTPListeners[0].AuthMechanisms, []string{"PLAIN", "CRAM-MD5"}) {
		t.Errorf("mechanisms = %v", c.SMTPListeners[0].AuthMechanisms)
	}
}

// TestTenantDomains: a tenant's own domains are its dkim_domain and its
// dkim_domains, compared without case, and DomainTenant finds the tenant a
// domain belongs to.
func TestTenantDomains(t *testing.T) {
	key := filepath.Join("..", "dkim", "testdata", "ed25519-pkcs8.pem")
	var src strings.Builder
	for _, d := range []string{"a.test", "news.a.test", "b.test"} {
		fmt.Fprintf(&src, "[[dkim]]\ndomain = %q\nselector = \"s\"\nkey_file = %q\n", d, key)
	}
	src.WriteString("[[tenant]]\nname = \"a\"\ndkim_domain = \"A.test\"\ndkim_domains = [\"News.A.test.\"]\n")
	src.WriteString("[[tenant]]\nname = \"b\"\ndkim_domain = \"b.test\"\n")
	c := mustParse(t, src.String())
	a, b := c.Tenant("a"), c.Tenant("b")
	if !reflect.DeepEqual(a.DKIMDomains, []string{"news.a.test"}) {
		t.Errorf("dkim_domains = %q, want lower case without the final dot", a.DKIMDomains)
	}
	for _, d := range []string{"a.test", "NEWS.a.test"} {
		if !a.HasDomain(d) || b.HasDomain(d) || c.DomainTenant(d) != a {
			t.Errorf("%s is tenant a's alone", d)
		}
	}
	if a.HasDomain("b.test") || !b.HasDomain("b.test") || c.DomainTenant("b.test") != b {
		t.Error("b.test is tenant b's alone")
	}
	if a.HasDomain("") || c.DomainTenant("other.test") != nil {
		t.Error("a domain no tenant lists belongs to none")
	}
}

func mustParse(t *testing.T, src string) *Config {
	t.Helper()
	c, err := Parse("test.toml", []byte(src))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	return c
}

// TestErrorsHaveFileAndLine checks each kind of mistake against the exact
// FILE:LINE message a user sees.
func TestErrorsHaveFileAndLine(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name string
		src  string
		want []string // each a whole error line, with "F" for the file name
	}{
		{"syntax", "[spool]\npath = \n", []string{`F:2: path: TOML syntax: a value is missing after "=" (write KEY = VALUE)`}},
		{"syntax, then more", "[spool]\npath = \n[queue]\nmax_queue_depth = 0\n", []string{
			`F:2: path: TOML syntax: a value is missing after "=" (write KEY = VALUE)`,
			`F:4: queue.max_queue_depth: must be at least 1, not 0`,
		}},
		{"several syntax errors", "[spool]\npath = \n[queue]\nmax_queue_depth = \nretry_interval = 5m\n[log]\nretain = \"1x\"\n", []string{
			`F:2: path: TOML syntax: a value is missing after "=" (write KEY = VALUE)`,
			`F:4: max_queue_depth: TOML syntax: a value is missing after "=" (write KEY = VALUE)`,
			`F:5: retry_interval: TOML syntax: 5m is not a value: write a string in quotes ("5m"), a number, true or false, a list [...] or a table {...}`,
			`F:7: log.retain: "1x" is not a duration (write a Go duration such as "30s", "5m" or "72h")`,
		}},
		{"an unclosed inline table", "[spool]\npath = \"x\"\nsmtp_listener = [\n  {listen = \"127.0.0.1:1\"\n]\n", []string{
			`F:5: TOML syntax: expected ',' or '}' after inline table key-value (at "]")`,
		}},
		{"dotted key into a list of tables", "smtp_listener.listen = \"127.0.0.1:1\"\n", []string{
			`F:1: smtp_listener: is a list of tables: write [[smtp_listener]], then its keys`,
		}},
		{"dotted key into a value", "[tls_policy.\"example.test\"]\nmode.x = 1\n", []string{
			`F:2: tls_policy."example.test".mode: is a single value, not a table: write mode = VALUE under [tls_policy."example.test"]`,
		}},
		{"duplicate key", "[spool]\npath = \"a\"\npath = \"b\"\n", []string{`F:3: spool.path: is already set on line 2; a key or table may appear only once`}},
		{"list of tables as a table", "[smtp_listener]\nlisten = \"127.0.0.1:1\"\nmax_recipients = 0\n", []string{
			`F:1: smtp_listener: is a list of tables: write [[smtp_listener]] (two brackets), not [smtp_listener]`,
			`F:3: smtp_listener[0].max_recipients: must be at least 1, not 0`,
		}},
		{"table as a list of tables", "[[spool]]\npath = \"x\"\n", []string{`F:1: spool: is a single table: write [spool], not [[spool]]`}},
		{"empty list, then an element", "smtp_listener = []\n[[smtp_listener]]\nlisten = \"127.0.0.1:1\"\n", []string{
			`F:2: smtp_listener: is already set on line 1; write its elements there or as [[smtp_listener]] tables, not both`,
		}},
		{"wrong type in a list", "[[smtp_listener]]\nlisten = \"127.0.0.1:1\"\nauth_mechanisms = [\"PLAIN\", 2]\n", []string{
			`F:3: smtp_listener[0].auth_mechanisms[1]: must be a string in quotes, not the integer 2`,
		}},
		{"unknown key", "[spool]\npath = \"x\"\ncompresion = \"zstd\"\n", []string{`F:3: spool.compresion: unknown key; did you mean compression?`}},
		{"unknown table", "\n[spol]\npath = \"x\"\n", []string{`F:2: spol: unknown table; did you mean spool?`}},
		{"unknown key in second element", `
[[smtp_listener]]
listen = "127.0.0.1:2600"
[[smtp_listener]]
listen = "127.0.0.1:2601"
colour = "blue"
`, []string{"F:6: smtp_listener[1].colour: unknown key; `gannet config default` lists every key of [[smtp_listener]]"}},
		{"unknown key in an inline table", "smtp_listener = [\n  {listen = \"127.0.0.1:1\", foo = 2},\n]\n",
			[]string{"F:2: smtp_listener[0].foo: unknown key; `gannet config default` lists every key of [[smtp_listener]]"}},
		{"upper-case shaping domain", "\n[shaping.\"Gmail.com\"]\nconnection_limit = -1\n",
			[]string{`F:3: shaping."gmail.com".connection_limit: must be at least 1, not -1`}},
		{"bad size", "[[smtp_listener]]\nlisten = \"127.0.0.1:1\"\nmax_message_size = \"20XB\"\n",
			[]string{`F:3: smtp_listener[0].max_message_size: "20XB" is not a size (write bytes as an integer, or "512KiB", "20MiB", "10MB", "1GiB")`}},
		{"bad value in first of two elements", `
[[smtp_listener]]
listen = "127.0.0.1:2600"
command_timeout = "5 minutes"
[[smtp_listener]]
listen = "127.0.0.1:2601"
command_timeout = "5m"
`, []string{`F:4: smtp_listener[0].command_timeout: "5 minutes" is not a duration (write a Go duration such as "30s", "5m" or "72h")`}},
		{"bad rate", "[delivery]\nmax_message_rate = \"100 per second\"\n",
			[]string{`F:2: delivery.max_message_rate: "100 per second" is not a rate (write COUNT/PERIOD such as "100/s", "1000/m", "5000/h" or "unlimited")`}},
		{"bad cidr", "[[http_listener]]\nlisten = \"127.0.0.1:1\"\ntrusted_hosts = [\n  \"127.0.0.1\",\n  \"10.0.0.0/33\",\n]\n",
			[]string{`F:5: http_listener[0].trusted_hosts[1]: "10.0.0.0/33" is not an IP network (write "192.0.2.0/24", "::1/128" or "127.0.0.1")`}},
		{"negative delay warning", "[queue]\ndelay_warning_after = \"-4h\"\n",
			[]string{`F:2: queue.delay_warning_after: must not be negative, not "-4h0m0s"`}},
		{"negative greylist retry", "[queue]\ngreylist_retry = \"-5m\"\n",
			[]string{`F:2: queue.greylist_retry: must not be negative, not "-5m0s"`}},
		{"api key roles", "[[tenant]]\nname = \"acme\"\n\n[[api_key]]\nkey = \"k1\"\nrole = \"root\"\n\n[[api_key]]\nkey = \"k2\"\ntenant = \"acme\"\nrole = \"viewer\"\n\n[[api_key]]\nkey = \"k3\"\nrole = \"admin\"\n", []string{
			`F:6: api_key[0].role: "root" is not one of "admin", "viewer"`,
			`F:11: api_key[1].role: is for operator keys: a key bound to a tenant cannot log in to the console`,
		}},
		{"wrong type", "[queue]\nmax_queue_depth = \"lots\"\n",
			[]string{`F:2: queue.max_queue_depth: must be an integer, not the string "lots"`}},
		{"log rotation", "[log]\nmax_file_size = \"10KiB\"\nmax_file_age = \"0s\"\nretain = \"-1h\"\n", []string{
			`F:2: log.max_file_size: must be at least 1MiB, not 10240 bytes`,
			`F:3: log.max_file_age: must be a positive duration, not "0s"`,
			`F:4: log.retain: must not be negative (0 keeps every file)`,
		}},
		{"enums", "[spool]\ncompression = \"gzip\"\n\n[tls]\nmode = \"sometimes\"\nmin_version = \"1.4\"\nciphers = [\"TLS_NOPE\"]\n", []string{
			`F:2: spool.compression: "gzip" is not one of "zstd", "s2", "none"`,
			`F:5: tls.mode: "sometimes" is not one of "opportunistic", "opportunistic-insecure", "required", "disabled"`,
			`F:6: tls.min_version: "1.4" is not one of "1.0", "1.1", "1.2", "1.3"`,
			`F:7: tls.ciphers: "TLS_NOPE" is not a cipher suite name known to crypto/tls (such as "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256")`,
		}},
		{"listener values", `
[[smtp_listener]]
name = "in"
listen = "127.0.0.1"
bare_lf = "keep"
max_recipients = 0
data_timeout = "0s"
auth_mechanisms = ["PLAIN", "XOAUTH2"]
tls_cert = "cert.pem"
`, []string{
			`F:4: smtp_listener[0].listen: "127.0.0.1" is not host:port`,
			`F:9: smtp_listener[0].tls_cert: tls_cert and tls_key go together: set both or neither`,
			`F:9: smtp_listener[0].tls_cert: smtp_listener "in": tls_cert cert.pem: no such file or directory`,
			`F:8: smtp_listener[0].auth_mechanisms: "XOAUTH2" is not one of "PLAIN", "LOGIN", "CRAM-MD5"`,
			`F:6: smtp_listener[0].max_recipients: must be at least 1, not 0`,
			`F:5: smtp_listener[0].bare_lf: "keep" is not one of "normalize", "reject"`,
			`F:7: smtp_listener[0].data_timeout: must be a positive duration, not "0s"`,
		}},
		{"listener TLS version and AUTH guard", `
[[smtp_listener]]
listen = "127.0.0.1:2601"
tls_min_version = "1.4"
auth_fail_delay_after = -1
auth_fail_delay = "-2s"
auth_fail_block_after = -3
auth_fail_window = "0s"
`, []string{
			`F:4: smtp_listener[0].tls_min_version: "1.4" is not one of "1.0", "1.1", "1.2", "1.3"`,
			`F:5: smtp_listener[0].auth_fail_delay_after: must be at least 0, not -1`,
			`F:6: smtp_listener[0].auth_fail_delay: must not be negative, not "-2s"`,
			`F:7: smtp_listener[0].auth_fail_block_after: must be at least 0, not -3`,
			`F:8: smtp_listener[0].auth_fail_window: must be a positive duration, not "0s"`,
		}},
		{"proxy protocol without trusted proxies", `
[[smtp_listener]]
listen = "127.0.0.1:2601"
proxy_protocol = true
proxy_header_timeout = "0s"

[[http_listener]]
listen = "127.0.0.1:2602"
proxy_protocol = true
trusted_proxies = ["10.0.0.0/8"]

[[http_listener]]
listen = "127.0.0.1:2603"
proxy_protocol = true
`, []string{
			`F:2: smtp_listener[0].trusted_proxies: must list the proxies allowed to send PROXY headers when proxy_protocol = true (else every connection is refused)`,
			`F:5: smtp_listener[0].proxy_header_timeout: must be a positive duration, not "0s"`,
			`F:12: http_listener[1].trusted_proxies: must list the proxies allowed to send PROXY headers when proxy_protocol = true (else every connection is refused)`,
		}},
		{"listener session limits", `
[[smtp_listener]]
listen = "127.0.0.1:2601"
session_timeout = "-1m"
max_connections_per_ip = -1
`, []string{
			`F:5: smtp_listener[0].max_connections_per_ip: must be at least 0, not -1`,
			`F:4: smtp_listener[0].session_timeout: must not be negative, not "-1m0s"`,
		}},
		{"duplicate listeners", `
[[smtp_listener]]
name = "in"
listen = "127.0.0.1:2600"

[[smtp_listener]]
name = "in"
listen = "127.0.0.1:2601"

[[http_listener]]
listen = "127.0.0.1:2600"
services = ["inject", "smtp"]
max_message_size = 0
max_inject_bytes = "0MiB"
`, []string{
			`F:7: smtp_listener[1].name: listener name "in" is used twice`,
			`F:11: http_listener[0].listen: "127.0.0.1:2600" is already used by smtp_listener[0].listen`,
			`F:12: http_listener[0].services: "smtp" is not one of "inject", "admin", "metrics", "console"`,
			`F:13: http_listener[0].max_message_size: must be a positive size (such as "20MiB"), not 0`,
			`F:14: http_listener[0].max_inject_bytes: must be a positive size (such as "20MiB"), not 0`,
		}},
		{"users and keys", `
[[tenant]]
name = "acme"

[[smtp_user]]
name = "app1"
tenant = "acme"

[[smtp_user]]
name = "app2"
password = "x"
password_hash = "y"
tenant = "nobody"

[[api_key]]
tenant = "acme"

[[api_key]]
key_sha256 = "abc"
`, []string{
			`F:5: smtp_user[0]: needs password or password_hash`,
			`F:12: smtp_user[1].password_hash: set password or password_hash, not both`,
			`F:13: smtp_user[1].tenant: no [[tenant]] is named "nobody"`,
			`F:15: api_key[0]: needs key or key_sha256`,
			`F:19: api_key[1].key_sha256: must be 64 hex digits (the SHA-256 of the key)`,
		}},
		{"delivery and resolver", `
[resolver]
nameservers = ["ns.example.test:53", "127.0.0.1:99999"]
timeout = "-1s"

[delivery]
smtp_port = 0
relay_to = "smarthost.example.test"
max_connections_per_domain = 0
`, []string{
			`F:3: resolver.nameservers: "ns.example.test:53" (entry 1) must name the server by IP address`,
			`F:3: resolver.nameservers: "127.0.0.1:99999" has a bad port (1-65535)`,
			`F:4: resolver.timeout: must be a positive duration, not "-1s"`,
			`F:7: delivery.smtp_port: must be a port number (1-65535), not 0`,
			`F:8: delivery.relay_to: "smarthost.example.test" is not host:port`,
			`F:9: delivery.max_connections_per_domain: must be at least 1, not 0`,
		}},
		{"queue, meta, dkim, tenant, shaping", `
[queue]
retry_interval = "2h"
max_retry_interval = "1h"

[meta]
tenant_header = "X Tenant:"

[[dkim]]
domain = "example.test"
selector = "s"
key_file = "missing.pem"
headers = ["To"]

[[tenant]]
name = "t"
dkim_domain = "other.test"
list_unsubscribe = "ftp://x.test/"
dkim_domains = ["example.test", "Third.test"]

[shaping."bad domain"]
connection_limit = 0
`, []string{
			`F:4: queue.max_retry_interval: (1h0m0s) must not be shorter than retry_interval (2h0m0s)`,
			`F:7: meta.tenant_header: "X Tenant:" is not a header field name (RFC 5322 section 2.2)`,
			`F:12: dkim[0].key_file: cannot read "missing.pem": no such file or directory`,
			`F:13: dkim[0].headers: must include From (RFC 6376 section 5.4)`,
			`F:17: tenant[0].dkim_domain: no [[dkim]] entry has domain "other.test"`,
			`F:18: tenant[0].list_unsubscribe: "ftp://x.test/" is not an https: or mailto: URL (RFC 8058 section 3.1)`,
			`F:19: tenant[0].dkim_domains: no [[dkim]] entry has domain "third.test"`,
			`F:21: shaping."bad domain": "bad domain" is neither "default" nor a domain name`,
			`F:22: shaping."bad domain".connection_limit: must be at least 1, not 0`,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(dir, strings.ReplaceAll(tt.name, " ", "_")+".toml")
			if err := os.WriteFile(path, []byte(tt.src), 0o644); err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, e := range checkFile(path) {
				got = append(got, e.Error())
			}
			want := make([]string, len(tt.want))
			for i, w := range tt.want {
				want[i] = path + strings.TrimPrefix(w, "F")
			}
			if !sameSet(got, want) {
				t.Errorf("Check:\n got: %s\nwant: %s", strings.Join(got, "\n      "), strings.Join(want, "\n      "))
			}
			if _, err := Load(path); err == nil {
				t.Error("Load accepted the file")
			}
		})
	}
}

func sameSet(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	m := map[string]int{}
	for _, s := range a {
		m[s]++
	}
	for _, s := range b {
		m[s]--
	}
	for _, n := range m {
		if n != 0 {
			return false
		}
	}
	return true
}

func TestLoadMissingFile(t *testing.T) {
	errs := checkFile("/nonexistent/gannet.toml")
	if len(errs) != 1 || !strings.HasPrefix(errs[0].Error(), "/nonexistent/gannet.toml: ") {
		t.Fatalf("errs = %v", errs)
	}
}

func TestValidFileHasNoProblems(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ok.toml")
	os.WriteFile(path, []byte("[delivery]\nrelay_to = \"127.0.0.1:2526\"\n"), 0o644)
	if errs := checkFile(path); errs != nil {
		t.Fatalf("Check = %v", errs)
	}
}

func BenchmarkParseDefault(b *testing.B) {
	b.ReportAllocs()
	src := DefaultTOML()
	for b.Loop() {
		if _, err := Parse("d.toml", src); err != nil {
			b.Fatal(err)
		}
	}
}

// checkFile returns every problem Load finds in the file at path (nil when
// it is valid), each an *Error.
func checkFile(path string) []error {
	_, err := Load(path)
	var es Errors
	if !errors.As(err, &es) {
		return nil
	}
	out := make([]error, len(es))
	for i, e := range es {
		out[i] = e
	}
	return out
}

// TestListenerCertificatePair: tls_cert and tls_key that are not a
// certificate and its key are refused, naming the listener and both files.
func TestListenerCertificatePair(t *testing.T) {
	dir := t.TempDir()
	for _, n := range []string{"a", "b"} {
		if err := certs.WriteSelfSigned(filepath.Join(dir, n+"-cert.pem"), filepath.Join(dir, n+"-key.pem"), "relay.test", time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	src := fmt.Sprintf("[[smtp_listener]]\nname = \"in\"\nlisten = \"127.0.0.1:1\"\ntls_cert = %q\ntls_key = %q\n",
		filepath.Join(dir, "a-cert.pem"), filepath.Join(dir, "b-key.pem"))
	_, err := Parse("f.toml", []byte(src))
	want := fmt.Sprintf(`f.toml:4: smtp_listener[0].tls_cert: smtp_listener "in": tls_cert %s and tls_key %s are not a PEM certificate and its private key: tls: private key does not match public key`,
		filepath.Join(dir, "a-cert.pem"), filepath.Join(dir, "b-key.pem"))
	if err == nil || err.Error() != want {
		t.Errorf("Parse = %v\nwant %s", err, want)
	}
	src = strings.ReplaceAll(src, "b-key.pem", "a-key.pem")
	if _, err := Parse("f.toml", []byte(src)); err != nil {
		t.Errorf("a matching pair: %v", err)
	}
}
