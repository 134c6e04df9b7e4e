//go:build openssl && cgo

package dkim

import (
	"crypto/rand"
	"crypto/rsa"
	"testing"
)

// TestOpenSSLBuildSignsWithLibcrypto: in the openssl build an RSA key is
// used through libcrypto (the rest of this package's tests then check its
// signatures as they check crypto/rsa's).
func TestOpenSSLBuildSignsWithLibcrypto(t *testing.T) {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	s, err := checkKey(k, 1024)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := s.(*rsa.PrivateKey); ok || RSABackend != "openssl" {
		t.Errorf("the openssl build signs with %T (backend %q)", s, RSABackend)
	}
	if algorithm(s) != "rsa-sha256" {
		t.Errorf("a= %s", algorithm(s))
	}
}
