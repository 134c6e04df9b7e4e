package engine

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"fmt"
	"math/big"
	"testing"
	"time"

	"gannet/engine/config"
	"gannet/engine/dane"
	"gannet/resolver"
	"gannet/resolver/dnstest"
)

// daneTestCert is a self-signed certificate for mx.secure.test.
func daneTestCert(t testing.TB) *x509.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "mx.secure.test"}, DNSNames: []string{"mx.secure.test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	return c
}

// daneTestEngine is an Engine with only what daneFor needs: a resolver
// that trusts the AD bit of the test server (which sets it for
// secure.test) and the configuration mod makes.
func daneTestEngine(t testing.TB, cert *x509.Certificate, mod func(*config.Config)) *Engine {
	t.Helper()
	sum := sha256.Sum256(cert.RawSubjectPublicKeyInfo)
	srv := dnstest.NewServer(t, fmt.Sprintf(`$ORIGIN test.
$TTL 300
@                    IN SOA  ns hostmaster 1 3600 600 86400 60
_25._tcp.mx.secure   IN TLSA 3 1 1 %[1]s
_25._tcp.mx.secure   IN TLSA 1 1 1 %[1]s
_25._tcp.mx.pkix     IN TLSA 1 1 1 %[1]s
_25._tcp.mx.insecure IN TLSA 3 1 1 %[1]s
`, hex.EncodeToString(sum[:])))
	srv.SetSecure("secure.test")
	srv.SetSecure("pkix.test")
	srv.SetSecure("mx.bogus.test")
	srv.Fail("_25._tcp.mx.bogus.test")
	cfg := config.Default()
	cfg.Resolver.DNSSEC = config.ResolverDNSSECTrustAD
	if mod != nil {
		mod(cfg)
	}
	r, err := resolver.New(resolver.Config{Nameservers: []string{srv.Addr}, TrustAD: cfg.Resolver.TrustAD(), Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	e := &Engine{cfg: cfg, resolver: new(liveResolver)}
	e.resolver.swap(r)
	p, err := buildPolicy(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	e.live.Store(p)
	return e
}

func TestDANEFor(t *testing.T) {
	cert := daneTestCert(t)
	ctx := context.Background()
	e := daneTestEngine(t, cert, nil)

	d := e.daneFor(ctx, "secure.test", resolver.Host{Name: "mx.secure.test"}, 25)
	if !d.Secure || d.Err != nil || len(d.Records) != 1 || d.Records[0].Usage != dane.UsageDANEEE {
		t.Fatalf("secure host: %+v (the PKIX-EE record must be dropped)", d)
	}
	if err := dane.Verify(d.Records, []*x509.Certificate{cert}, []string{"mx.secure.test"}, time.Now()); err != nil {
		t.Errorf("Verify: %v", err)
	}
	if d := e.daneFor(ctx, "pkix.test", resolver.Host{Name: "mx.pkix.test"}, 25); !d.Secure || len(d.Records) != 0 {
		t.Errorf("secure RRset of unusable records: %+v, want Secure without records", d)
	}
	if d := e.daneFor(ctx, "insecure.test", resolver.Host{Name: "mx.insecure.test"}, 25); d.Secure || d.Err != nil {
		t.Errorf("insecure TLSA: %+v, want no DANE", d)
	}
	if d := e.daneFor(ctx, "none.test", resolver.Host{Name: "mx.secure.test"}, 2525); d.Secure || d.Err != nil {
		t.Errorf("no TLSA on port 2525: %+v, want no DANE", d)
	}
	if d := e.daneFor(ctx, "bogus.test", resolver.Host{Name: "mx.bogus.test"}, 25); d.Err == nil {
		t.Errorf("SERVFAIL on TLSA: %+v, want an error", d)
	}

	// RFC 7672 §2.2.2: an alias's TLSA records at the end of its CNAME
	// chain first (that name then a reference identifier), else its own.
	d = e.daneFor(ctx, "alias.test", resolver.Host{Name: "mx.alias.test", CNAME: "mx.secure.test"}, 25)
	if !d.Secure || len(d.Records) != 1 || len(d.Names) != 1 || d.Names[0] != "mx.secure.test" {
		t.Errorf("alias with TLSA at its target: %+v", d)
	}
	d = e.daneFor(ctx, "secure.test", resolver.Host{Name: "mx.secure.test", CNAME: "target.secure.test"}, 25)
	if !d.Secure || len(d.Records) != 1 || len(d.Names) != 0 {
		t.Errorf("alias with TLSA at its own name only: %+v", d)
	}
	if d := e.daneFor(ctx, "bogus.test", resolver.Host{Name: "mx.secure.test", CNAME: "mx.bogus.test"}, 25); d.Err == nil {
		t.Errorf("SERVFAIL on the target's TLSA: %+v, want an error", d)
	}

	off := daneTestEngine(t, cert, func(c *config.Config) { c.TLS.DANE = false })
	if d := off.daneFor(ctx, "secure.test", resolver.Host{Name: "mx.secure.test"}, 25); d.Secure {
		t.Errorf("[tls] dane = false: %+v", d)
	}
	no := false
	dom := daneTestEngine(t, cert, func(c *config.Config) {
		c.TLSPolicies = map[string]config.TLSOverride{"secure.test": {DANE: &no}}
	})
	if d := dom.daneFor(ctx, "secure.test", resolver.Host{Name: "mx.secure.test"}, 25); d.Secure {
		t.Errorf("[tls_policy.\"secure.test\"] dane = false: %+v", d)
	}
	if d := dom.daneFor(ctx, "other.test", resolver.Host{Name: "mx.secure.test"}, 25); !d.Secure {
		t.Errorf("another domain on the same host: %+v, want DANE", d)
	}
	untrusted := daneTestEngine(t, cert, func(c *config.Config) { c.Resolver.DNSSEC = config.ResolverDNSSECOff })
	if d := untrusted.daneFor(ctx, "secure.test", resolver.Host{Name: "mx.secure.test"}, 25); d.Secure {
		t.Errorf("dnssec off: %+v", d)
	}
}

// BenchmarkDANEPerDelivery is what DANE adds to a delivery with a warm
// cache: the TLSA answer from the resolver's cache, the usable records
// picked out, and the certificate check done at the handshake.
func BenchmarkDANEPerDelivery(b *testing.B) {
	cert := daneTestCert(b)
	ctx := context.Background()
	e := daneTestEngine(b, cert, nil)
	chain := []*x509.Certificate{cert}
	names := []string{"mx.secure.test"}
	now := time.Now()
	e.daneFor(ctx, "secure.test", resolver.Host{Name: "mx.secure.test"}, 25) // warm the cache
	b.ReportAllocs()
	for b.Loop() {
		d := e.daneFor(ctx, "secure.test", resolver.Host{Name: "mx.secure.test"}, 25)
		if err := dane.Verify(d.Records, chain, names, now); err != nil {
			b.Fatal(err)
		}
	}
}
