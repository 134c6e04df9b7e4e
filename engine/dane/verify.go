package dane

import (
	"crypto/x509"
	"errors"
	"strings"
	"time"
)

// The failures of Verify. Every error it returns wraps one of these.
var (
	// ErrNoUsableRecord: Verify was given no usable record (the caller
	// should not have asked; DANE authentication is impossible).
	ErrNoUsableRecord = errors.New("no usable TLSA record")
	// ErrNoCertificate: the server presented no certificate.
	ErrNoCertificate = errors.New("no certificate presented")
	// ErrNoMatch: no usable TLSA record matches the server's certificate
	// (DANE-EE) or any certificate of its chain (DANE-TA).
	ErrNoMatch = errors.New("no TLSA record matches the certificate")
	// ErrChain: a DANE-TA record matched a certificate of the chain, but
	// the server's certificate does not chain to it or has expired (RFC
	// 7672 §3.1.2 keeps the usual path validation below the trust anchor).
	ErrChain = errors.New("certificate does not chain to the DANE-TA trust anchor")
	// ErrName: a DANE-TA record matched and the chain is valid, but the
	// certificate is not for any of the reference names (RFC 7672 §3.2.2).
	ErrName = errors.New("certificate does not match the MX host name")
)

// Verify checks the chain a server presented (leaf first, as in
// tls.ConnectionState.PeerCertificates) against the TLSA records rs of its
// SMTP service. Unusable records in rs are ignored.
//
//   - DANE-EE(3) authenticates the server by its certificate or key alone:
//     a match with the leaf succeeds whatever names the certificate holds
//     and whatever its validity dates (RFC 7672 §3.1.1).
//   - DANE-TA(2) names a trust anchor that the server must include in its
//     chain (§3.1.2); the leaf must then chain to it (signatures and
//     validity dates checked; no extended key usage is required) and be
//     valid for one of names (§3.2.2: the MX host name, and the TLSA base
//     domain when CNAMEs led elsewhere), wildcards in the left-most label
//     only (§3.2.3).
//
// The error, when the chain is not authenticated, wraps ErrNoMatch,
// ErrChain, ErrName, ErrNoCertificate or ErrNoUsableRecord.
func Verify(rs []Record, chain []*x509.Certificate, names []string, now time.Time) error {
	if len(chain) == 0 || chain[0] == nil {
		return ErrNoCertificate
	}
	leaf := chain[0]
	usable, haveTA := 0, false
	for _, r := range rs {
		if !Usable(r) {
			continue
		}
		usable++
		if r.Usage == UsageDANEEE && Matches(r, leaf) {
			return nil
		}
		if r.Usage == UsageDANETA {
			haveTA = true
		}
	}
	if usable == 0 {
		return ErrNoUsableRecord
	}
	if !haveTA {
		return ErrNoMatch
	}
	var firstErr error
	for i, c := range chain {
		if c == nil || !matchesTA(rs, c) {
			continue
		}
		err := verifyBelow(chain, i, names, now)
		if err == nil {
			return nil
		}
		if firstErr == nil {
			firstErr = err
		}
	}
	if firstErr != nil {
		return firstErr
	}
	return ErrNoMatch
}

// matchesTA reports whether a usable DANE-TA record matches c.
func matchesTA(rs []Record, c *x509.Certificate) bool {
	for _, r := range rs {
		if r.Usage == UsageDANETA && Usable(r) && Matches(r, c) {
			return true
		}
	}
	return false
}

// verifyBelow checks that the leaf chains to chain[ta] (taken as the trust
// anchor, with the certificates between as intermediates) and carries one
// of names.
func verifyBelow(chain []*x509.Certificate, ta int, names []string, now time.Time) error {
	leaf := chain[0]
	if ta > 0 {
		roots := x509.NewCertPool()
		roots.AddCert(chain[ta])
		inter := x509.NewCertPool()
		for _, c := range chain[1:ta] {
			if c != nil {
				inter.AddCert(c)
			}
		}
		_, err := leaf.Verify(x509.VerifyOptions{
			Roots:         roots,
			Intermediates: inter,
			CurrentTime:   now,
			KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageAny},
		})
		if err != nil {
			return errors.Join(ErrChain, err)
		}
	} else if now.Before(leaf.NotBefore) || now.After(leaf.NotAfter) {
		// The leaf is itself the trust anchor: only its dates remain.
		return errors.Join(ErrChain, errors.New("certificate outside its validity period"))
	}
	for _, n := range names {
		n = strings.TrimSuffix(n, ".")
		if n != "" && leaf.VerifyHostname(n) == nil {
			return nil
		}
	}
	return ErrName
}
