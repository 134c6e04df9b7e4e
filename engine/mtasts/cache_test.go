package mtasts

import (
	"context"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"gannet/resolver"
	"gannet/resolver/dnstest"
)

// fakeDNS answers TXT lookups from a map.
type fakeDNS struct {
	mu  sync.Mutex
	txt map[string][]string
	err error
}

func (f *fakeDNS) set(name string, txt ...string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.txt[name] = txt
}

func (f *fakeDNS) LookupTXT(_ context.Context, name string) ([]string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.txt[name], f.err
}

func (f *fakeDNS) LookupAddrs(context.Context, string) ([]netip.Addr, error) {
	return nil, errors.New("fakeDNS: no addresses")
}

// fakeFetcher serves policy texts and counts fetches.
type fakeFetcher struct {
	mu     sync.Mutex
	policy map[string]string
	err    error
	n      int
}

func (f *fakeFetcher) Fetch(_ context.Context, domain string) (*Policy, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.n++
	if f.err != nil {
		return nil, f.err
	}
	return ParsePolicy([]byte(f.policy[domain]))
}

func (f *fakeFetcher) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.n
}

type clock struct{ t time.Time }

func (c *clock) Now() time.Time { return c.t }

const enforceA = "version: STSv1\nmode: enforce\nmx: mx.a.test\nmax_age: 3600\n"

// TestCacheRefresh follows §5.1: the first lookup fetches; the same id
// uses the cache; a new id fetches again; a failed refresh keeps the cached
// policy and is not retried at once; a policy expires after max_age; a
// restart loads the cache file without fetching.
func TestCacheRefresh(t *testing.T) {
	dir := t.TempDir()
	dns := &fakeDNS{txt: map[string][]string{}}
	dns.set("_mta-sts.a.test", "v=STSv1; id=one;")
	fe := &fakeFetcher{policy: map[string]string{"a.test": enforceA}}
	clk := &clock{t: time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)}
	var results []string
	opts := Options{Resolver: dns, Fetcher: fe, Dir: dir, Now: clk.Now,
		OnFetch: func(_, res string, _ error) { results = append(results, res) }}
	c, err := NewCache(opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	r := c.Lookup(ctx, "A.test.")
	if !r.Enforced() || r.ID != "one" || !r.Policy.Match("mx.a.test") || fe.count() != 1 {
		t.Fatalf("first lookup: %+v, fetches %d", r, fe.count())
	}
	if r = c.Lookup(ctx, "a.test"); !r.Enforced() || fe.count() != 1 {
		t.Fatalf("same id: %+v, fetches %d (want the cache)", r, fe.count())
	}
	// A domain without a record has no policy and fetches nothing.
	if r = c.Lookup(ctx, "b.test"); r.Policy != nil || fe.count() != 1 {
		t.Fatalf("b.test: %+v", r)
	}

	// A new id: fetched again, the new policy applies.
	fe.policy["a.test"] = "version: STSv1\nmode: testing\nmx: mx.a.test\nmax_age: 3600\n"
	dns.set("_mta-sts.a.test", "v=STSv1; id=two;")
	if r = c.Lookup(ctx, "a.test"); !r.Testing() || r.ID != "two" || fe.count() != 2 {
		t.Fatalf("new id: %+v, fetches %d", r, fe.count())
	}

	// A restart: the file gives the policy back without a fetch.
	c2, err := NewCache(opts)
	if err != nil {
		t.Fatal(err)
	}
	if c2.Len() != 1 {
		t.Fatalf("reloaded cache has %d policies", c2.Len())
	}
	if r = c2.Lookup(ctx, "a.test"); !r.Testing() || r.ID != "two" || fe.count() != 2 {
		t.Fatalf("after restart: %+v, fetches %d", r, fe.count())
	}

	// A failed refresh (new id, server down) keeps the cached policy, and
	// is not tried again before RetryAfterFailure.
	fe.err = errors.New("down")
	dns.set("_mta-sts.a.test", "v=STSv1; id=three;")
	if r = c2.Lookup(ctx, "a.test"); !r.Testing() || r.ID != "two" || fe.count() != 3 {
		t.Fatalf("failed refresh: %+v, fetches %d", r, fe.count())
	}
	clk.t = clk.t.Add(time.Minute)
	if r = c2.Lookup(ctx, "a.test"); !r.Testing() || fe.count() != 3 {
		t.Fatalf("retry too soon: fetches %d", fe.count())
	}
	// The TXT record gone: the cached policy still holds until it expires.
	dns.set("_mta-sts.a.test")
	if r = c2.Lookup(ctx, "a.test"); !r.Testing() {
		t.Fatalf("record removed: %+v", r)
	}
	// max_age over: no policy (the fetch fails, nothing cached is valid).
	clk.t = clk.t.Add(2 * time.Hour)
	dns.set("_mta-sts.a.test", "v=STSv1; id=three;")
	if r = c2.Lookup(ctx, "a.test"); r.Policy != nil || fe.count() != 4 {
		t.Fatalf("expired: %+v, fetches %d", r, fe.count())
	}
	// An invalid policy file counts as invalid.
	fe.err = nil
	fe.policy["c.test"] = "version: STSv1\n"
	dns.set("_mta-sts.c.test", "v=STSv1; id=x;")
	if r = c2.Lookup(ctx, "c.test"); r.Policy != nil {
		t.Fatalf("invalid policy in force: %+v", r)
	}
	want := []string{FetchOK, FetchOK, FetchError, FetchError, FetchInvalid}
	if len(results) != len(want) {
		t.Fatalf("fetch results %q, want %q", results, want)
	}
	for i := range want {
		if results[i] != want[i] {
			t.Fatalf("fetch results %q, want %q", results, want)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, CacheFile)); err != nil {
		t.Fatal(err)
	}
	// A corrupt file is reported and ignored.
	os.WriteFile(filepath.Join(dir, CacheFile), []byte("{"), 0o600)
	if c3, err := NewCache(opts); err == nil || c3 == nil || c3.Len() != 0 {
		t.Fatalf("corrupt file: %v", err)
	}
}

// TestCacheRefreshesBeforeExpiry: a policy older than half its max_age is
// fetched again in the background (§10.1) while the cached one answers;
// the new copy lives a full max_age from its fetch.
func TestCacheRefreshesBeforeExpiry(t *testing.T) {
	dns := &fakeDNS{txt: map[string][]string{"_mta-sts.a.test": {"v=STSv1; id=one;"}}}
	fe := &fakeFetcher{policy: map[string]string{"a.test": enforceA}} // max_age 3600
	var mu sync.Mutex
	clk := &clock{t: time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)}
	now := func() time.Time { mu.Lock(); defer mu.Unlock(); return clk.t }
	c, err := NewCache(Options{Resolver: dns, Fetcher: fe, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	c.Lookup(ctx, "a.test")
	mu.Lock()
	clk.t = clk.t.Add(20 * time.Minute)
	mu.Unlock()
	if r := c.Lookup(ctx, "a.test"); !r.Enforced() || fe.count() != 1 {
		t.Fatalf("young policy: %+v, %d fetches", r, fe.count())
	}
	mu.Lock()
	clk.t = clk.t.Add(15 * time.Minute) // 35 minutes old: past half of max_age
	mu.Unlock()
	if r := c.Lookup(ctx, "a.test"); !r.Enforced() {
		t.Fatalf("during the refresh: %+v", r)
	}
	deadline := time.Now().Add(5 * time.Second)
	for fe.count() < 2 {
		if time.Now().After(deadline) {
			t.Fatal("no background refresh")
		}
		time.Sleep(5 * time.Millisecond)
	}
	c.Close() // waits for the refresh to be stored
	mu.Lock()
	clk.t = clk.t.Add(50 * time.Minute) // 85 minutes after the first fetch, 50 after the refresh
	mu.Unlock()
	if r := c.Lookup(ctx, "a.test"); !r.Enforced() || fe.count() != 2 {
		t.Fatalf("after the refresh: %+v, %d fetches (want the refreshed copy, no new fetch)", r, fe.count())
	}
}

// BenchmarkSTSCheck is the per-delivery cost of the policy check with a
// warm cache: the TXT lookup through Gannet's resolver (answered from its
// cache; the DNS server is a real one on loopback), the id comparison, and
// the match of the route's two MX host names.
func BenchmarkSTSCheck(b *testing.B) {
	srv := dnstest.NewServer(b, `
$ORIGIN a.test.
@         3600 IN SOA ns hostmaster 1 3600 600 86400 3600
_mta-sts  3600 IN TXT "v=spf1 -all"
_mta-sts  3600 IN TXT "v=STSv1; id=one;"
`)
	r, err := resolver.New(resolver.Config{Nameservers: []string{srv.Addr}, Timeout: 2 * time.Second})
	if err != nil {
		b.Fatal(err)
	}
	fe := &fakeFetcher{policy: map[string]string{"a.test": "version: STSv1\nmode: enforce\nmx: mx1.a.test\nmx: *.mx.a.test\nmax_age: 86400\n"}}
	c, err := NewCache(Options{Resolver: r, Fetcher: fe})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	if !c.Lookup(ctx, "a.test").Enforced() {
		b.Fatal("no policy")
	}
	hosts := []string{"mx1.a.test", "b.mx.a.test"}
	b.ReportAllocs()
	for b.Loop() {
		res := c.Lookup(ctx, "a.test")
		if !res.Enforced() {
			b.Fatal("no policy")
		}
		for _, h := range hosts {
			if !res.Policy.Match(h) {
				b.Fatal("no match")
			}
		}
	}
	if fe.count() != 1 || srv.QueryCount("_mta-sts.a.test.", dns.TypeTXT) != 1 {
		b.Fatalf("%d fetches, %d TXT queries: the cache was not warm", fe.count(), srv.QueryCount("_mta-sts.a.test.", dns.TypeTXT))
	}
}

// TestCacheFetchFailure: a domain whose record names a policy that cannot
// be fetched has no policy, and the result says why (now and while the
// failure is remembered); a domain with a cached policy does not; a later
// good fetch clears it.
func TestCacheFetchFailure(t *testing.T) {
	dns := &fakeDNS{txt: map[string][]string{}}
	dns.set("_mta-sts.a.test", "v=STSv1; id=one;")
	fe := &fakeFetcher{policy: map[string]string{"a.test": "garbage"}}
	clk := &clock{t: time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)}
	c, err := NewCache(Options{Resolver: dns, Fetcher: fe, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	r := c.Lookup(ctx, "a.test")
	if r.Policy != nil || r.FetchResult != FetchInvalid || !errors.Is(r.FetchErr, ErrBadPolicy) {
		t.Fatalf("invalid policy: %+v", r)
	}
	if r = c.Lookup(ctx, "a.test"); r.FetchResult != FetchInvalid || fe.count() != 1 {
		t.Fatalf("remembered failure: %+v, fetches %d", r, fe.count())
	}
	fe.err = errors.New("connection refused")
	clk.t = clk.t.Add(time.Hour)
	if r = c.Lookup(ctx, "a.test"); r.FetchResult != FetchError || r.FetchErr == nil {
		t.Fatalf("fetch error: %+v", r)
	}
	fe.err = nil
	fe.policy["a.test"] = enforceA
	clk.t = clk.t.Add(time.Hour)
	if r = c.Lookup(ctx, "a.test"); !r.Enforced() || r.FetchResult != "" || r.FetchErr != nil {
		t.Fatalf("good fetch: %+v", r)
	}
	if r = c.Lookup(ctx, "b.test"); r.FetchResult != "" {
		t.Fatalf("no record: %+v", r)
	}
}
