// Package certs provides the TLS certificates of Gannet's listeners: a
// certificate pair loaded from PEM files and re-read when the files change, or
// a self-signed certificate generated at first start and kept in the data
// directory so that it stays the same across restarts.
package certs

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// Store serves one certificate pair to crypto/tls through GetCertificate. It
// checks the files' modification times at most once per CheckInterval and
// re-reads them when they changed; a broken new pair keeps the old one.
type Store struct {
	certFile, keyFile string
	// CheckInterval is how often the files are looked at again.
	CheckInterval time.Duration
	now           func() time.Time

	mu        sync.Mutex
	cert      *tls.Certificate
	certMod   time.Time
	keyMod    time.Time
	lastCheck time.Time
}

// Open returns a store for certFile and keyFile. When both are empty, it uses
// (and on the first start creates) a self-signed pair for hostname in dir:
// dir/selfsigned-cert.pem and dir/selfsigned-key.pem.
func Open(certFile, keyFile, dir, hostname string) (*Store, error) {
	if (certFile == "") != (keyFile == "") {
		return nil, errors.New("certs: tls_cert and tls_key must be given together")
	}
	if certFile == "" {
		certFile = filepath.Join(dir, "selfsigned-cert.pem")
		keyFile = filepath.Join(dir, "selfsigned-key.pem")
		if _, err := os.Stat(certFile); errors.Is(err, os.ErrNotExist) {
			if err := WriteSelfSigned(certFile, keyFile, hostname, time.Now()); err != nil {
				return nil, err
			}
		}
	}
	s := &Store{certFile: certFile, keyFile: keyFile, CheckInterval: 10 * time.Second, now: time.Now}
	if err := s.Reload(); err != nil {
		return nil, err
	}
	return s, nil
}

// Reload reads the pair again now (SIGHUP). On error the old pair stays.
func (s *Store) Reload() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.reloadLocked()
}

func (s *Store) reloadLocked() error {
	cs, err := os.Stat(s.certFile)
	if err != nil {
		return fmt.Errorf("tls_cert %s: %w", s.certFile, pathErr(err))
	}
	ks, err := os.Stat(s.keyFile)
	if err != nil {
		return fmt.Errorf("tls_key %s: %w", s.keyFile, pathErr(err))
	}
	pair, err := tls.LoadX509KeyPair(s.certFile, s.keyFile)
	if err != nil {
		return fmt.Errorf("tls_cert %s and tls_key %s: %w", s.certFile, s.keyFile, err)
	}
	s.cert = &pair
	s.certMod, s.keyMod = cs.ModTime(), ks.ModTime()
	s.lastCheck = s.now()
	return nil
}

// Leaf returns the certificate served now (the first of the chain).
func (s *Store) Leaf() *x509.Certificate {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cert == nil || len(s.cert.Certificate) == 0 {
		return nil
	}
	if s.cert.Leaf != nil {
		return s.cert.Leaf
	}
	leaf, err := x509.ParseCertificate(s.cert.Certificate[0])
	if err != nil {
		return nil
	}
	return leaf
}

// NotAfter returns when the certificate served now expires (zero when
// there is none), for gannet_tls_certificate_expiry_timestamp_seconds. It
// follows the re-reads of GetCertificate.
func (s *Store) NotAfter() time.Time {
	if leaf := s.Leaf(); leaf != nil {
		return leaf.NotAfter
	}
	return time.Time{}
}

// Problems lists what is wrong with a listener's certificate, in words
// for the log: it has expired, or expires within warnBefore, or does not
// cover hostname (the listener's name, checked as a client would, RFC
// 6125 §6: DNS names of the subjectAltName, wildcards for one label).
// hostname "" is not checked.
func Problems(leaf *x509.Certificate, hostname string, now time.Time, warnBefore time.Duration) []string {
	if leaf == nil {
		return []string{"no certificate"}
	}
	var out []string
	switch left := leaf.NotAfter.Sub(now); {
	case left <= 0:
		out = append(out, fmt.Sprintf("expired on %s", leaf.NotAfter.UTC().Format(time.RFC3339)))
	case left < warnBefore:
		out = append(out, fmt.Sprintf("expires on %s, in %s", leaf.NotAfter.UTC().Format(time.RFC3339), left.Round(time.Minute)))
	}
	if hostname != "" {
		if err := leaf.VerifyHostname(hostname); err != nil {
			out = append(out, fmt.Sprintf("does not cover the hostname %q (it names %v)", hostname, leaf.DNSNames))
		}
	}
	return out
}

// GetCertificate implements tls.Config.GetCertificate.
func (s *Store) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if now := s.now(); now.Sub(s.lastCheck) >= s.CheckInterval {
		s.lastCheck = now
		cs, err1 := os.Stat(s.certFile)
		ks, err2 := os.Stat(s.keyFile)
		if err1 == nil && err2 == nil && (!cs.ModTime().Equal(s.certMod) || !ks.ModTime().Equal(s.keyMod)) {
			_ = s.reloadLocked() // keep serving the old pair when the new one is broken
		}
	}
	return s.cert, nil
}

// TLSConfig returns a server configuration serving this store's certificate
// with the given minimum version.
func (s *Store) TLSConfig(minVersion uint16) *tls.Config {
	return &tls.Config{GetCertificate: s.GetCertificate, MinVersion: minVersion}
}

// WriteSelfSigned creates an ECDSA P-256 certificate for hostname (and
// localhost, 127.0.0.1, ::1), valid for ten years from now, and writes it and
// its key as PEM files (the key readable by the owner only).
func WriteSelfSigned(certFile, keyFile, hostname string, now time.Time) error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return err
	}
	if hostname == "" {
		hostname = "localhost"
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: hostname, Organization: []string{"Gannet self-signed"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.AddDate(10, 0, 0),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		DNSNames:              []string{hostname, "localhost"},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(certFile), 0o755); err != nil {
		return err
	}
	if err := writeAtomic(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		return err
	}
	return writeAtomic(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
}

func writeAtomic(path string, data []byte, mode os.FileMode) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, mode); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// pathErr returns the cause of a file error without the operation and path,
// which the caller names itself: "no such file or directory".
func pathErr(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
