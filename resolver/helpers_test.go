package resolver

import (
	"errors"
	"sync"
	"testing"
	"time"

	"gannet/resolver/dnstest"
	"gannet/smtpwire"
)

// fakeClock is a clock that tests move by hand.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// testZone is served by the in-process server in most tests. The SOA has a
// TTL of 300 and a MINIMUM of 60, so negative answers live 60 seconds
// (RFC 2308 §5).
const testZone = `
$ORIGIN test.
$TTL 300
@            IN SOA   ns.test. hostmaster.test. 1 3600 600 86400 60
ns           IN A     127.0.0.1

; MX hosts out of order
sorted       IN MX    20 mx-b.sorted
sorted       IN MX    10 mx-a.sorted
sorted       IN MX    30 mx-c.sorted
mx-a.sorted  IN A     127.0.0.2
mx-b.sorted  IN A     127.0.0.3
mx-c.sorted  IN A     127.0.0.4

; two hosts of equal preference and a backup
equal        IN MX    10 one.equal
equal        IN MX    10 two.equal
equal        IN MX    20 backup.equal
one.equal    IN A     127.0.1.1
two.equal    IN A     127.0.1.2
backup.equal IN A     127.0.1.3

; no MX: implicit MX from the domain's own addresses
implicit     IN A     127.0.2.1
implicit     IN AAAA  ::1

; null MX (RFC 7505)
nullmx       IN MX    0 .
mixednull    IN MX    0 .
mixednull    IN MX    10 mx-a.sorted

; both families, and IPv6 only
dual         IN MX    10 mx.dual
mx.dual      IN AAAA  ::1
mx.dual      IN A     127.0.3.1
v6only       IN MX    10 mx.v6only
mx.v6only    IN AAAA  ::1

; CNAME chains and a loop
alias        IN CNAME alias2
alias2       IN CNAME sorted
mxalias      IN MX    10 hostalias.mxalias
hostalias.mxalias IN CNAME real.mxalias
real.mxalias IN A     127.0.4.1
loop1        IN CNAME loop2
loop2        IN CNAME loop1

; MX hosts without addresses
partial      IN MX    10 noaddr.partial
partial      IN MX    20 good.partial
noaddr.partial IN TXT "no address here"
good.partial IN A     127.0.5.1
ghosts       IN MX    10 gone1.ghosts
ghosts       IN MX    20 gone2.ghosts
nodata       IN TXT   "exists, but no MX and no address"

; two domains on the same MX hosts, listed differently
shared1      IN MX    10 MX1.Hoster.test.
shared1      IN MX    20 mx2.hoster.test.
shared2      IN MX    5  mx2.hoster.test.
shared2      IN MX    5  mx1.hoster.test.
mx1.hoster   IN A     127.0.6.1
mx2.hoster   IN A     127.0.6.2

; short TTLs along the chain
shortttl     IN MX    10 mx.shortttl
mx.shortttl  60 IN A  127.0.7.1

; punycode of bücher.test
xn--bcher-kva IN MX   10 mx-a.sorted
`

// newTestServer starts the in-process DNS server with testZone.
func newTestServer(t testing.TB) *dnstest.Server {
	t.Helper()
	return dnstest.NewServer(t, testZone)
}

// newTestResolver returns a resolver that asks srv, with a fake clock.
func newTestResolver(t testing.TB, srv *dnstest.Server, mod ...func(*Config)) (*Resolver, *fakeClock) {
	t.Helper()
	clk := newFakeClock()
	cfg := Config{Nameservers: []string{srv.Addr}, Timeout: 2 * time.Second, Now: clk.Now}
	for _, m := range mod {
		m(&cfg)
	}
	r, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return r, clk
}

// asError checks that err is a *smtpwire.Error with the given codes.
func asError(t *testing.T, err error, code int, enhanced string) *smtpwire.Error {
	t.Helper()
	var re *smtpwire.Error
	if !errors.As(err, &re) {
		t.Fatalf("error %v (%T) is not a *smtpwire.Error", err, err)
	}
	if re.Reply.Code != code || re.Reply.Enhanced != enhanced {
		t.Fatalf("error %v: got %d %s, want %d %s", err, re.Reply.Code, re.Reply.Enhanced, code, enhanced)
	}
	if re.Permanent() != (code >= 500) {
		t.Fatalf("error %v: Permanent() = %v for code %d", err, re.Permanent(), code)
	}
	return re
}
