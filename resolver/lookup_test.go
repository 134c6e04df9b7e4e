package resolver

import (
	"context"
	"errors"
	"net/netip"
	"reflect"
	"testing"

	"github.com/miekg/dns"

	"gannet/resolver/dnstest"
)

// TestLookupTXTAndAddrs: TXT records come back one text per record (the
// character-strings joined), cached; a name without TXT gives none; host
// addresses come IPv4 first.
func TestLookupTXTAndAddrs(t *testing.T) {
	srv := dnstest.NewServer(t, `
$ORIGIN sts.test.
@         300 IN SOA ns hostmaster 1 3600 600 86400 60
_mta-sts  300 IN TXT "v=STSv1; " "id=abc;"
_mta-sts  300 IN TXT "other"
mta-sts   300 IN A    127.0.9.1
mta-sts   300 IN AAAA ::1
`)
	r, _ := newTestResolver(t, srv)
	ctx := context.Background()
	txt, err := r.LookupTXT(ctx, "_mta-sts.STS.test.")
	if err != nil || !reflect.DeepEqual(txt, []string{"v=STSv1; id=abc;", "other"}) {
		t.Fatalf("LookupTXT = %q, %v", txt, err)
	}
	if _, err := r.LookupTXT(ctx, "_mta-sts.sts.test"); err != nil {
		t.Fatal(err)
	}
	if n := srv.QueryCount("_mta-sts.sts.test.", dns.TypeTXT); n != 1 {
		t.Errorf("TXT queries = %d, want 1 (cached)", n)
	}
	if txt, err := r.LookupTXT(ctx, "_mta-sts.none.sts.test"); err != nil || len(txt) != 0 {
		t.Errorf("LookupTXT(no such name) = %q, %v", txt, err)
	}
	addrs, err := r.LookupAddrs(ctx, "mta-sts.sts.test")
	if err != nil || !reflect.DeepEqual(addrs, []netip.Addr{netip.MustParseAddr("127.0.9.1"), netip.MustParseAddr("::1")}) {
		t.Errorf("LookupAddrs = %v, %v", addrs, err)
	}
	if _, err := r.LookupAddrs(ctx, "nothing.sts.test"); !errors.Is(err, ErrNoAddress) {
		t.Errorf("LookupAddrs(no such name) error = %v, want ErrNoAddress", err)
	}
}
