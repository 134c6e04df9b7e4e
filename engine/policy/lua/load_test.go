package lua

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"gannet/engine/config"
)

// testKey is a DKIM key the config checker accepts.
var testKey = filepath.Join("..", "..", "dkim", "testdata", "ed25519-pkcs8.pem")

// writeScript writes src as relay.lua in a new directory and returns its
// path.
func writeScript(t *testing.T, src string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "relay.lua")
	if err := os.WriteFile(p, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestReferenceScript: the reference script of policy.md loads (its keys
// stubbed with a test key) and builds the config its calls name.
func TestReferenceScript(t *testing.T) {
	referenceDir(t) // key_file is relative to the working directory, as in TOML
	s, err := LoadScript("relay.lua")
	if err != nil {
		t.Fatal(err)
	}
	c := s.Config
	if len(c.SMTPListeners) != 2 {
		t.Fatalf("smtp listeners = %d, want 2", len(c.SMTPListeners))
	}
	in, sub := c.SMTPListeners[0], c.SMTPListeners[1]
	if in.Listen != "127.0.0.1:2525" || in.Name != "relay-in" || in.RelayHosts.String() != "[127.0.0.0/8]" || !in.AuthRequireTLS {
		t.Errorf("relay-in = %+v", in)
	}
	if sub.Name != "submission" || len(sub.RelayHosts) != 0 || !reflect.DeepEqual(sub.AuthMechanisms, []string{"PLAIN", "LOGIN", "CRAM-MD5"}) {
		t.Errorf("submission = %+v", sub)
	}
	if def := config.Default().SMTPListeners[0]; in.MaxMessageSize != def.MaxMessageSize {
		t.Errorf("max_message_size = %v, want the built-in %v", in.MaxMessageSize, def.MaxMessageSize)
	}
	if len(c.HTTPListeners) != 1 || c.HTTPListeners[0].Listen != "127.0.0.1:8000" || c.HTTPListeners[0].TrustedHosts.String() != "[127.0.0.1/32]" {
		t.Errorf("http listeners = %+v", c.HTTPListeners)
	}
	if len(c.HTTPListeners[0].Services) == 0 {
		t.Errorf("http listener services empty, want the built-in ones")
	}
	if len(c.DKIM) != 1 || c.DKIM[0].Domain != "example.com" || c.DKIM[0].Selector != "mail" ||
		!reflect.DeepEqual(c.DKIM[0].Headers, []string{"From", "To", "Subject", "Date", "Message-ID"}) {
		t.Errorf("dkim = %+v", c.DKIM)
	}
	if c.TLS.MinVersion != "1.3" {
		t.Errorf("tls min version = %q", c.TLS.MinVersion)
	}
	if c.Delivery.MaxConnectionsPerDomain != 10 || c.Delivery.MaxMessageRate != (config.Rate{Count: 1000, Per: time.Minute}) {
		t.Errorf("delivery = %+v", c.Delivery)
	}
	if c.Queue.MaxQueueDepth != 100000 || c.Queue.RetryInterval.Duration != 5*time.Minute || c.Queue.MaxRetryAge.Duration != 72*time.Hour {
		t.Errorf("queue = %+v", c.Queue)
	}
	want := []string{"smtp_server_greeting", "smtp_message_received", "smtp_message_received", "smtp_message_received",
		"smtp_delivery_result", "smtp_server_auth", "http_request"}
	if !reflect.DeepEqual(s.Events, want) {
		t.Errorf("events = %q, want %q", s.Events, want)
	}
	if c.File != "relay.lua" {
		t.Errorf("File = %q", c.File)
	}
}

// TestFunctions: each configuration function, with good and bad input;
// errors name the file, the line and the key.
func TestFunctions(t *testing.T) {
	type check func(t *testing.T, c *config.Config)
	for _, tc := range []struct {
		name, src string
		err       string // "" for a script that loads
		check     check
	}{
		{name: "smtp listener", src: `kumo.start_esmtp_listener { listen = "127.0.0.1:25", hostname = "mx.test", max_message_size = "20MiB",
			max_recipients_per_message = 50, implicit_tls = false, command_timeout = 30, data_timeout = "2m", bare_lf = "reject",
			tls = { cert_file = "", key_file = "" } }`,
			check: func(t *testing.T, c *config.Config) {
				l := c.SMTPListeners[0]
				if len(c.SMTPListeners) != 1 || l.Name != "127.0.0.1:25" || l.Hostname != "mx.test" || l.MaxMessageSize != 20<<20 ||
					l.MaxRecipients != 50 || l.CommandTimeout.Duration != 30*time.Second || l.DataTimeout.Duration != 2*time.Minute || l.BareLF != "reject" {
					t.Errorf("listener = %+v", l)
				}
			}},
		{name: "smtp kumo names", src: `kumo.start_esmtp_listener { listen = "127.0.0.1:25", tls_certificate = "c.pem", tls_private_key = "k.pem", max_recipients_per_message = 9 }`,
			err: `relay.lua:1: smtp_listener[0].tls_cert: smtp_listener "127.0.0.1:25": tls_cert c.pem: no such file or directory`},
		{name: "smtp unknown key", src: "\n\nkumo.start_smtp_listener { listen = \"127.0.0.1:25\", foo = 1 }",
			err: `relay.lua:3: kumo.start_smtp_listener: unknown key "foo"`},
		{name: "key line", src: "kumo.start_smtp_listener {\n  listen = \"127.0.0.1:25\",\n  foo = 1,\n}",
			err: `relay.lua:3: kumo.start_smtp_listener: unknown key "foo"`},
		{name: "nested key line", src: "kumo.start_smtp_listener {\n  listen = \"127.0.0.1:25\",\n  tls = {\n    cert = \"x\",\n  },\n}",
			err: `relay.lua:4: kumo.start_smtp_listener: tls: unknown key "cert"`},
		{name: "validation key line", src: "kumo.configure_queue {\n  retry_interval = \"5m\",\n  max_queue_depth = 0,\n}",
			err: `relay.lua:3: queue.max_queue_depth: must be at least`},
		{name: "table built elsewhere", src: "local t = {\n  foo = 1,\n}\n\nkumo.configure_queue(t)",
			err: `relay.lua:5: kumo.configure_queue: unknown key "foo"`},
		{name: "smtp not yet", src: `kumo.start_smtp_listener { listen = "127.0.0.1:25", banner = "hi" }`,
			err: `relay.lua:1: kumo.start_smtp_listener: banner: is not implemented by Gannet yet`},
		{name: "smtp bad cidr", src: `kumo.start_smtp_listener { listen = "127.0.0.1:25", relay_hosts = { "nonsense" } }`,
			err: `relay.lua:1: kumo.start_smtp_listener: relay_hosts: item 1: "nonsense"`},
		{name: "smtp bad type", src: `kumo.start_smtp_listener { listen = "127.0.0.1:25", auth_require_tls = "yes" }`,
			err: `relay.lua:1: kumo.start_smtp_listener: auth_require_tls: must be true or false, not a string`},
		{name: "smtp bad tls", src: `kumo.start_smtp_listener { listen = "127.0.0.1:25", tls = { cert = "x" } }`,
			err: `relay.lua:1: kumo.start_smtp_listener: tls: unknown key "cert"`},
		{name: "not a table", src: `kumo.configure_queue("x")`,
			err: `relay.lua:1: kumo.configure_queue takes a table, not a string`},
		{name: "validation has the line", src: "kumo.start_smtp_listener { listen = \"127.0.0.1:25\" }\n\nkumo.start_smtp_listener { listen = \"nohost\" }",
			err: `relay.lua:3: smtp_listener[1].listen`},
		{name: "http listener", src: `kumo.start_http_listener { listen = "127.0.0.1:8080", trusted_hosts = { "10.0.0.0/8" }, services = { "inject" }, max_inject_bytes = 1048576 }`,
			check: func(t *testing.T, c *config.Config) {
				h := c.HTTPListeners[0]
				if h.Listen != "127.0.0.1:8080" || !reflect.DeepEqual(h.Services, []string{"inject"}) || h.MaxInjectBytes != 1<<20 {
					t.Errorf("http = %+v", h)
				}
			}},
		{name: "http bad service", src: `kumo.start_http_listener { listen = "127.0.0.1:8080", services = { "nope" } }`,
			err: `relay.lua:1: http_listener[0].services`},
		{name: "dkim no key", src: `kumo.configure_dkim_signing { domain = "a.test", selector = "s", key_file = "missing.pem" }`,
			err: `relay.lua:1: dkim[0].key_file: cannot read`},
		{name: "dkim", src: `kumo.configure_dkim_signing { domain = "A.test", selector = "s", key_file = "` + filepath.ToSlash(testKey) + `" }`,
			check: func(t *testing.T, c *config.Config) {
				if c.DKIM[0].Domain != "a.test" || len(c.DKIM[0].Headers) == 0 {
					t.Errorf("dkim = %+v", c.DKIM)
				}
			}},
		{name: "tls", src: `kumo.configure_tls { min_tls_version = "1.3", mode = "required", ciphers = {} }`,
			check: func(t *testing.T, c *config.Config) {
				if c.TLS.MinVersion != "1.3" || c.TLS.Mode != "required" {
					t.Errorf("tls = %+v", c.TLS)
				}
			}},
		{name: "tls bad version", src: `kumo.configure_tls { min_tls_version = "2.0" }`, err: `relay.lua:1: tls.min_version`},
		{name: "tls not yet", src: `kumo.configure_tls { prefer_server_ciphers = true }`,
			err: `relay.lua:1: kumo.configure_tls: prefer_server_ciphers: is not implemented by Gannet yet`},
		{name: "delivery rate string", src: `kumo.configure_delivery { max_message_rate = "100/s", connect_timeout = "10s" }`,
			check: func(t *testing.T, c *config.Config) {
				if c.Delivery.MaxMessageRate != (config.Rate{Count: 100, Per: time.Second}) || c.Delivery.ConnectTimeout.Duration != 10*time.Second {
					t.Errorf("delivery = %+v", c.Delivery)
				}
			}},
		{name: "delivery bad rate", src: `kumo.configure_delivery { max_message_rate = "fast" }`,
			err: `relay.lua:1: kumo.configure_delivery: max_message_rate: "fast" is not a rate`},
		{name: "delivery bad threads", src: `kumo.configure_delivery { threads = 0 }`,
			err: `relay.lua:1: kumo.configure_delivery: threads: must be at least 1, not 0`},
		{name: "queue", src: `kumo.configure_queue { max_queue_depth = 5, retry_interval = 60, max_retry_interval = "2h", max_retry_age = "96h", dead_letter_after = "7d" }`,
			check: func(t *testing.T, c *config.Config) {
				q := c.Queue
				if q.MaxQueueDepth != 5 || q.RetryInterval.Duration != time.Minute || q.MaxRetryInterval.Duration != 2*time.Hour || q.MaxRetryAge.Duration != 96*time.Hour {
					t.Errorf("queue = %+v", q)
				}
			}},
		{name: "queue bad duration", src: `kumo.configure_queue { retry_interval = "soon" }`,
			err: `relay.lua:1: kumo.configure_queue: retry_interval: "soon" is not a duration`},
		{name: "queue fractional depth", src: `kumo.configure_queue { max_queue_depth = 1.5 }`,
			err: `relay.lua:1: kumo.configure_queue: max_queue_depth: 1.5 is not a whole number`},
		{name: "spool and logs", src: `kumo.define_spool { name = "data", path = "/var/spool/g", kind = "RocksDB" }
			kumo.define_spool { name = "meta", path = "/var/spool/m" }
			kumo.configure_local_logs { log_dir = "/var/log/g", max_segment_duration = "10m" }
			kumo.configure_spool { compression = "s2" }`,
			check: func(t *testing.T, c *config.Config) {
				if c.Spool.Path != "/var/spool/g" || c.Spool.Compression != "s2" || c.Log.Path != "/var/log/g" || c.Log.MaxFileAge.Duration != 10*time.Minute {
					t.Errorf("spool = %+v, log = %+v", c.Spool, c.Log)
				}
			}},
		{name: "spool bad name", src: `kumo.define_spool { name = "x", path = "/p" }`,
			err: `relay.lua:1: kumo.define_spool: name "x" is not one of "data", "meta"`},
		{name: "log", src: `kumo.configure_log { path = "/l", max_file_size = 2097152, retain = "0s" }`,
			check: func(t *testing.T, c *config.Config) {
				if c.Log.Path != "/l" || c.Log.MaxFileSize != 2<<20 {
					t.Errorf("log = %+v", c.Log)
				}
			}},
		{name: "tenant", src: `kumo.define_tenant { name = "acme", max_message_rate = 600 }
			kumo.configure_tenant { name = "globex", max_message_rate = "2/s" }`,
			check: func(t *testing.T, c *config.Config) {
				if len(c.Tenants) != 2 || c.Tenant("acme").MaxMessageRate != (config.Rate{Count: 600, Per: time.Minute}) ||
					c.Tenant("globex").MaxMessageRate != (config.Rate{Count: 2, Per: time.Second}) {
					t.Errorf("tenants = %+v", c.Tenants)
				}
			}},
		{name: "init runs", src: `kumo.on("init", function()
				kumo.configure_queue { max_queue_depth = 7 }
			end)`,
			check: func(t *testing.T, c *config.Config) {
				if c.Queue.MaxQueueDepth != 7 {
					t.Errorf("max_queue_depth = %d, want 7 from the init handler", c.Queue.MaxQueueDepth)
				}
			}},
		{name: "init error line", src: "kumo.on('init', function()\n  kumo.configure_queue { nope = 1 }\nend)",
			err: `relay.lua:2: kumo.configure_queue: unknown key "nope"`},
		{name: "lua error", src: "local x = 1\nlocal y = x + nil", err: `relay.lua:2: `},
		{name: "syntax error", src: "\nkumo.configure_queue {", err: `relay.lua:2: `},
		{name: "error()", src: "\n\nerror('no tenants file')", err: `relay.lua:3: no tenants file`},
		{name: "no io", src: `io.open("x")`, err: `relay.lua:1: `},
		{name: "no os.execute", src: `os.execute("true")`, err: `relay.lua:1: `},
		{name: "no dofile", src: `dofile("x.lua")`, err: `relay.lua:1: `},
		{name: "no loadlib", src: `package.loadlib("x", "y")`, err: `relay.lua:1: `},
		{name: "require outside", src: `require("../etc/passwd")`, err: `relay.lua:1: require: "../etc/passwd" is not a module name`},
		{name: "string.rep bounded", src: `local s = string.rep("x", 1e10)`, err: `relay.lua:1: string.rep: result longer than`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Load(writeScript(t, tc.src))
			if tc.err == "" {
				if err != nil {
					t.Fatal(err)
				}
				tc.check(t, c)
				return
			}
			if err == nil {
				t.Fatalf("loaded; want an error %q", tc.err)
			}
			t.Log(err)
			msg := filepath.Base(err.Error())
			if !strings.HasPrefix(msg, tc.err) && !strings.Contains(err.Error(), "/"+tc.err) {
				t.Errorf("error = %q, want one starting %q", err, tc.err)
			}
		})
	}
}

// TestRequire: require loads a module from the script's directory, once.
func TestRequire(t *testing.T) {
	p := writeScript(t, `local l = require("limits.tenants")
local again = require("limits.tenants")
assert(l == again)
kumo.configure_queue { max_queue_depth = l.depth }`)
	dir := filepath.Join(filepath.Dir(p), "limits")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "tenants.lua"), []byte("return { depth = 42 }"), 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := Load(p)
	if err != nil {
		t.Fatal(err)
	}
	if c.Queue.MaxQueueDepth != 42 {
		t.Errorf("max_queue_depth = %d", c.Queue.MaxQueueDepth)
	}
}

// TestBudget: a script that loops forever fails to load within its budget.
func TestBudget(t *testing.T) {
	for _, src := range []string{"while true do end", "kumo.on('init', function() while true do end end)"} {
		start := time.Now()
		_, err := loadSource("relay.lua", []byte(src), 200*time.Millisecond)
		if err == nil || !strings.Contains(err.Error(), "ran past its load budget") {
			t.Errorf("%s: error = %v, want the budget's", src, err)
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("%s: took %v", src, d)
		}
	}
}

// TestErrorsType: load errors are config.Errors, as check-config prints them.
func TestErrorsType(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "missing.lua"))
	if _, ok := err.(config.Errors); !ok {
		t.Errorf("error %T, want config.Errors", err)
	}
}

// FuzzLoad: no script makes the loader panic or run past its budget.
func FuzzLoad(f *testing.F) {
	f.Add([]byte(`kumo.start_smtp_listener { listen = "127.0.0.1:25" }`))
	f.Add([]byte(`kumo.configure_queue { retry_interval = "5m", max_queue_depth = 10 }`))
	f.Add([]byte(`kumo.on("init", function() kumo.configure_tls { min_tls_version = "1.3" } end)`))
	f.Fuzz(func(t *testing.T, src []byte) {
		start := time.Now()
		_, _ = loadSource("fuzz.lua", src, 20*time.Millisecond)
		if d := time.Since(start); d > 2*time.Second {
			t.Fatalf("load took %v", d)
		}
	})
}

// TestKumoInit: a KumoMTA-style init.lua (require 'kumo', configuration
// inside kumo.on('init', …)) loads.
func TestKumoInit(t *testing.T) {
	s, err := LoadScript(filepath.Join("testdata", "kumo_init.lua"))
	if err != nil {
		t.Fatal(err)
	}
	c := s.Config
	if len(c.SMTPListeners) != 2 || c.SMTPListeners[1].Listen != "127.0.0.1:2526" || c.SMTPListeners[0].Hostname != "mta.example.test" {
		t.Errorf("smtp listeners = %+v", c.SMTPListeners)
	}
	if c.Spool.Path != "/var/spool/gannet-test/data" || c.Log.Path != "/var/log/gannet-test" {
		t.Errorf("spool %q, log %q", c.Spool.Path, c.Log.Path)
	}
	if !reflect.DeepEqual(s.Events, []string{"smtp_server_message_received"}) {
		t.Errorf("events = %q", s.Events)
	}
}
