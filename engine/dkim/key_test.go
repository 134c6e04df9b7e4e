package dkim

import (
	"crypto/ed25519"
	"crypto/rsa"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestLoadKeyForms(t *testing.T) {
	dir := t.TempDir()
	seed := make([]byte, 32)
	for i := range seed {
		seed[i] = byte(i)
	}
	edFull := ed25519.NewKeyFromSeed(seed)
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	for _, tc := range []struct {
		file, algo string
		bits       int
	}{
		{"testdata/rsa2048-pkcs1.pem", "rsa-sha256", 2048},
		{"testdata/rsa2048-pkcs8.pem", "rsa-sha256", 2048},
		{"testdata/ed25519-pkcs8.pem", "ed25519-sha256", 0},
		{write("seed32.b64", base64.StdEncoding.EncodeToString(seed)+"\n"), "ed25519-sha256", 0},
		{write("seed64.b64", base64.StdEncoding.EncodeToString(edFull)), "ed25519-sha256", 0},
		// A certificate before the key is skipped.
		{write("with-cert.pem", "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"+
			string(readFile(t, "testdata/ed25519-pkcs8.pem"))), "ed25519-sha256", 0},
	} {
		k, err := LoadKey(tc.file)
		if err != nil {
			t.Errorf("%s: %v", tc.file, err)
			continue
		}
		if got := algorithm(k); got != tc.algo {
			t.Errorf("%s: algorithm %s, want %s", tc.file, got, tc.algo)
		}
		if r, ok := k.(*rsa.PrivateKey); ok && r.N.BitLen() != tc.bits {
			t.Errorf("%s: %d bits", tc.file, r.N.BitLen())
		}
		// Signing uses the CRT values (rsa.PrivateKey.Precompute).
		if r, ok := k.(*rsa.PrivateKey); ok && (r.Precomputed.Dp == nil || r.Precomputed.Dq == nil || r.Precomputed.Qinv == nil) {
			t.Errorf("%s: no precomputed CRT values", tc.file)
		}
	}
	k, _ := LoadKey(filepath.Join(dir, "seed32.b64"))
	if !k.(ed25519.PrivateKey).Equal(edFull) {
		t.Error("seed file gives a different key")
	}
}

func TestLoadKeyErrors(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	unreadable := write("unreadable.pem", string(readFile(t, "testdata/ed25519-pkcs8.pem")))
	os.Chmod(unreadable, 0)
	encrypted := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Headers: map[string]string{
		"Proc-Type": "4,ENCRYPTED", "DEK-Info": "AES-128-CBC,00000000000000000000000000000000"}, Bytes: []byte{1, 2, 3}})
	for _, tc := range []struct {
		file, substr string
		is           error
	}{
		{filepath.Join(dir, "missing.pem"), "no such file", os.ErrNotExist},
		{"testdata/rsa1024.pem", "1024 bits, at least 2048", ErrWeakKey},
		{"testdata/ec-p256.pem", "ecdsa", ErrUnsupportedKey},
		{write("garbage.pem", "hello world"), "neither a PEM private key nor a base64 Ed25519 seed", ErrUnsupportedKey},
		{write("short.b64", base64.StdEncoding.EncodeToString([]byte("short"))), "not an Ed25519 seed", ErrUnsupportedKey},
		{write("cert-only.pem", "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"), "no PRIVATE KEY", ErrUnsupportedKey},
		{write("encrypted.pem", string(encrypted)), "encrypted", ErrUnsupportedKey},
		{write("encrypted8.pem", "-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n"), "encrypted", ErrUnsupportedKey},
		{write("corrupt.pem", "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"), "bad PRIVATE KEY PEM block", nil},
	} {
		_, err := LoadKey(tc.file)
		if err == nil {
			if tc.file == unreadable { // root reads anything
				continue
			}
			t.Errorf("%s: no error", tc.file)
			continue
		}
		if !strings.Contains(err.Error(), tc.file) || !strings.Contains(err.Error(), tc.substr) {
			t.Errorf("%s: error %q should name the file and say %q", tc.file, err, tc.substr)
		}
		if tc.is != nil && !errors.Is(err, tc.is) {
			t.Errorf("%s: error %q is not %v", tc.file, err, tc.is)
		}
	}
	if os.Getuid() != 0 {
		if _, err := LoadKey(unreadable); err == nil || !errors.Is(err, os.ErrPermission) {
			t.Errorf("unreadable file: %v", err)
		}
	}
}
