package dkim

import (
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// GenerateKey makes a new signing key: algo "rsa" (bits 0 means 2048; fewer
// than MinRSABits or more than 8192 is refused) or "ed25519" (bits must be 0).
func GenerateKey(algo string, bits int) (crypto.Signer, error) {
	switch strings.ToLower(algo) {
	case "rsa":
		if bits == 0 {
			bits = MinRSABits
		}
		if bits < MinRSABits || bits > 8192 {
			return nil, fmt.Errorf("dkim: RSA key size %d: use %d to 8192 bits", bits, MinRSABits)
		}
		return rsa.GenerateKey(rand.Reader, bits)
	case "ed25519":
		if bits != 0 && bits != 256 {
			return nil, fmt.Errorf("dkim: Ed25519 keys have no size option (got %d bits)", bits)
		}
		_, k, err := ed25519.GenerateKey(rand.Reader)
		return k, err
	}
	return nil, fmt.Errorf("dkim: unknown key algorithm %q (rsa or ed25519)", algo)
}

// MarshalKey returns key as a PKCS#8 "PRIVATE KEY" PEM block, the form
// LoadKey reads for both algorithms.
func MarshalKey(key crypto.Signer) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("dkim: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// RecordName returns the DNS name a key is published under (RFC 6376 §3.6.2.1):
// "<selector>._domainkey.<domain>".
func RecordName(domain, selector string) string {
	return selector + "._domainkey." + normDomain(domain)
}

// KeyFileName is the file name dkim-keygen writes a key to:
// "<selector>._domainkey.<domain>.pem".
func KeyFileName(domain, selector string) string {
	return RecordName(domain, selector) + ".pem"
}

// TXTValue returns the key record (RFC 6376 §3.6.1) for pub as one string:
// "v=DKIM1; k=rsa; p=<base64 SubjectPublicKeyInfo>" or, for Ed25519
// (RFC 8463 §4.2), "v=DKIM1; k=ed25519; p=<base64 of the 32-byte key>".
func TXTValue(pub crypto.PublicKey) (string, error) {
	switch p := pub.(type) {
	case *rsa.PublicKey:
		der, err := x509.MarshalPKIXPublicKey(p)
		if err != nil {
			return "", fmt.Errorf("dkim: %w", err)
		}
		return "v=DKIM1; k=rsa; p=" + base64.StdEncoding.EncodeToString(der), nil
	case ed25519.PublicKey:
		return "v=DKIM1; k=ed25519; p=" + base64.StdEncoding.EncodeToString(p), nil
	}
	return "", fmt.Errorf("dkim: %w: %T", ErrUnsupportedKey, pub)
}

// TXTRecord returns the zone-file line to publish for a key:
//
//	<selector>._domainkey.<domain>. IN TXT "v=DKIM1; k=rsa; p=…" "…"
//
// The value is split into quoted character-strings of at most 255 bytes
// (RFC 1035 §3.3.14), which DNS joins again (RFC 6376 §3.6.2.2): a 2048-bit
// RSA key needs two.
func TXTRecord(domain, selector string, pub crypto.PublicKey) (string, error) {
	v, err := TXTValue(pub)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	b.WriteString(RecordName(domain, selector))
	b.WriteString(". IN TXT")
	for len(v) > 0 {
		n := min(255, len(v))
		b.WriteString(` "`)
		b.WriteString(v[:n])
		b.WriteByte('"')
		v = v[n:]
	}
	return b.String(), nil
}

// KeygenOptions are the dkim-keygen flags.
type KeygenOptions struct {
	Dir      string // where the key file goes; created (0700) if missing
	Domain   string
	Selector string
	Algo     string // "rsa" (default) or "ed25519"
	Bits     int    // RSA only; 0 = 2048
}

// Keygen makes a key pair, writes the private key to
// Dir/<selector>._domainkey.<domain>.pem (mode 0600; an existing file is
// never overwritten, so a live key cannot be lost) and returns that path and
// the TXT record to publish.
func Keygen(o KeygenOptions) (keyFile, record string, err error) {
	domain := normDomain(o.Domain)
	if !validDNSName(domain) {
		return "", "", fmt.Errorf("dkim: domain %q is not a domain name", o.Domain)
	}
	if !validDNSName(o.Selector) {
		return "", "", fmt.Errorf("dkim: selector %q is not a DNS label sequence", o.Selector)
	}
	algo := o.Algo
	if algo == "" {
		algo = "rsa"
	}
	key, err := GenerateKey(algo, o.Bits)
	if err != nil {
		return "", "", err
	}
	record, err = TXTRecord(domain, o.Selector, key.Public())
	if err != nil {
		return "", "", err
	}
	pemBytes, err := MarshalKey(key)
	if err != nil {
		return "", "", err
	}
	dir := o.Dir
	if dir == "" {
		dir = "."
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", "", fmt.Errorf("dkim: %w", err)
	}
	keyFile = filepath.Join(dir, KeyFileName(domain, o.Selector))
	f, err := os.OpenFile(keyFile, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		if errors.Is(err, os.ErrExist) {
			return "", "", fmt.Errorf("dkim: %s already exists; not overwriting a key (remove it or pick another selector)", keyFile)
		}
		return "", "", fmt.Errorf("dkim: %w", err)
	}
	_, err = f.Write(pemBytes)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(keyFile)
		return "", "", fmt.Errorf("dkim: writing %s: %w", keyFile, err)
	}
	return keyFile, record, nil
}
