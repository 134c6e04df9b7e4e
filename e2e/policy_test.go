package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestPolicyScriptCheckConfig: `gannet check-config -config relay.lua`
// accepts the reference script of policy.md (its DKIM keys made by
// `gannet dkim-keygen`) and reports a bad script as relay.lua:LINE: and
// exit 1.
func TestPolicyScriptCheckConfig(t *testing.T) {
	bin := gannetBinary(t)
	root, err := repoRoot()
	if err != nil {
		t.Fatal(err)
	}
	src := readFile(t, filepath.Join(root, "engine", "policy", "lua", "testdata", "relay.lua"))
	dir := t.TempDir()
	keys := filepath.Join(dir, "keys")
	keygen(t, keys, "example.com", "mail", "ed25519")
	keygen(t, keys, "acme.example", "s1", "ed25519")
	run := func(script string) (string, int) {
		t.Helper()
		cmd := exec.Command(bin, "check-config", "-config", script)
		cmd.Dir = dir // key_file paths are relative to the working directory
		out, err := cmd.Output()
		if ee, ok := err.(*exec.ExitError); ok {
			return string(out), ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return string(out), 0
	}
	if err := os.WriteFile(filepath.Join(dir, "relay.lua"), src, 0o644); err != nil {
		t.Fatal(err)
	}
	if out, code := run("relay.lua"); code != 0 || out != "relay.lua: ok\n" {
		t.Errorf("reference script: exit %d, %q", code, out)
	}
	bad := strings.Replace(string(src), `name = "submission",`, `name = "submission", banner = "hello",`, 1)
	if err := os.WriteFile(filepath.Join(dir, "bad.lua"), []byte(bad), 0o644); err != nil {
		t.Fatal(err)
	}
	// The error is at the line of the key.
	line := strings.Count(bad[:strings.Index(bad, "banner = ")], "\n") + 1
	out, code := run("bad.lua")
	want := fmt.Sprintf("bad.lua:%d: kumo.start_smtp_listener: banner: is not implemented by Gannet yet\n", line)
	if code != 1 || out != want {
		t.Errorf("bad script: exit %d, %q, want %q", code, out, want)
	}
}
