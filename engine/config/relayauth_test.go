package config

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestRelayAuth: the smarthost login of [delivery], its password read from
// a file, and the mistakes check-config refuses.
func TestRelayAuth(t *testing.T) {
	dir := t.TempDir()
	pwFile := filepath.Join(dir, "relay.pw")
	if err := os.WriteFile(pwFile, []byte("from-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c := mustParse(t, fmt.Sprintf("[delivery]\nrelay_to = \"127.0.0.1:587\"\nrelay_user = \"u\"\nrelay_password_file = %q\nrelay_tls = \"implicit\"\n", pwFile))
	if c.RelayPassword() != "from-file" || c.Delivery.RelayTLS != RelayTLSImplicit {
		t.Errorf("password %q, relay_tls %q", c.RelayPassword(), c.Delivery.RelayTLS)
	}
	c = mustParse(t, "[delivery]\nrelay_to = \"127.0.0.1:587\"\nrelay_user = \"u\"\nrelay_password = \"inline\"\n")
	if c.RelayPassword() != "inline" || c.Delivery.RelayTLS != RelayTLSStartTLS {
		t.Errorf("password %q, relay_tls %q", c.RelayPassword(), c.Delivery.RelayTLS)
	}
	if strings.Contains(string(Show(c, false)), "inline") {
		t.Error("config show prints relay_password")
	}

	for _, tc := range []struct{ name, src, want string }{
		{"both", fmt.Sprintf("relay_user = \"u\"\nrelay_password = \"p\"\nrelay_password_file = %q\n", pwFile), "set relay_password or relay_password_file, not both"},
		{"unreadable", "relay_user = \"u\"\nrelay_password_file = \"" + filepath.Join(dir, "missing") + "\"\n", "relay_password_file: cannot read"},
		{"no password", "relay_user = \"u\"\n", "relay_user: needs relay_password or relay_password_file"},
		{"no user", "relay_password = \"p\"\n", "relay_user: is empty"},
		{"bad tls", "relay_tls = \"ssl\"\n", `relay_tls: "ssl" is not one of`},
	} {
		_, err := Parse("f.toml", []byte("[delivery]\nrelay_to = \"127.0.0.1:587\"\n"+tc.src))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.name, err, tc.want)
		}
		if err != nil && strings.Contains(err.Error(), "\"p\"") {
			t.Errorf("%s: the error shows the password: %v", tc.name, err)
		}
	}
	if _, err := Parse("f.toml", []byte("[delivery]\nrelay_user = \"u\"\nrelay_password = \"p\"\n")); err == nil || !strings.Contains(err.Error(), "without relay_to") {
		t.Errorf("relay_user without relay_to: %v", err)
	}
}

// TestSmarthostFor: a [[tenant]] smarthost comes first, then the domain's
// [relay."DOMAIN"], then [delivery]; each with its own login.
func TestSmarthostFor(t *testing.T) {
	dir := t.TempDir()
	pwFile := filepath.Join(dir, "d.pw")
	if err := os.WriteFile(pwFile, []byte("domain-pw\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c := mustParse(t, fmt.Sprintf(`[delivery]
relay_to = "127.0.0.1:25"
relay_user = "global"
relay_password = "global-pw"

[relay."Special.Example"]
relay_to = "127.0.0.2:587"
relay_user = "dom"
relay_password_file = %q
relay_tls = "implicit"

[[tenant]]
name = "acme"
relay_to = "127.0.0.3:587"
relay_user = "acme"
relay_password = "acme-pw"
`, pwFile))
	for _, tc := range []struct{ tenant, domain, want string }{
		{"", "other.example", "127.0.0.1:25 global global-pw starttls"},
		{"", "special.example", "127.0.0.2:587 dom domain-pw implicit"},
		{"acme", "special.example", "127.0.0.3:587 acme acme-pw "},
		{"nobody", "SPECIAL.example", "127.0.0.2:587 dom domain-pw implicit"},
	} {
		sh := c.SmarthostFor(tc.tenant, tc.domain)
		if got := fmt.Sprintf("%s %s %s %s", sh.RelayTo, sh.User, sh.Password, sh.TLS); got != tc.want {
			t.Errorf("SmarthostFor(%q, %q) = %s, want %s", tc.tenant, tc.domain, got, tc.want)
		}
	}
	if !c.HasRelayOverrides() {
		t.Error("HasRelayOverrides = false")
	}
	for _, tc := range []struct{ name, src, want string }{
		{"domain without relay_to", "[relay.\"d.example\"]\nrelay_user = \"u\"\nrelay_password = \"p\"\n", "relay_to: is required"},
		{"tenant unreadable file", "[[tenant]]\nname = \"t\"\nrelay_to = \"127.0.0.1:25\"\nrelay_user = \"u\"\nrelay_password_file = \"" + filepath.Join(dir, "missing") + "\"\n", "relay_password_file: cannot read"},
		{"tenant bad tls", "[[tenant]]\nname = \"t\"\nrelay_to = \"127.0.0.1:25\"\nrelay_tls = \"ssl\"\n", `"ssl" is not one of`},
	} {
		_, err := Parse("f.toml", []byte(tc.src))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.name, err, tc.want)
		}
	}
}
