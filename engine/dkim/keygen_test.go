package dkim

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// recordValue joins the quoted character-strings of a TXT record line, as
// DNS does for DKIM (RFC 6376 §3.6.2.2).
func recordValue(t *testing.T, record string) (name, value string) {
	t.Helper()
	m := regexp.MustCompile(`^(\S+)\. IN TXT((?: "[^"]{1,255}")+)$`).FindStringSubmatch(record)
	if m == nil {
		t.Fatalf("record %q is not `NAME. IN TXT \"…\" …` with strings of at most 255 bytes", record)
	}
	for _, s := range regexp.MustCompile(`"([^"]*)"`).FindAllStringSubmatch(m[2], -1) {
		value += s[1]
	}
	return m[1], value
}

func TestKeygen(t *testing.T) {
	for _, tc := range []struct {
		algo    string
		bits    int
		strings int
		prefix  string
	}{
		{"rsa", 0, 2, "v=DKIM1; k=rsa; p=MIIBIjAN"},
		{"rsa", 3072, 3, "v=DKIM1; k=rsa; p=MIIBojAN"},
		{"ed25519", 0, 1, "v=DKIM1; k=ed25519; p="},
	} {
		dir := filepath.Join(t.TempDir(), "keys")
		file, record, err := Keygen(KeygenOptions{Dir: dir, Domain: "Mail.Example", Selector: "s2026", Algo: tc.algo, Bits: tc.bits})
		if err != nil {
			t.Fatal(err)
		}
		if want := filepath.Join(dir, "s2026._domainkey.mail.example.pem"); file != want {
			t.Errorf("key file %s, want %s", file, want)
		}
		st, err := os.Stat(file)
		if err != nil || st.Mode().Perm() != 0o600 {
			t.Errorf("key file mode %v, %v; want 0600", st.Mode(), err)
		}
		name, value := recordValue(t, record)
		if name != "s2026._domainkey.mail.example" || !strings.HasPrefix(value, tc.prefix) {
			t.Errorf("record %q", record)
		}
		if n := strings.Count(record, `"`) / 2; n != tc.strings {
			t.Errorf("%s: %d strings in %q, want %d", tc.algo, n, record, tc.strings)
		}
		// The written key signs, and the printed record verifies it.
		s := newSigners(t, []KeyConfig{{Domain: "mail.example", Selector: "s2026", KeyFile: file}})
		signed := sign(t, s, []byte("From: a@mail.example\r\nSubject: hi\r\n\r\nbody\r\n"), "mail.example")
		if errs := verifyGo(t, signed, records{name: value}); len(errs) != 1 || errs[0] != nil {
			t.Errorf("%s: signature with the generated key: %v", tc.algo, errs)
		}
		if _, _, err := Keygen(KeygenOptions{Dir: dir, Domain: "mail.example", Selector: "s2026", Algo: tc.algo}); err == nil || !strings.Contains(err.Error(), "already exists") {
			t.Errorf("second keygen over the same file: %v", err)
		}
	}
}

func TestKeygenErrors(t *testing.T) {
	dir := t.TempDir()
	for _, o := range []KeygenOptions{
		{Dir: dir, Domain: "a.example", Selector: "s", Algo: "rsa", Bits: 1024},
		{Dir: dir, Domain: "a.example", Selector: "s", Algo: "dsa"},
		{Dir: dir, Domain: "a.example", Selector: "s", Algo: "ed25519", Bits: 2048},
		{Dir: dir, Domain: "bad domain", Selector: "s"},
		{Dir: dir, Domain: "a.example", Selector: ""},
	} {
		if _, _, err := Keygen(o); err == nil {
			t.Errorf("Keygen(%+v) succeeded", o)
		}
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Errorf("failed keygens left files: %v", ents)
	}
}
