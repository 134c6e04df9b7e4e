package config

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"

	"golang.org/x/crypto/bcrypt"
)

// Matches reports whether presented (the bearer token of a request) is this
// key. It compares in constant time, against the SHA-256 when only
// key_sha256 is configured.
func (k *APIKey) Matches(presented string) bool {
	if k.Key != "" {
		return subtle.ConstantTimeCompare([]byte(k.Key), []byte(presented)) == 1
	}
	want, err := hex.DecodeString(k.KeySHA256)
	if err != nil || len(want) != sha256.Size {
		return false
	}
	got := sha256.Sum256([]byte(presented))
	return subtle.ConstantTimeCompare(want, got[:]) == 1
}

// CheckPassword reports whether password is this user's: a constant-time
// comparison with password, or bcrypt against password_hash.
func (u *SMTPUser) CheckPassword(password string) bool {
	if u.Password != "" {
		return plainEqual(u.Password, password)
	}
	if u.PasswordHash != "" {
		return bcrypt.CompareHashAndPassword([]byte(u.PasswordHash), []byte(password)) == nil
	}
	return false
}

// plainEqual compares two passwords in constant time, whatever their
// lengths: subtle.ConstantTimeCompare returns at once on a length
// mismatch, which would tell a guesser the password's length, so the
// SHA-256 digests are compared instead.
func plainEqual(want, got string) bool {
	w, g := sha256.Sum256([]byte(want)), sha256.Sum256([]byte(got))
	return subtle.ConstantTimeCompare(w[:], g[:]) == 1
}

// Login checks an SMTP AUTH name and password against [[smtp_user]] and
// returns the account, or nil. How long it takes does not tell whether the
// name exists (issue #15, user enumeration): an unknown name is checked
// against loginDummy, a bcrypt hash as costly as the costliest
// password_hash, and a plain password is compared in constant time. Where
// both kinds of account are configured, a plain-password check pays the
// dummy bcrypt comparison too, so that every answer costs one bcrypt
// comparison.
func (c *Config) Login(name, password string) *SMTPUser {
	u := c.SMTPUser(name)
	if u == nil || u.PasswordHash == "" {
		c.dummyCheck(password)
	}
	if u == nil || !u.CheckPassword(password) {
		return nil
	}
	return u
}

// dummyCheck does the work of checking password against an account that
// does not exist: a bcrypt comparison with loginDummy when any account has
// a password_hash, else a plain comparison.
func (c *Config) dummyCheck(password string) {
	if c.loginDummy != nil {
		_ = bcrypt.CompareHashAndPassword(c.loginDummy, []byte(password))
		return
	}
	_ = plainEqual("", password)
}

// makeLoginDummy sets loginDummy to a bcrypt hash of a random password, at
// the highest cost of the accounts' password_hash values; nil when no
// account has one. Load and Default call it (through finish).
func (c *Config) makeLoginDummy() {
	cost := 0
	for _, u := range c.SMTPUsers {
		if k, err := bcrypt.Cost([]byte(u.PasswordHash)); err == nil {
			cost = max(cost, k)
		}
	}
	c.loginDummy = nil
	if cost == 0 {
		return
	}
	var pw [16]byte
	_, _ = rand.Read(pw[:])
	h, err := bcrypt.GenerateFromPassword([]byte(hex.EncodeToString(pw[:])), cost)
	if err == nil {
		c.loginDummy = h
	}
}

// APIKey returns the [[api_key]] that presented matches, or nil.
func (c *Config) APIKey(presented string) *APIKey {
	for i := range c.APIKeys {
		if c.APIKeys[i].Matches(presented) {
			return &c.APIKeys[i]
		}
	}
	return nil
}

// SMTPUser returns the [[smtp_user]] named name, or nil.
func (c *Config) SMTPUser(name string) *SMTPUser {
	for i := range c.SMTPUsers {
		if c.SMTPUsers[i].Name == name {
			return &c.SMTPUsers[i]
		}
	}
	return nil
}
