package config

import "testing"

func TestLineIndex(t *testing.T) {
	src := `# comment
[spool]
path = "x"
[resolver]
nameservers = [
  "127.0.0.1",  # a comment with ] and [
  "127.0.0.2",
]
[meta]
tenant_header = """
priority_header = 3
"""
"campaign_header" = "X-C"
[[smtp_listener]]
listen = "127.0.0.1:1"
[[smtp_listener]]
listen = "127.0.0.1:2"
[[egress_pool]]
name = "p"
[[egress_pool.sources]]
name = "s"
[shaping."gmail.com"]
connection_limit = 1
[tls_policy]
"example.com" = { mode = "required" }
`
	c, tmpl := Base()
	es, ix := decode("f", []byte(src), c, &tmpl)
	if len(es) > 0 {
		t.Fatal(es)
	}
	for _, tt := range []struct {
		path []string
		want int
	}{
		{at("spool"), 2},
		{at("spool", "path"), 3},
		{at("resolver", "nameservers"), 5},
		{at("meta", "tenant_header"), 10},
		{at("meta", "priority_header"), 9}, // inside a string: not a key; falls back to [meta]
		{at("meta", "campaign_header"), 13},
		{at("smtp_listener", 0), 14},
		{at("smtp_listener", 0, "listen"), 15},
		{at("smtp_listener", 1, "listen"), 17},
		{at("smtp_listener", 1, "name"), 16},
		{at("egress_pool", 0, "sources", 0, "name"), 21},
		{at("shaping", "gmail.com", "connection_limit"), 23},
		{at("shaping", "Gmail.COM", "connection_limit"), 23},
		{at("tls_policy", "example.com", "mode"), 25},
		{at("nope"), 0},
	} {
		if got := ix.line(tt.path); got != tt.want {
			t.Errorf("line(%s) = %d, want %d", displayPath(tt.path), got, tt.want)
		}
	}
}

// FuzzParse feeds arbitrary text to the loader: it must return a config or
// errors, never panic, and every error must name the file.
func FuzzParse(f *testing.F) {
	f.Add([]byte("[spool]\npath = \"x\"\n"))
	f.Add([]byte("[[smtp_listener]]\nlisten = \"127.0.0.1:1\"\nmax_message_size = \"1MiB\"\n"))
	f.Add([]byte("a = [\n'''\n]\n'''\n]\n[shaping.\"x\"]\nconnection_limit = 0\n"))
	f.Add(defaultTOMLForFuzz())
	f.Fuzz(func(t *testing.T, src []byte) {
		c, err := Parse("f.toml", src)
		if err == nil && c == nil {
			t.Fatal("nil config and nil error")
		}
		if err != nil {
			for _, e := range err.(Errors) {
				if e.File != "f.toml" {
					t.Fatalf("error without file: %v", e)
				}
			}
		}
	})
}

func defaultTOMLForFuzz() []byte { return DefaultTOML() }
