package resolver

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"gannet/resolver/dnstest"
)

func hostNames(rt *Route) []string {
	var n []string
	for _, h := range rt.Hosts {
		n = append(n, h.Name)
	}
	return n
}

func addrs(ss ...string) []netip.Addr {
	var a []netip.Addr
	for _, s := range ss {
		a = append(a, netip.MustParseAddr(s))
	}
	return a
}

func TestResolveSortsByPreference(t *testing.T) {
	srv := newTestServer(t)
	r, _ := newTestResolver(t, srv)
	rt, err := r.Resolve(context.Background(), "sorted.test")
	if err != nil {
		t.Fatal(err)
	}
	want := []Host{
		{Name: "mx-a.sorted.test", Pref: 10, Addrs: addrs("127.0.0.2")},
		{Name: "mx-b.sorted.test", Pref: 20, Addrs: addrs("127.0.0.3")},
		{Name: "mx-c.sorted.test", Pref: 30, Addrs: addrs("127.0.0.4")},
	}
	if !slices.EqualFunc(rt.Hosts, want, func(a, b Host) bool {
		return a.Name == b.Name && a.Pref == b.Pref && slices.Equal(a.Addrs, b.Addrs)
	}) {
		t.Fatalf("hosts = %+v, want %+v", rt.Hosts, want)
	}
	if rt.Domain != "sorted.test" || rt.Implicit || rt.Literal {
		t.Fatalf("route = %+v", rt)
	}
	if rt.Site.String() != "mx-a.sorted.test,mx-b.sorted.test,mx-c.sorted.test" {
		t.Fatalf("site = %q", rt.Site)
	}
}

func TestResolveShufflesEqualPreference(t *testing.T) {
	srv := newTestServer(t)
	r, _ := newTestResolver(t, srv, func(c *Config) { c.Rand = rand.NewPCG(1, 2) })
	seen := map[string]int{}
	for i := 0; i < 200 && len(seen) < 2; i++ {
		rt, err := r.Resolve(context.Background(), "equal.test")
		if err != nil {
			t.Fatal(err)
		}
		names := hostNames(rt)
		if len(names) != 3 || names[2] != "backup.equal.test" {
			t.Fatalf("hosts = %v: the preference-20 host must stay last", names)
		}
		seen[strings.Join(names[:2], " ")]++
	}
	if seen["one.equal.test two.equal.test"] == 0 || seen["two.equal.test one.equal.test"] == 0 {
		t.Fatalf("equal-preference hosts were not shuffled: %v", seen)
	}
	// The same seed gives the same orders: the source is really injected.
	orders := func() []string {
		r2, _ := newTestResolver(t, srv, func(c *Config) { c.Rand = rand.NewPCG(7, 7) })
		var o []string
		for range 10 {
			rt, err := r2.Resolve(context.Background(), "equal.test")
			if err != nil {
				t.Fatal(err)
			}
			o = append(o, hostNames(rt)[0])
		}
		return o
	}
	if a, b := orders(), orders(); !slices.Equal(a, b) {
		t.Fatalf("same seed, different orders: %v vs %v", a, b)
	}
}

func TestResolveCallerOwnsRoute(t *testing.T) {
	srv := newTestServer(t)
	r, _ := newTestResolver(t, srv)
	rt, err := r.Resolve(context.Background(), "sorted.test")
	if err != nil {
		t.Fatal(err)
	}
	rt.Hosts[0].Name = "changed"
	rt.Hosts = rt.Hosts[:1]
	rt2, err := r.Resolve(context.Background(), "sorted.test")
	if err != nil {
		t.Fatal(err)
	}
	if len(rt2.Hosts) != 3 || rt2.Hosts[0].Name != "mx-a.sorted.test" {
		t.Fatalf("changing a returned route changed the cache: %v", hostNames(rt2))
	}
}

func TestResolveImplicitMX(t *testing.T) {
	srv := newTestServer(t)
	r, _ := newTestResolver(t, srv)
	rt, err := r.Resolve(context.Background(), "implicit.test")
	if err != nil {
		t.Fatal(err)
	}
	if !rt.Implicit || rt.Site.String() != "implicit.test" || len(rt.Hosts) != 1 {
		t.Fatalf("route = %+v", rt)
	}
	h := rt.Hosts[0]
	if h.Name != "implicit.test" || h.Pref != 0 || !slices.Equal(h.Addrs, addrs("127.0.2.1", "::1")) {
		t.Fatalf("host = %+v, want implicit.test with 127.0.2.1 then ::1", h)
	}
}

func TestResolveNullMX(t *testing.T) {
	srv := newTestServer(t)
	r, _ := newTestResolver(t, srv)
	_, err := r.Resolve(context.Background(), "nullmx.test")
	re := asError(t, err, 556, "5.1.10")
	if !errors.Is(err, ErrNullMX) || !re.Permanent() {
		t.Fatalf("err = %v", err)
	}
	if srv.QueryCount("nullmx.test", dns.TypeA) != 0 {
		t.Fatal("null MX must not fall back to the domain's addresses (RFC 7505 §3)")
	}
	// A "." among real MX hosts is a misconfiguration: the real hosts win.
	rt, err := r.Resolve(context.Background(), "mixednull.test")
	if err != nil {
		t.Fatal(err)
	}
	if names := hostNames(rt); !slices.Equal(names, []string{"mx-a.sorted.test"}) || rt.Site.String() != "mx-a.sorted.test" {
		t.Fatalf("hosts %v, site %q", names, rt.Site)
	}
}

func TestResolveNXDOMAIN(t *testing.T) {
	srv := newTestServer(t)
	r, _ := newTestResolver(t, srv)
	_, err := r.Resolve(context.Background(), "nonexistent.test")
	asError(t, err, 550, "5.1.2")
	if !errors.Is(err, ErrNoSuchDomain) {
		t.Fatalf("err = %v", err)
	}
	if !strings.Contains(err.Error(), "nonexistent.test") {
		t.Fatalf("error text %q does not name the domain", err)
	}
}

func TestResolveNoMXNoAddressIsPermanent(t *testing.T) {
	srv := newTestServer(t)
	r, _ := newTestResolver(t, srv)
	_, err := r.Resolve(context.Background(), "nodata.test")
	asError(t, err, 550, "5.1.2")
	if !errors.Is(err, ErrNoMailHost) {
		t.Fatalf("err = %v", err)
	}
}

func TestResolveServFailIsTransientAndNotCached(t *testing.T) {
	srv := newTestServer(t)
	r, _ := newTestResolver(t, srv)
	srv.Fail("sorted.test")
	_, err := r.Resolve(context.Background(), "sorted.test")
	asError(t, err, 451, "4.4.3")
	if !errors.Is(err, ErrServerFailure) {
		t.Fatalf("err = %v", err)
	}
	srv.SetRcode("sorted.test", dns.RcodeRefused)
	_, err = r.Resolve(context.Background(), "sorted.test")
	asError(t, err, 451, "4.4.3")
	if !errors.Is(err, ErrRefused) {
		t.Fatalf("err = %v", err)
	}
	srv.Heal("sorted.test")
	if _, err := r.Resolve(context.Background(), "sorted.test"); err != nil {
		t.Fatalf("after the server healed: %v", err)
	}
}

func TestResolveTimeoutIsTransientAndNotCached(t *testing.T) {
	srv := newTestServer(t)
	r, _ := newTestResolver(t, srv, func(c *Config) { c.Timeout = 150 * time.Millisecond })
	srv.Hang("sorted.test")
	start := time.Now()
	_, err := r.Resolve(context.Background(), "sorted.test")
	asError(t, err, 451, "4.4.3")
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("cause of %v is not a network timeout", err)
	}
	if el := time.Since(start); el > 2*time.Second {
		t.Fatalf("took %v with a 150ms timeout", el)
	}
	srv.Heal("sorted.test")
	if _, err := r.Resolve(context.Background(), "sorted.test"); err != nil {
		t.Fatalf("a timeout was cached: %v", err)
	}
}

func TestResolveHonorsContext(t *testing.T) {
	srv := newTestServer(t)
	r, _ := newTestResolver(t, srv, func(c *Config) { c.Timeout = 3 * time.Second })
	srv.Hang("sorted.test")
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := r.Resolve(ctx, "sorted.test")
	asError(t, err, 451, "4.4.3")
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v", err)
	}
	if el := time.Since(start); el > time.Second {
		t.Fatalf("Resolve returned %v after its context ended", el)
	}
}

func TestResolveNextNameserver(t *testing.T) {
	bad := newTestServer(t)
	bad.Fail("sorted.test")
	good := newTestServer(t)
	r, err := New(Config{Nameservers: []string{bad.Addr, good.Addr}, Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Resolve(context.Background(), "sorted.test"); err != nil {
		t.Fatal(err)
	}
	if bad.QueryCount("sorted.test", dns.TypeMX) != 1 || good.QueryCount("sorted.test", dns.TypeMX) != 1 {
		t.Fatalf("queries: bad %d, good %d", bad.QueryCount("sorted.test", dns.TypeMX), good.QueryCount("sorted.test", dns.TypeMX))
	}
}

func TestResolveCachesByTTL(t *testing.T) {
	srv := newTestServer(t)
	r, clk := newTestResolver(t, srv)
	ctx := context.Background()
	if _, err := r.Resolve(ctx, "shortttl.test"); err != nil {
		t.Fatal(err)
	}
	mxQ := func() int { return srv.QueryCount("shortttl.test", dns.TypeMX) }
	aQ := func() int { return srv.QueryCount("mx.shortttl.test", dns.TypeA) }
	if mxQ() != 1 || aQ() != 1 {
		t.Fatalf("first resolve: %d MX, %d A queries", mxQ(), aQ())
	}
	clk.Advance(59 * time.Second)
	if _, err := r.Resolve(ctx, "shortttl.test"); err != nil {
		t.Fatal(err)
	}
	if mxQ() != 1 || aQ() != 1 {
		t.Fatalf("within every TTL: %d MX, %d A queries, want none new", mxQ(), aQ())
	}
	// The A record's TTL (60s) ends first; the MX answer (300s) stays.
	clk.Advance(2 * time.Second)
	if _, err := r.Resolve(ctx, "shortttl.test"); err != nil {
		t.Fatal(err)
	}
	if mxQ() != 1 || aQ() != 2 {
		t.Fatalf("after the A TTL: %d MX, %d A queries, want 1 and 2", mxQ(), aQ())
	}
	clk.Advance(240 * time.Second) // 301s after the MX answer
	if _, err := r.Resolve(ctx, "shortttl.test"); err != nil {
		t.Fatal(err)
	}
	if mxQ() != 2 {
		t.Fatalf("after the MX TTL: %d MX queries, want 2", mxQ())
	}
}

func TestResolveNegativeCacheBySOAMinimum(t *testing.T) {
	srv := newTestServer(t)
	r, clk := newTestResolver(t, srv)
	ctx := context.Background()
	for _, tc := range []struct {
		domain string
		qtype  uint16
	}{
		{"nonexistent.test", dns.TypeMX}, // NXDOMAIN
		{"implicit.test", dns.TypeMX},    // NODATA
	} {
		n := func() int { return srv.QueryCount(tc.domain, tc.qtype) }
		r.Resolve(ctx, tc.domain)
		r.Resolve(ctx, tc.domain)
		if n() != 1 {
			t.Fatalf("%s: %d queries, want 1 (cached negative answer)", tc.domain, n())
		}
		// The SOA says TTL 300, MINIMUM 60: the negative answer lives 60s.
		clk.Advance(59 * time.Second)
		r.Resolve(ctx, tc.domain)
		if n() != 1 {
			t.Fatalf("%s: requeried before the SOA minimum", tc.domain)
		}
		clk.Advance(2 * time.Second)
		r.Resolve(ctx, tc.domain)
		if n() != 2 {
			t.Fatalf("%s: %d queries after the SOA minimum, want 2", tc.domain, n())
		}
	}
}

func TestResolveNegativeWithoutSOANotCached(t *testing.T) {
	// A zone apex whose SOA the server omits cannot be built with the
	// in-process server, so check the rule on a response: without SOA the
	// answer gets noTTL (RFC 2308 §5).
	m := new(dns.Msg)
	m.SetQuestion("x.test.", dns.TypeMX)
	m.Response = true
	m.Rcode = dns.RcodeNameError
	a, next, err := parseResponse("x.test.", dns.TypeMX, m)
	if err != nil || next != "" || a.outcome != outcomeNXDomain || a.ttl != noTTL {
		t.Fatalf("got %+v %q %v", a, next, err)
	}
}

func TestResolveFollowsCNAMEChain(t *testing.T) {
	srv := newTestServer(t)
	r, _ := newTestResolver(t, srv)
	rt, err := r.Resolve(context.Background(), "alias.test")
	if err != nil {
		t.Fatal(err)
	}
	if rt.Domain != "alias.test" || len(rt.Hosts) != 3 || rt.Hosts[0].Name != "mx-a.sorted.test" {
		t.Fatalf("route = %+v", rt)
	}
	// An MX host that is an alias (RFC 5321 §5.1 forbids it, but it exists).
	rt, err = r.Resolve(context.Background(), "mxalias.test")
	if err != nil {
		t.Fatal(err)
	}
	if len(rt.Hosts) != 1 || rt.Hosts[0].Name != "hostalias.mxalias.test" || !slices.Equal(rt.Hosts[0].Addrs, addrs("127.0.4.1")) {
		t.Fatalf("route = %+v", rt)
	}
}

func TestResolveCNAMELoopIsTransient(t *testing.T) {
	srv := newTestServer(t)
	r, _ := newTestResolver(t, srv)
	_, err := r.Resolve(context.Background(), "loop1.test")
	asError(t, err, 451, "4.4.3")
	if !errors.Is(err, ErrCNAMELoop) {
		t.Fatalf("err = %v", err)
	}
}

func TestResolveTruncatedRetriesOverTCP(t *testing.T) {
	// 100 A records do not fit in 1232 bytes: the UDP answer is truncated.
	var b strings.Builder
	b.WriteString("$ORIGIN big.test.\n@ 300 IN SOA ns hm 1 3600 600 86400 60\n")
	for i := range 100 {
		fmt.Fprintf(&b, "@ 300 IN A 127.1.%d.%d\n", i/250, i%250+1)
	}
	srv := dnstest.NewServer(t, b.String())
	r, _ := newTestResolver(t, srv)
	rt, err := r.Resolve(context.Background(), "big.test")
	if err != nil {
		t.Fatal(err)
	}
	if len(rt.Hosts) != 1 || len(rt.Hosts[0].Addrs) != 100 {
		t.Fatalf("got %d hosts, %d addresses; want 1 host with 100", len(rt.Hosts), len(rt.Hosts[0].Addrs))
	}
	var udp, tcp int
	for _, q := range srv.Queries() {
		if q.Name == "big.test." && q.Type == dns.TypeA {
			if q.Net == "tcp" {
				tcp++
			} else {
				udp++
			}
		}
	}
	if udp != 1 || tcp != 1 {
		t.Fatalf("A queries: %d udp, %d tcp; want 1 and 1", udp, tcp)
	}

	// A server that truncates everything over UDP.
	srv2 := newTestServer(t)
	srv2.Truncate("sorted.test")
	r2, _ := newTestResolver(t, srv2)
	if rt, err := r2.Resolve(context.Background(), "sorted.test"); err != nil || len(rt.Hosts) != 3 {
		t.Fatalf("route %+v, err %v", rt, err)
	}
}

func TestResolveBothAddressFamilies(t *testing.T) {
	srv := newTestServer(t)
	r, _ := newTestResolver(t, srv)
	rt, err := r.Resolve(context.Background(), "dual.test")
	if err != nil {
		t.Fatal(err)
	}
	if got := rt.Hosts[0].Addrs; !slices.Equal(got, addrs("127.0.3.1", "::1")) {
		t.Fatalf("addrs = %v, want IPv4 then IPv6", got)
	}
	if srv.QueryCount("mx.dual.test", dns.TypeA) != 1 || srv.QueryCount("mx.dual.test", dns.TypeAAAA) != 1 {
		t.Fatal("both A and AAAA must be asked")
	}
	rt, err = r.Resolve(context.Background(), "v6only.test")
	if err != nil {
		t.Fatal(err)
	}
	if got := rt.Hosts[0].Addrs; !slices.Equal(got, addrs("::1")) {
		t.Fatalf("addrs = %v", got)
	}
}

func TestResolveSkipsHostsWithoutAddresses(t *testing.T) {
	srv := newTestServer(t)
	r, _ := newTestResolver(t, srv)
	rt, err := r.Resolve(context.Background(), "partial.test")
	if err != nil {
		t.Fatal(err)
	}
	if names := hostNames(rt); !slices.Equal(names, []string{"good.partial.test"}) {
		t.Fatalf("hosts = %v", names)
	}
	// The site names every MX host, so it does not change with address
	// lookups.
	if rt.Site.String() != "good.partial.test,noaddr.partial.test" {
		t.Fatalf("site = %q", rt.Site)
	}

	// Every MX host does not exist: permanent.
	_, err = r.Resolve(context.Background(), "ghosts.test")
	asError(t, err, 550, "5.4.4")
	if !errors.Is(err, ErrNoAddress) {
		t.Fatalf("err = %v", err)
	}

	// One MX host's lookup fails: transient.
	srv.Fail("gone2.ghosts.test")
	r2, _ := newTestResolver(t, srv)
	_, err = r2.Resolve(context.Background(), "ghosts.test")
	asError(t, err, 451, "4.4.3")
}

func TestResolveSiteShared(t *testing.T) {
	srv := newTestServer(t)
	r, _ := newTestResolver(t, srv)
	a, err := r.Resolve(context.Background(), "shared1.test")
	if err != nil {
		t.Fatal(err)
	}
	b, err := r.Resolve(context.Background(), "shared2.test")
	if err != nil {
		t.Fatal(err)
	}
	if a.Site != b.Site || a.Site.String() != "mx1.hoster.test,mx2.hoster.test" {
		t.Fatalf("sites %q and %q, want both mx1.hoster.test,mx2.hoster.test", a.Site, b.Site)
	}
	c, _ := r.Resolve(context.Background(), "sorted.test")
	if c.Site == a.Site {
		t.Fatal("different MX sets share a site")
	}
}

func TestResolveNormalizesDomain(t *testing.T) {
	srv := newTestServer(t)
	r, _ := newTestResolver(t, srv)
	for _, d := range []string{"Sorted.TEST.", "sorted.test", "SORTED.test"} {
		rt, err := r.Resolve(context.Background(), d)
		if err != nil {
			t.Fatalf("%s: %v", d, err)
		}
		if rt.Domain != "sorted.test" {
			t.Fatalf("%s: Domain = %q", d, rt.Domain)
		}
	}
	if n := srv.QueryCount("sorted.test", dns.TypeMX); n != 1 {
		t.Fatalf("%d MX queries for three spellings of one domain, want 1", n)
	}
	rt, err := r.Resolve(context.Background(), "Bücher.test")
	if err != nil {
		t.Fatal(err)
	}
	if rt.Domain != "xn--bcher-kva.test" {
		t.Fatalf("IDN domain = %q", rt.Domain)
	}
	for _, bad := range []string{"", ".", "a..test", "a b.test", strings.Repeat("a", 64) + ".test", "-\x00.test"} {
		_, err := r.Resolve(context.Background(), bad)
		asError(t, err, 550, "5.1.2")
		if !errors.Is(err, ErrInvalidDomain) {
			t.Fatalf("%q: err = %v", bad, err)
		}
	}
}

func TestResolveAddressLiteral(t *testing.T) {
	r, err := New(Config{Nameservers: []string{"127.0.0.1:9"}})
	if err != nil {
		t.Fatal(err)
	}
	for lit, want := range map[string]string{"[127.0.0.9]": "127.0.0.9", "[IPv6:::1]": "::1"} {
		rt, err := r.Resolve(context.Background(), lit)
		if err != nil {
			t.Fatal(err)
		}
		if !rt.Literal || rt.Site.String() != lit || len(rt.Hosts) != 1 || rt.Hosts[0].Addrs[0] != netip.MustParseAddr(want) {
			t.Fatalf("%s: route %+v", lit, rt)
		}
	}
	if _, err := r.Resolve(context.Background(), "[::1]"); err == nil {
		t.Fatal("an IPv6 literal without the IPv6: tag must be refused (RFC 5321 §4.1.3)")
	}
}

func TestResolveCoalescesConcurrentLookups(t *testing.T) {
	srv := newTestServer(t)
	srv.Delay("sorted.test", 200*time.Millisecond)
	r, _ := newTestResolver(t, srv)
	var wg sync.WaitGroup
	errs := make(chan error, 20)
	for range 20 {
		wg.Go(func() {
			_, err := r.Resolve(context.Background(), "sorted.test")
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if n := srv.QueryCount("sorted.test", dns.TypeMX); n != 1 {
		t.Fatalf("%d MX queries for 20 concurrent lookups, want 1", n)
	}
}

func TestResolveCacheIsBounded(t *testing.T) {
	srv := newTestServer(t)
	r, _ := newTestResolver(t, srv, func(c *Config) { c.MaxEntries = 4 })
	for _, d := range []string{"sorted.test", "equal.test", "implicit.test", "dual.test", "shared1.test", "nonexistent.test"} {
		r.Resolve(context.Background(), d)
	}
	if n := r.answers.len(); n > 4 {
		t.Fatalf("answer cache holds %d entries, bound is 4", n)
	}
	if n := r.routes.len(); n > 4 {
		t.Fatalf("route cache holds %d entries, bound is 4", n)
	}
}

func TestResolveWithoutCache(t *testing.T) {
	srv := newTestServer(t)
	r, _ := newTestResolver(t, srv, func(c *Config) { c.MaxEntries = -1 })
	for range 2 {
		if _, err := r.Resolve(context.Background(), "sorted.test"); err != nil {
			t.Fatal(err)
		}
	}
	if n := srv.QueryCount("sorted.test", dns.TypeMX); n != 2 {
		t.Fatalf("%d MX queries with caching off, want 2", n)
	}
}
