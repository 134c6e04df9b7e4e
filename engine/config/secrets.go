package config

import (
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
		return subtle.ConstantTimeCompare([]byte(u.Password), []byte(password)) == 1
	}
	if u.PasswordHash != "" {
		return bcrypt.CompareHashAndPassword([]byte(u.PasswordHash), []byte(password)) == nil
	}
	return false
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
