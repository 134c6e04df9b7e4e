package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gannet/engine/dkim"
)

func TestDKIMKeygen(t *testing.T) {
	dir := t.TempDir()
	var stdout, stderr bytes.Buffer
	args := []string{"-domain", "example.test", "-selector", "mail", "-algo", "ed25519", "-out", dir}
	if st := cmdDKIMKeygen(args, &stdout, &stderr); st != 0 {
		t.Fatalf("exit %d: %s", st, stderr.String())
	}
	if !strings.HasPrefix(stdout.String(), `mail._domainkey.example.test. IN TXT "v=DKIM1; k=ed25519; p=`) {
		t.Errorf("stdout %q", stdout.String())
	}
	file := filepath.Join(dir, "mail._domainkey.example.test.pem")
	if _, err := dkim.LoadKey(file); err != nil {
		t.Errorf("written key: %v", err)
	}
	if !strings.Contains(stderr.String(), "key_file = \""+file+"\"") {
		t.Errorf("stderr lacks the config entry: %s", stderr.String())
	}
	// Never overwrites: a second run fails and leaves the key alone.
	before, _ := os.ReadFile(file)
	if st := cmdDKIMKeygen(args, &stdout, &stderr); st != 1 {
		t.Errorf("second run exit %d, want 1", st)
	}
	if after, _ := os.ReadFile(file); !bytes.Equal(before, after) {
		t.Error("key file overwritten")
	}
	for _, bad := range [][]string{
		{"-domain", "example.test"},
		{"-selector", "s"},
		{"-domain", "example.test", "-selector", "s", "extra"},
	} {
		if st := cmdDKIMKeygen(bad, &stdout, &stderr); st != 2 {
			t.Errorf("%v: exit %d, want 2", bad, st)
		}
	}
	if st := cmdDKIMKeygen([]string{"-domain", "example.test", "-selector", "s", "-bits", "1024", "-out", dir}, &stdout, &stderr); st != 1 {
		t.Errorf("1024-bit RSA: exit %d, want 1", st)
	}
}

// TestDKIMKeygenRegistered runs the command through the dispatch table, as
// "gannet dkim-keygen" does, for an RSA key, and checks that help lists it.
func TestDKIMKeygenRegistered(t *testing.T) {
	dir := t.TempDir()
	var stdout, stderr bytes.Buffer
	st := realMain([]string{"dkim-keygen", "-domain", "Example.Test", "-selector", "s1", "-algo", "rsa", "-out", dir}, &stdout, &stderr)
	if st != 0 {
		t.Fatalf("exit %d: %s", st, stderr.String())
	}
	if !strings.HasPrefix(stdout.String(), `s1._domainkey.example.test. IN TXT "v=DKIM1; k=rsa; p=MIIBIjAN`) {
		t.Errorf("stdout %q", stdout.String())
	}
	k, err := dkim.LoadKey(filepath.Join(dir, "s1._domainkey.example.test.pem"))
	if err != nil {
		t.Fatal(err)
	}
	if rec, _ := dkim.TXTRecord("example.test", "s1", k.Public()); strings.TrimSpace(stdout.String()) != rec {
		t.Errorf("printed record does not match the written key:\n%s\n%s", stdout.String(), rec)
	}
	stdout.Reset()
	realMain([]string{"help"}, &stdout, &stderr)
	if !strings.Contains(stdout.String(), "dkim-keygen") {
		t.Errorf("help does not list dkim-keygen:\n%s", stdout.String())
	}
}
