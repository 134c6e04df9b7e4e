// Package opensslrsa signs with RSA keys on OpenSSL's libcrypto, for
// engine/dkim in `make build-openssl` (build tag openssl, cgo, Debian's
// libssl-dev): RSASSA-PKCS1-v1_5 over SHA-256 (RFC 8017 §8.2, RFC 6376
// §3.3.1) through EVP_PKEY_sign, three to four times faster than
// crypto/rsa on the machines measured (README, "Faster RSA signing").
//
// PKCS #1 v1.5 signatures are deterministic, so this signer's bytes equal
// crypto/rsa's for the same key and digest: opensslrsa_test.go checks that
// for keys of several sizes. Without the tag the package is empty and
// engine/dkim signs with crypto/rsa.
//
// It lives apart from engine/dkim because a package that uses cgo may not
// hold Go assembly (engine/dkim's scan_amd64.s).
package opensslrsa
