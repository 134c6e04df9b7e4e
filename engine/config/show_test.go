package config

import (
	"strings"
	"testing"
)

// TestShowRoundTrip: what Show prints, loaded as a file, gives the same
// configuration again, in full and with only the changed keys.
func TestShowRoundTrip(t *testing.T) {
	src := `smtp_user = []

[spool]
path = "/var/lib/gannet/spool"

[[smtp_listener]]
name = "in"
listen = "127.0.0.1:2600"
max_message_size = "10MiB"
relay_hosts = ["10.0.0.0/8"]

[[smtp_listener]]
name = "submission"
listen = "127.0.0.1:2587"
auth_mechanisms = ["PLAIN"]

[[tenant]]
name = "acme"
max_message_rate = "100/s"

[shaping."gmail.com"]
connection_limit = 5

[[egress_source]]
name = "ip1"
source_address = "127.0.0.1"

[[egress_pool]]
name = "p1"
sources = [{name = "ip1", weight = 2}]

[backoff]
factor = 0.5
throttle_regex = ["slow \"down\""]

[queue]
max_retry_age = "1h30m"
`
	c, err := Parse("a.toml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	for _, changed := range []bool{false, true} {
		out := Show(c, changed)
		c2, err := Parse("a.toml", out)
		if err != nil {
			t.Fatalf("changed=%v: output does not load: %v\n%s", changed, err, out)
		}
		if again := Show(c2, changed); string(again) != string(out) {
			t.Errorf("changed=%v: loaded again, shows\n%s\nwant\n%s", changed, again, out)
		}
		if full, full2 := Show(c, false), Show(c2, false); string(full) != string(full2) {
			t.Errorf("changed=%v: the configuration differs once loaded again:\n%s\nwant\n%s", changed, full2, full)
		}
	}
}

func TestShowChanged(t *testing.T) {
	c, err := Parse("a.toml", []byte(`
[spool]
path = "/var/lib/gannet/spool"
compression = "zstd"

[[smtp_listener]]
name = "relay-in"
listen = "127.0.0.1:2525"
max_recipients = 50

[queue]
max_retry_age = "1h30m"

[[smtp_user]]
name = "app"
password = "s3cret"

[[api_key]]
key_sha256 = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
`))
	if err != nil {
		t.Fatal(err)
	}
	got := string(Show(c, true))
	want := `# a.toml: the keys whose value differs from the built-in configuration
# Secrets are shown as "<redacted>".

[spool]
path = "/var/lib/gannet/spool"

[[smtp_listener]]
name = "relay-in"
listen = "127.0.0.1:2525"
max_recipients = 50

[[smtp_user]]
name = "app"
password = "<redacted>"

[[api_key]]
key_sha256 = "<redacted>"

[queue]
max_retry_age = "1h30m"
`
	if got != want {
		t.Errorf("Show(changed):\n%s\nwant:\n%s", got, want)
	}
	if d := Show(Default(), true); strings.Count(string(d), "\n") != 2 {
		t.Errorf("the built-in configuration shows changes:\n%s", d)
	}
}

// TestShowFull: every key of every table present is shown, secrets
// redacted, durations as written.
func TestShowFull(t *testing.T) {
	c, err := Parse("a.toml", []byte("[[smtp_user]]\nname = \"app\"\npassword_hash = \"$2a$04$KZ6dmXnEOPgaU.yfjpV3HOTQNkGBqzyURd0ZsvNHYvA0D6tCjN2ta\"\n"))
	if err != nil {
		t.Fatal(err)
	}
	got := string(Show(c, false))
	for _, want := range []string{
		"\n[spool]\npath = \"./data/spool\"\ncompression = \"zstd\"\n",
		"\n[[smtp_listener]]\nname = \"relay-in\"\nlisten = \"127.0.0.1:2525\"\n",
		"relay_hosts = [\"127.0.0.0/8\", \"::1/128\"]\n",
		"max_message_size = \"20MiB\"\n",
		"session_timeout = \"30m\"\n",
		"max_retry_age = \"72h\"\n",
		"hook_timeout = \"100ms\"\n",
		"factor = 0.7\n",
		"max_message_rate = \"unlimited\"\n",
		"[[smtp_user]]\nname = \"app\"\npassword = \"\"\npassword_hash = \"<redacted>\"\ntenant = \"\"\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("Show does not contain %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "$2a$") {
		t.Error("Show prints the password hash")
	}
}
