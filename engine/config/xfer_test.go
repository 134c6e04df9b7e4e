package config

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestXferSecret: [xfer] secret_file's first line is the secret; a short
// secret, both keys, an empty or missing file are refused with the key
// named.
func TestXferSecret(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "xfer.secret")
	os.WriteFile(file, []byte("0123456789abcdef0123\nrest\n"), 0o600)
	empty := filepath.Join(dir, "empty")
	os.WriteFile(empty, []byte("\n"), 0o600)
	if c := mustParse(t, fmt.Sprintf("[xfer]\nsecret_file = %q\n", file)); c.Xfer.Key() != "0123456789abcdef0123" {
		t.Errorf("secret from the file = %q", c.Xfer.Key())
	}
	if c := mustParse(t, ""); c.Xfer.Key() != "" {
		t.Errorf("default secret %q, want none", c.Xfer.Key())
	}
	for _, c := range []struct{ src, want string }{
		{"secret = \"short\"\n", "xfer.secret: is 5 characters long; want at least 16"},
		{fmt.Sprintf("secret = \"0123456789abcdef\"\nsecret_file = %q\n", file), "xfer.secret_file: set secret or secret_file, not both"},
		{fmt.Sprintf("secret_file = %q\n", empty), "is empty (want the secret on its first line)"},
		{"secret_file = \"" + filepath.Join(dir, "missing") + "\"\n", "xfer.secret_file: cannot read"},
		{"[[smtp_user]]\nname = \"gannet-xfer\"\npassword = \"p\"\n", "is reserved for the nodes' handovers"},
	} {
		_, err := Parse("test.toml", []byte("[xfer]\n"+c.src))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: err %v, want %q", c.src, err, c.want)
		}
	}
}
