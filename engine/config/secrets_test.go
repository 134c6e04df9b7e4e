package config

import (
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"
)

// bcryptHash hashes password at cost for a test config.
func bcryptHash(t *testing.T, password string, cost int) string {
	t.Helper()
	h, err := bcrypt.GenerateFromPassword([]byte(password), cost)
	if err != nil {
		t.Fatal(err)
	}
	return string(h)
}

// TestLoginComparesUnknownNames: Login checks the password of a name that
// does not exist against a dummy bcrypt hash as costly as the costliest
// configured password_hash (so the answer takes as long as a wrong
// password would: issue #15, user enumeration by timing), and still tells
// right from wrong for every kind of account.
func TestLoginComparesUnknownNames(t *testing.T) {
	c := mustParse(t, `
[[smtp_user]]
name = "plain"
password = "p1"

[[smtp_user]]
name = "cheap"
password_hash = '`+bcryptHash(t, "c1", 4)+`'

[[smtp_user]]
name = "dear"
password_hash = '`+bcryptHash(t, "d1", 6)+`'
`)
	if cost, err := bcrypt.Cost(c.loginDummy); err != nil || cost != 6 {
		t.Fatalf("dummy hash cost %d (%v), want 6, the costliest password_hash", cost, err)
	}
	for _, tc := range []struct {
		name, password string
		ok             bool
	}{
		{"plain", "p1", true}, {"plain", "p", false}, {"plain", "p1p1", false}, {"plain", "", false},
		{"cheap", "c1", true}, {"cheap", "d1", false},
		{"dear", "d1", true}, {"dear", "x", false},
		{"nobody", "p1", false}, {"nobody", "", false}, {"", "", false},
	} {
		if u := c.Login(tc.name, tc.password); (u != nil) != tc.ok || u != nil && u.Name != tc.name {
			t.Errorf("Login(%q, %q) = %v, want ok=%v", tc.name, tc.password, u, tc.ok)
		}
	}
	// Without any password_hash there is nothing costly to imitate: an
	// unknown name gets the plain comparison.
	c = mustParse(t, "[[smtp_user]]\nname = \"plain\"\npassword = \"p1\"\n")
	if c.loginDummy != nil || c.Login("nobody", "p1") != nil || c.Login("plain", "p1") == nil {
		t.Fatal("plain-only accounts")
	}
}

// TestPlainEqual: the constant-time comparison of plain passwords does not
// depend on their lengths being equal, and is exact.
func TestPlainEqual(t *testing.T) {
	long := strings.Repeat("s", 200)
	for _, tc := range []struct {
		want, got string
		ok        bool
	}{
		{"secret", "secret", true}, {"secret", "secre", false}, {"secret", "secret!", false},
		{"secret", "Secret", false}, {long, long, true}, {long, long[1:], false}, {"", "", true},
	} {
		if plainEqual(tc.want, tc.got) != tc.ok {
			t.Errorf("plainEqual(%q, %q) != %v", tc.want, tc.got, tc.ok)
		}
	}
}
