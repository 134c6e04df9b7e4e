package mtasts

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"
)

// addrDNS resolves every name to one address and has no TXT records.
type addrDNS struct{ addr netip.Addr }

func (d addrDNS) LookupTXT(context.Context, string) ([]string, error) { return nil, nil }
func (d addrDNS) LookupAddrs(context.Context, string) ([]netip.Addr, error) {
	return []netip.Addr{d.addr}, nil
}

// selfSigned returns a certificate for names and a pool trusting it.
func selfSigned(t *testing.T, names ...string) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: names[0]}, DNSNames: names,
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true, IsCA: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, pool
}

// TestFetch runs the fetch against a real HTTPS server on loopback: a good
// policy is parsed; redirects, other statuses and types, oversize bodies,
// certificates for other names, slow servers and bad files all fail.
func TestFetch(t *testing.T) {
	cert, pool := selfSigned(t, "mta-sts.a.test", "mta-sts.b.test", "mta-sts.c.test", "mta-sts.d.test", "mta-sts.e.test", "mta-sts.f.test")
	wrong, wrongPool := selfSigned(t, "other.test")
	pool.AddCert(wrong.Leaf)
	_ = wrongPool
	mux := http.NewServeMux()
	good := "version: STSv1\nmode: enforce\nmx: mx.a.test\nmax_age: 86400\n"
	mux.HandleFunc("/.well-known/mta-sts.txt", func(w http.ResponseWriter, r *http.Request) {
		switch strings.TrimSuffix(r.Host[:strings.IndexByte(r.Host+":", ':')], ".") {
		case "mta-sts.a.test":
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			w.Write([]byte(good))
		case "mta-sts.b.test":
			http.Redirect(w, r, "https://mta-sts.a.test/.well-known/mta-sts.txt", http.StatusFound)
		case "mta-sts.c.test":
			w.Header().Set("Content-Type", "text/html")
			w.Write([]byte(good))
		case "mta-sts.d.test":
			w.Header().Set("Content-Type", "text/plain")
			w.Write([]byte(good + strings.Repeat("x: y\n", MaxPolicySize/5)))
		case "mta-sts.e.test":
			time.Sleep(time.Second)
		case "mta-sts.f.test":
			w.Header().Set("Content-Type", "text/plain")
			w.Write([]byte("version: STSv1\n"))
		default:
			http.NotFound(w, r)
		}
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: mux, TLSConfig: &tls.Config{GetCertificate: func(h *tls.ClientHelloInfo) (*tls.Certificate, error) {
		if h.ServerName == "mta-sts.g.test" {
			return &wrong, nil
		}
		return &cert, nil
	}}, ErrorLog: log.New(io.Discard, "", 0)}
	go srv.ServeTLS(ln, "", "")
	t.Cleanup(func() { srv.Close() })
	ap := netip.MustParseAddrPort(ln.Addr().String())
	f := &Fetcher{Resolver: addrDNS{ap.Addr()}, RootCAs: pool, Port: int(ap.Port()), Timeout: 300 * time.Millisecond}
	ctx := context.Background()
	p, err := f.Fetch(ctx, "a.test")
	if err != nil || p.Mode != ModeEnforce || !p.Match("mx.a.test") {
		t.Fatalf("a.test: %+v, %v", p, err)
	}
	for domain, want := range map[string]string{
		"b.test": "HTTP status 302",
		"c.test": "Content-Type",
		"d.test": "larger than",
		"e.test": "deadline exceeded|timeout awaiting response headers",
		"g.test": "certificate", // served the certificate of other.test
	} {
		p, err := f.Fetch(ctx, domain)
		found := false
		for _, w := range strings.Split(want, "|") {
			found = found || err != nil && strings.Contains(err.Error(), w)
		}
		if !errors.Is(err, ErrFetch) || !found {
			t.Errorf("%s: %+v, %v; want ErrFetch with %q", domain, p, err, want)
		}
	}
	if _, err := f.Fetch(ctx, "f.test"); !errors.Is(err, ErrBadPolicy) {
		t.Errorf("f.test: %v, want ErrBadPolicy", err)
	}
	// The system roots alone do not trust the test certificate.
	f.RootCAs = nil
	if _, err := f.Fetch(ctx, "a.test"); !errors.Is(err, ErrFetch) {
		t.Errorf("untrusted certificate: %v", err)
	}
}
