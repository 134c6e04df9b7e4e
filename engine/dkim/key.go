package dkim

import (
	"crypto"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"strings"
)

// MinRSABits is the smallest RSA key Gannet signs with. RFC 8301 §3.2 allows
// 1024 bits but receivers increasingly ignore such signatures; 2048 is what
// RFC 8301 recommends and what the large mailbox providers expect.
const MinRSABits = 2048

// Errors returned (wrapped, with the file name) by LoadKey and New.
var (
	// ErrWeakKey: an RSA key shorter than MinRSABits.
	ErrWeakKey = errors.New("RSA key too short")
	// ErrUnsupportedKey: the file holds a key DKIM cannot use (ECDSA, DSA,
	// an encrypted PEM block) or no private key at all.
	ErrUnsupportedKey = errors.New("unsupported or missing private key")
)

// LoadKey reads a DKIM private key file. Accepted forms:
//
//   - PEM "RSA PRIVATE KEY" (PKCS#1) or "PRIVATE KEY" (PKCS#8) RSA keys of at
//     least MinRSABits bits, signed as rsa-sha256;
//   - PEM "PRIVATE KEY" (PKCS#8) Ed25519 keys, signed as ed25519-sha256
//     (RFC 8463);
//   - a bare base64 Ed25519 seed (32 bytes) or seed+public key (64 bytes), as
//     some tools write (dkimpy's dknewkey, RFC 8463 Appendix A.1).
//
// Errors name the file.
func LoadKey(path string) (crypto.Signer, error) {
	return loadKey(path, MinRSABits)
}

func loadKey(path string, minRSABits int) (crypto.Signer, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("dkim: cannot read key file: %w", err)
	}
	k, err := parseKey(data, minRSABits)
	if err != nil {
		return nil, fmt.Errorf("dkim: key file %s: %w", path, err)
	}
	return k, nil
}

// parseKey decodes a key in one of the forms LoadKey accepts. PEM blocks
// that are not private keys (a certificate, "EC PARAMETERS") are skipped.
func parseKey(data []byte, minRSABits int) (crypto.Signer, error) {
	rest := data
	sawPEM := false
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		sawPEM = true
		if !strings.HasSuffix(block.Type, "PRIVATE KEY") {
			continue
		}
		if block.Type == "ENCRYPTED PRIVATE KEY" || block.Headers["Proc-Type"] != "" {
			return nil, fmt.Errorf("%w: the key is encrypted; store it unencrypted with mode 0600", ErrUnsupportedKey)
		}
		var key any
		var err error
		switch block.Type {
		case "RSA PRIVATE KEY":
			key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
		case "PRIVATE KEY":
			key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
		default:
			return nil, fmt.Errorf("%w: PEM block %q (DKIM keys are RSA or Ed25519)", ErrUnsupportedKey, block.Type)
		}
		if err != nil {
			return nil, fmt.Errorf("bad %s PEM block: %w", block.Type, err)
		}
		return checkKey(key, minRSABits)
	}
	if sawPEM {
		return nil, fmt.Errorf("%w: no PRIVATE KEY PEM block", ErrUnsupportedKey)
	}
	// Not PEM: a bare base64 Ed25519 seed.
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(data)))
	if err != nil {
		return nil, fmt.Errorf("%w: neither a PEM private key nor a base64 Ed25519 seed", ErrUnsupportedKey)
	}
	switch len(raw) {
	case ed25519.SeedSize:
		return ed25519.NewKeyFromSeed(raw), nil
	case ed25519.PrivateKeySize:
		k := ed25519.NewKeyFromSeed(raw[:ed25519.SeedSize])
		if !k.Public().(ed25519.PublicKey).Equal(ed25519.PublicKey(raw[ed25519.SeedSize:])) {
			return nil, fmt.Errorf("%w: Ed25519 seed and public key do not match", ErrUnsupportedKey)
		}
		return k, nil
	}
	return nil, fmt.Errorf("%w: base64 data of %d bytes is not an Ed25519 seed (32 bytes)", ErrUnsupportedKey, len(raw))
}

// checkKey accepts RSA keys of at least minRSABits bits and Ed25519 keys.
func checkKey(key any, minRSABits int) (crypto.Signer, error) {
	switch k := key.(type) {
	case *rsa.PrivateKey:
		if bits := k.N.BitLen(); bits < minRSABits {
			return nil, fmt.Errorf("%w: %d bits, at least %d required (RFC 8301)", ErrWeakKey, bits, minRSABits)
		}
		// The CRT values make a signature about 3× cheaper. x509's parsers
		// compute them already; this keeps it so for any other source.
		k.Precompute()
		return fastRSA(k), nil
	case ed25519.PrivateKey:
		return k, nil
	case *ed25519.PrivateKey:
		return *k, nil
	}
	return nil, fmt.Errorf("%w: %T (DKIM keys are RSA or Ed25519)", ErrUnsupportedKey, key)
}

// algorithm returns the "a=" tag value for a key LoadKey accepted.
func algorithm(k crypto.Signer) string {
	if _, ok := k.(ed25519.PrivateKey); ok {
		return "ed25519-sha256"
	}
	return "rsa-sha256"
}
