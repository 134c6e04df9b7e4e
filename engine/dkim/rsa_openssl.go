//go:build openssl && cgo

package dkim

import (
	"crypto"
	"crypto/rsa"

	"gannet/engine/dkim/opensslrsa"
)

// fastRSA returns the signer used for an RSA key: OpenSSL's libcrypto
// (build tag openssl with cgo: `make build-openssl`), three to four times
// faster than crypto/rsa, with the same signatures.
func fastRSA(k *rsa.PrivateKey) crypto.Signer { return opensslrsa.New(k) }

// RSABackend names the RSA implementation DKIM signatures use.
const RSABackend = "openssl"
