package engine

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestLoadConfigPolicyScript: a TOML file's [policy] script is run over it,
// its calls overriding the values they name and leaving the others; a
// broken script fails the load at its own FILE:LINE.
func TestLoadConfigPolicyScript(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) string {
		t.Helper()
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	script := write("policy.lua", "kumo.configure_queue { max_queue_depth = 7 }\n")
	toml := write("gannet.toml", "[queue]\nmax_queue_depth = 5\nretry_interval = \"1m\"\n\n[policy]\nscript = \""+script+"\"\n")
	c, err := LoadConfig(toml)
	if err != nil {
		t.Fatal(err)
	}
	if c.Queue.MaxQueueDepth != 7 || c.Queue.RetryInterval.String() != "1m0s" || c.File != toml {
		t.Errorf("queue = %+v, file %q; want depth 7 from the script, retry 1m from the TOML, file the TOML's", c.Queue, c.File)
	}

	write("policy.lua", "\nkumo.configure_queue { max_queue_depth = 0 }\n")
	if _, err := LoadConfig(toml); err == nil || !strings.HasPrefix(err.Error(), script+":2: queue.max_queue_depth") {
		t.Errorf("error = %v, want %s:2: queue.max_queue_depth …", err, script)
	}

	bad := write("bad.toml", "[policy]\nscript = \"policy.py\"\n")
	if _, err := LoadConfig(bad); err == nil || !strings.Contains(err.Error(), bad+`:2: policy.script: "policy.py" is not a Lua file`) {
		t.Errorf("error = %v", err)
	}
}
