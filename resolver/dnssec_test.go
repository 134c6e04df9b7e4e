package resolver

import (
	"context"
	"testing"

	"github.com/miekg/dns"

	"gannet/resolver/dnstest"
)

// daneZone has a signed-looking subzone (secure.test, marked secure with
// SetSecure: the test server then sets the AD bit as a validating resolver
// would) and an insecure one.
const daneZone = `
$ORIGIN test.
$TTL 300
@              IN SOA ns.test. hostmaster.test. 1 3600 600 86400 60
secure         IN MX  10 mx.secure
mx.secure      IN A   127.0.8.1
_25._tcp.mx.secure IN TLSA 3 1 1 0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f20
_25._tcp.mx.secure IN TLSA 2 0 1 a102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f20
mixed          IN MX  10 mx.insecure
insecure       IN MX  10 mx.insecure
mx.insecure    IN A   127.0.8.2
aliased        IN MX  10 mx.aliased.secure
mx.aliased.secure IN CNAME real.secure
real.secure    IN A   127.0.8.3
_25._tcp.mx.insecure IN TLSA 3 1 1 0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f20
`

func newDANEServer(t *testing.T) *dnstest.Server {
	srv := dnstest.NewServer(t, daneZone)
	srv.SetSecure("secure.test")
	srv.SetSecure("mixed.test") // a secure MX RRset pointing at an insecure host
	srv.SetSecure("aliased.test")
	return srv
}

func trustAD(c *Config) { c.TrustAD = true }

func TestResolveSecureHosts(t *testing.T) {
	srv := newDANEServer(t)
	ctx := context.Background()
	for _, tc := range []struct {
		domain  string
		trust   bool
		secure  bool
		comment string
	}{
		{"secure.test", true, true, "MX and address answers all authentic"},
		{"secure.test", false, false, "AD bits not trusted"},
		{"insecure.test", true, false, "no AD bit"},
		{"mixed.test", true, false, "secure MX, insecure address"},
	} {
		var mods []func(*Config)
		if tc.trust {
			mods = append(mods, trustAD)
		}
		r, _ := newTestResolver(t, srv, mods...)
		rt, err := r.Resolve(ctx, tc.domain)
		if err != nil {
			t.Fatalf("%s: %v", tc.domain, err)
		}
		if got := rt.Hosts[0].Secure; got != tc.secure {
			t.Errorf("%s (trust %v, %s): Secure = %v, want %v", tc.domain, tc.trust, tc.comment, got, tc.secure)
		}
	}
}

// TestAuthenticOnlyWhenAsked: the test server sets AD only for queries
// that ask for DNSSEC (AD or DO), so a secure answer shows that the
// resolver asked.
// TestResolveHostCNAME: an MX host that is an alias carries the end of its
// CNAME chain, where RFC 7672 §2.2.2 looks for TLSA records first.
func TestResolveHostCNAME(t *testing.T) {
	srv := newDANEServer(t)
	r, _ := newTestResolver(t, srv, trustAD)
	rt, err := r.Resolve(context.Background(), "aliased.test")
	if err != nil {
		t.Fatal(err)
	}
	h := rt.Hosts[0]
	if h.Name != "mx.aliased.secure.test" || h.CNAME != "real.secure.test" || !h.Secure {
		t.Errorf("host %+v, want mx.aliased.secure.test with CNAME real.secure.test, secure", h)
	}
	rt, err = r.Resolve(context.Background(), "secure.test")
	if err != nil || rt.Hosts[0].CNAME != "" {
		t.Errorf("a host without alias: %+v, %v", rt, err)
	}
}

func TestAuthenticOnlyWhenAsked(t *testing.T) {
	srv := newDANEServer(t)
	r, _ := newTestResolver(t, srv, trustAD)
	res, err := r.LookupTLSA(context.Background(), "mx.secure.test", 25)
	if err != nil || !res.Secure {
		t.Fatalf("TLSA answer not secure: %+v, %v", res, err)
	}
}

func TestLookupTLSA(t *testing.T) {
	srv := newDANEServer(t)
	r, _ := newTestResolver(t, srv, trustAD)
	ctx := context.Background()

	res, err := r.LookupTLSA(ctx, "MX.Secure.test.", 25)
	if err != nil {
		t.Fatal(err)
	}
	if !res.Secure || len(res.Records) != 2 {
		t.Fatalf("secure TLSA: %+v", res)
	}
	if r0 := res.Records[0]; r0.Usage != 3 || r0.Selector != 1 || r0.MatchingType != 1 || len(r0.Data) != 32 || r0.Data[0] != 1 {
		t.Errorf("first record %+v", r0)
	}
	// Cached: no second query.
	if _, err := r.LookupTLSA(ctx, "mx.secure.test", 25); err != nil {
		t.Fatal(err)
	}
	if n := srv.QueryCount("_25._tcp.mx.secure.test", dns.TypeTLSA); n != 1 {
		t.Errorf("%d TLSA queries, want 1 (cached)", n)
	}

	res, err = r.LookupTLSA(ctx, "mx.insecure.test", 25)
	if err != nil || res.Secure || len(res.Records) != 1 {
		t.Fatalf("insecure TLSA: %+v, %v", res, err)
	}

	// NODATA and NXDOMAIN: no records, no error; secure when authentic.
	res, err = r.LookupTLSA(ctx, "absent.secure.test", 25)
	if err != nil || len(res.Records) != 0 || !res.Secure {
		t.Fatalf("absent TLSA: %+v, %v", res, err)
	}

	// SERVFAIL (a validating resolver's "bogus") is an error.
	srv.Fail("_25._tcp.mx.insecure.test")
	r2, _ := newTestResolver(t, srv, trustAD)
	if _, err := r2.LookupTLSA(ctx, "mx.insecure.test", 25); err == nil {
		t.Fatal("SERVFAIL gave no error")
	}
}
