//go:build !openssl || !cgo

package dkim

import (
	"crypto"
	"crypto/rsa"
)

// fastRSA returns the signer used for an RSA key: crypto/rsa's (with the
// build tag openssl and cgo, libcrypto's: rsa_openssl.go).
func fastRSA(k *rsa.PrivateKey) crypto.Signer { return k }

// RSABackend names the RSA implementation DKIM signatures use.
const RSABackend = "go"
