package dkim

import (
	"bytes"
	"crypto"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	msgauth "github.com/emersion/go-msgauth/dkim"
)

// sharedVectors returns the directory of the third-party DKIM vectors, read
// in place (GANNET_TESTDATA overrides /work/shared/testdata).
func sharedVectors(t testing.TB) string {
	t.Helper()
	root := os.Getenv("GANNET_TESTDATA")
	if root == "" {
		root = "/work/shared/testdata"
	}
	dir := filepath.Join(root, "dkim-vectors")
	if _, err := os.Stat(dir); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("DKIM vectors missing: %v", err)
		}
		t.Skipf("SKIPPING: DKIM vectors not found (%v); set GANNET_TESTDATA", err)
	}
	return dir
}

func readFile(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// testKey is one of the committed OpenSSL keys with its DNS record.
type testKey struct {
	file   string
	key    crypto.Signer
	record string // "v=DKIM1; k=…; p=…"
}

func loadTestKey(t testing.TB, name string) testKey {
	t.Helper()
	file := filepath.Join("testdata", name)
	k, err := LoadKey(file)
	if err != nil {
		t.Fatal(err)
	}
	rec, err := TXTValue(k.Public())
	if err != nil {
		t.Fatal(err)
	}
	return testKey{file: file, key: k, record: rec}
}

// records maps "<selector>._domainkey.<domain>" to a key record.
type records map[string]string

// verifyGo verifies every signature of msg with go-msgauth and returns one
// error (nil = pass) per signature.
func verifyGo(t testing.TB, msg []byte, recs records) []error {
	t.Helper()
	vs, err := msgauth.VerifyWithOptions(bytes.NewReader(msg), &msgauth.VerifyOptions{
		LookupTXT: func(name string) ([]string, error) {
			if r, ok := recs[strings.TrimSuffix(strings.ToLower(name), ".")]; ok {
				return []string{r}, nil
			}
			return nil, fmt.Errorf("test DNS: no TXT record for %s", name)
		},
	})
	if err != nil {
		t.Fatalf("go-msgauth Verify: %v", err)
	}
	errs := make([]error, len(vs))
	for i, v := range vs {
		errs[i] = v.Err
	}
	return errs
}

// pythonDKIM returns the interpreter that has Debian's python3-dkim, or
// skips (fails under CI=true).
func pythonDKIM(t testing.TB) string {
	t.Helper()
	const py = "/usr/bin/python3"
	if err := exec.Command(py, "-c", "import dkim").Run(); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("python3-dkim missing (%s -c 'import dkim': %v); apt-get install python3-dkim", py, err)
		}
		t.Skipf("SKIPPING: python3-dkim missing (%s -c 'import dkim': %v); apt-get install python3-dkim", py, err)
	}
	return py
}

// verifyPython runs testdata/verify.py (dkimpy) on msg and returns its
// output and whether every signature passed.
func verifyPython(t testing.TB, msg []byte, recs records) (string, bool) {
	t.Helper()
	out, ok := verifyPythonBatch(t, recs, [][]byte{msg})
	return out, ok[0]
}

// verifyPythonBatch checks many messages in one dkimpy run (a Python start
// costs more than the verification) and returns the output and, per
// message, whether all its signatures passed.
func verifyPythonBatch(t testing.TB, recs records, msgs [][]byte) (string, []bool) {
	t.Helper()
	py := pythonDKIM(t)
	dir := t.TempDir()
	args := []string{"testdata/verify.py"}
	for name, rec := range recs {
		args = append(args, name+"="+rec)
	}
	args = append(args, "--")
	files := make([]string, len(msgs))
	for i, msg := range msgs {
		files[i] = filepath.Join(dir, fmt.Sprintf("msg%d.eml", i))
		if err := os.WriteFile(files[i], msg, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	out, err := exec.Command(py, append(args, files...)...).CombinedOutput()
	if err != nil {
		if _, ok := err.(*exec.ExitError); !ok || strings.Contains(string(out), "Traceback") {
			t.Fatalf("verify.py: %v\n%s", err, out)
		}
	}
	ok := make([]bool, len(msgs))
	for i, f := range files {
		switch {
		case strings.Contains(string(out), "\n"+f+": pass\n") || strings.HasPrefix(string(out), f+": pass\n"):
			ok[i] = true
		case strings.Contains(string(out), f+": fail\n"):
		default:
			t.Fatalf("verify.py said nothing about %s:\n%s", f, out)
		}
	}
	return string(out), ok
}

// newSigners builds a Signers or fails the test.
func newSigners(t testing.TB, keys []KeyConfig, opts ...Option) *Signers {
	t.Helper()
	s, err := New(keys, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// sign returns msg with the signatures for domains prepended.
func sign(t testing.TB, s *Signers, msg []byte, domains ...string) []byte {
	t.Helper()
	sigs, err := s.Sign(msg, domains)
	if err != nil {
		t.Fatal(err)
	}
	return append(sigs, msg...)
}

// tagValue returns the value of tag in the first DKIM-Signature of msg,
// unfolded and without whitespace.
func tagValue(msg []byte, tag string) string {
	fs, _ := splitHeader(msg, nil)
	for _, f := range fs {
		if !f.Is("DKIM-Signature") {
			continue
		}
		v := string(f.Raw[bytes.IndexByte(f.Raw, ':')+1:])
		v = strings.NewReplacer("\r", "", "\n", "", "\t", "", " ", "").Replace(v)
		for _, kv := range strings.Split(v, ";") {
			if k, val, ok := strings.Cut(kv, "="); ok && k == tag {
				return val
			}
		}
	}
	return ""
}
