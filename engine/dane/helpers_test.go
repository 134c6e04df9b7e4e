package dane

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"testing"
	"time"
)

// testNow is the instant the tests verify at.
var testNow = time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)

// testCert makes a certificate for names, signed by parent (self-signed
// when parent is nil), valid from notBefore to notAfter.
type testCert struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
}

func makeCert(t testing.TB, parent *testCert, ca bool, notBefore, notAfter time.Time, names ...string) *testCert {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{SerialNumber: serial, NotBefore: notBefore, NotAfter: notAfter, DNSNames: names}
	if len(names) > 0 {
		tmpl.Subject = pkix.Name{CommonName: names[0]}
	} else {
		tmpl.Subject = pkix.Name{CommonName: "Test CA"}
	}
	if ca {
		tmpl.IsCA, tmpl.BasicConstraintsValid = true, true
		tmpl.KeyUsage = x509.KeyUsageCertSign
	} else {
		tmpl.KeyUsage = x509.KeyUsageDigitalSignature
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
	}
	signer, signerKey := tmpl, key
	if parent != nil {
		signer, signerKey = parent.cert, parent.key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, signer, &key.PublicKey, signerKey)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &testCert{cert: c, key: key}
}

// tlsa makes the TLSA record of usage for c with the selector and matching
// type given.
func tlsa(usage, selector, mtype uint8, c *x509.Certificate) Record {
	content := c.Raw
	if selector == SelectorSPKI {
		content = c.RawSubjectPublicKeyInfo
	}
	data := content
	switch mtype {
	case MatchSHA256:
		s := sha256.Sum256(content)
		data = s[:]
	case MatchSHA512:
		s := sha512.Sum512(content)
		data = s[:]
	}
	return Record{Usage: usage, Selector: selector, MatchingType: mtype, Data: append([]byte(nil), data...)}
}
