package dane

import (
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"encoding/hex"
	"fmt"
)

// Certificate usages (RFC 6698 §2.1.1, RFC 7218 mnemonics).
const (
	UsagePKIXTA = 0 // PKIX-TA: unusable for SMTP (RFC 7672 §3.1.3)
	UsagePKIXEE = 1 // PKIX-EE: unusable for SMTP (RFC 7672 §3.1.3)
	UsageDANETA = 2 // DANE-TA: a trust anchor in the server's chain (RFC 7672 §3.1.2)
	UsageDANEEE = 3 // DANE-EE: the server's own certificate or key (RFC 7672 §3.1.1)
)

// Selectors (RFC 6698 §2.1.2).
const (
	SelectorCert = 0 // the full certificate (DER)
	SelectorSPKI = 1 // the DER SubjectPublicKeyInfo
)

// Matching types (RFC 6698 §2.1.3).
const (
	MatchFull   = 0 // the selected content itself
	MatchSHA256 = 1 // its SHA-256 digest
	MatchSHA512 = 2 // its SHA-512 digest
)

// Record is one TLSA record (RFC 6698 §2.1): certificate usage, selector,
// matching type and the certificate association data (raw bytes, not hex).
type Record struct {
	Usage        uint8
	Selector     uint8
	MatchingType uint8
	Data         []byte
}

// String returns the record in presentation format ("3 1 1 ab12…").
func (r Record) String() string {
	return fmt.Sprintf("%d %d %d %s", r.Usage, r.Selector, r.MatchingType, hex.EncodeToString(r.Data))
}

// Usable reports whether r can authenticate an SMTP server: RFC 7672 §3.1
// keeps DANE-EE(3) and DANE-TA(2) and makes PKIX-TA(0) and PKIX-EE(1)
// unusable (§3.1.3); selectors other than 0/1 and matching types other
// than 0/1/2 are unknown and unusable (RFC 6698 §4.1, RFC 7671 §4), and so
// is a digest of the wrong length, which can never match.
func Usable(r Record) bool {
	if r.Usage != UsageDANEEE && r.Usage != UsageDANETA {
		return false
	}
	if r.Selector != SelectorCert && r.Selector != SelectorSPKI {
		return false
	}
	switch r.MatchingType {
	case MatchFull:
		return len(r.Data) > 0
	case MatchSHA256:
		return len(r.Data) == sha256.Size
	case MatchSHA512:
		return len(r.Data) == sha512.Size
	}
	return false
}

// UsableRecords returns the usable records of rs (a new slice; nil when
// none is usable).
func UsableRecords(rs []Record) []Record {
	var out []Record
	for _, r := range rs {
		if Usable(r) {
			out = append(out, r)
		}
	}
	return out
}

// Matches reports whether r's association data matches cert: the selected
// part of the certificate (all of it or its SubjectPublicKeyInfo), as is
// or hashed by the matching type (RFC 6698 §2.1.2, §2.1.3). It does not
// look at the usage.
func Matches(r Record, cert *x509.Certificate) bool {
	var content []byte
	switch r.Selector {
	case SelectorCert:
		content = cert.Raw
	case SelectorSPKI:
		content = cert.RawSubjectPublicKeyInfo
	default:
		return false
	}
	if len(content) == 0 {
		return false
	}
	switch r.MatchingType {
	case MatchFull:
		return string(content) == string(r.Data)
	case MatchSHA256:
		if len(r.Data) != sha256.Size {
			return false
		}
		sum := sha256.Sum256(content)
		return string(sum[:]) == string(r.Data)
	case MatchSHA512:
		if len(r.Data) != sha512.Size {
			return false
		}
		sum := sha512.Sum512(content)
		return string(sum[:]) == string(r.Data)
	}
	return false
}
