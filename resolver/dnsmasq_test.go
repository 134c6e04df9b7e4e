package resolver

import (
	"context"
	"errors"
	"net/netip"
	"slices"
	"testing"
	"time"

	"gannet/resolver/dnstest"
)

// TestResolveThroughDnsmasq resolves through dnsmasq, a DNS implementation
// that shares no code with this package or miekg/dns.
func TestResolveThroughDnsmasq(t *testing.T) {
	addr := dnstest.StartDnsmasq(t,
		"--local=/test/", // unknown names under .test: NXDOMAIN
		"--mx-host=mail.test,mx2.mail.test,20",
		"--mx-host=mail.test,mx1.mail.test,10",
		"--host-record=mx1.mail.test,127.0.0.2",
		"--host-record=mx2.mail.test,127.0.0.3,::1",
		"--host-record=plain.test,127.0.0.4",
		"--mx-host=nomail.test,.,0",
	)
	r, err := New(Config{Nameservers: []string{addr}, Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()

	rt, err := r.Resolve(ctx, "mail.test")
	if err != nil {
		t.Fatal(err)
	}
	if got := hostNames(rt); !slices.Equal(got, []string{"mx1.mail.test", "mx2.mail.test"}) {
		t.Fatalf("hosts = %v", got)
	}
	if !slices.Equal(rt.Hosts[1].Addrs, []netip.Addr{netip.MustParseAddr("127.0.0.3"), netip.MustParseAddr("::1")}) {
		t.Fatalf("mx2 addrs = %v", rt.Hosts[1].Addrs)
	}
	if rt.Site.String() != "mx1.mail.test,mx2.mail.test" {
		t.Fatalf("site = %q", rt.Site)
	}

	rt, err = r.Resolve(ctx, "plain.test")
	if err != nil {
		t.Fatal(err)
	}
	if !rt.Implicit || !slices.Equal(rt.Hosts[0].Addrs, []netip.Addr{netip.MustParseAddr("127.0.0.4")}) {
		t.Fatalf("implicit route = %+v", rt)
	}

	_, err = r.Resolve(ctx, "missing.test")
	asError(t, err, 550, "5.1.2")

	_, err = r.Resolve(ctx, "nomail.test")
	asError(t, err, 556, "5.1.10")
	if !errors.Is(err, ErrNullMX) {
		t.Fatalf("err = %v", err)
	}
}
