package resolver

import (
	"fmt"
	"math/rand/v2"
	"net"
	"strconv"
	"time"

	"github.com/miekg/dns"
)

// DefaultResolvConf is read when Config.Nameservers is empty.
const DefaultResolvConf = "/etc/resolv.conf"

// Config configures a Resolver. Only Nameservers and Timeout come from the
// user's configuration ([resolver] in the TOML file); the rest exists for
// tests and tuning and has sensible defaults.
type Config struct {
	// Nameservers are "host:port" addresses of recursive resolvers, asked in
	// order. A missing port means 53. Empty: read ResolvConf.
	Nameservers []string
	// Timeout bounds one query to one server. Zero: the resolv.conf
	// "options timeout:" value when read from there, else 5s.
	Timeout time.Duration
	// TrustAD ([resolver] dnssec = "trust-ad") asks the nameservers for
	// DNSSEC validation (the DO and AD bits, RFC 6840 §5.7, RFC 3225) and
	// believes the AD bit of their answers: answers with it set are
	// "secure" (Route hosts' Secure, TLSAResult.Secure) and DANE applies
	// to them. Set it only when every nameserver is a validating resolver
	// reached over a trusted path, in practice one on the same host
	// (127.0.0.1 or ::1): the AD bit is not protected on the wire, and
	// anyone between Gannet and the nameserver could set it (RFC 7672
	// §1.3, as Postfix's smtp_dns_support_level = dnssec). Without it
	// every answer is insecure.
	TrustAD bool
	// Now returns the current time; the cache expires entries by it.
	// Nil: time.Now.
	Now func() time.Time

	// Rand shuffles MX hosts of equal preference. Nil: a random source owned
	// by the runtime. The Resolver serializes its use.
	Rand rand.Source
	// ResolvConf is the resolv.conf(5) file read when Nameservers is empty.
	// Empty: DefaultResolvConf.
	ResolvConf string
	// MaxEntries bounds each of the two caches (answers and routes).
	// Zero: 10000; negative: no caching.
	MaxEntries int
	// MinTTL and MaxTTL clamp how long answers are cached, positive and
	// negative alike. Zero: 5s and 1h (the cap RFC 2308 §5 suggests for
	// negative answers; mail delivery gains nothing from longer).
	MinTTL, MaxTTL time.Duration
	// MaxMXHosts bounds how many MX hosts of one domain are used, lowest
	// preference first. Zero: 16.
	MaxMXHosts int
}

// Defaults.
const (
	defaultTimeout    = 5 * time.Second
	defaultMaxEntries = 10000
	defaultMinTTL     = 5 * time.Second
	defaultMaxTTL     = time.Hour
	defaultMaxMXHosts = 16
)

// ParseResolvConf reads the nameservers and the per-query timeout from a
// resolv.conf(5) file. Servers are returned as "host:port"; timeout is zero
// when the file sets none.
func ParseResolvConf(path string) (servers []string, timeout time.Duration, err error) {
	cc, err := dns.ClientConfigFromFile(path)
	if err != nil {
		return nil, 0, fmt.Errorf("resolver: reading %s: %w", path, err)
	}
	port := cc.Port
	if port == "" {
		port = "53"
	}
	for _, s := range cc.Servers {
		servers = append(servers, net.JoinHostPort(s, port))
	}
	if len(servers) == 0 {
		return nil, 0, fmt.Errorf("resolver: %s lists no nameserver", path)
	}
	if cc.Timeout > 0 {
		timeout = time.Duration(cc.Timeout) * time.Second
	}
	return servers, timeout, nil
}

// normalizeServer checks a "host:port" address and adds port 53 when the
// port is missing ("192.0.2.1", "::1", "[::1]").
func normalizeServer(s string) (string, error) {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		h := s
		if len(h) > 1 && h[0] == '[' && h[len(h)-1] == ']' {
			h = h[1 : len(h)-1]
		}
		if net.ParseIP(h) == nil {
			return "", fmt.Errorf("resolver: nameserver %q is not host:port", s)
		}
		return net.JoinHostPort(h, "53"), nil
	}
	if host == "" {
		return "", fmt.Errorf("resolver: nameserver %q has no host", s)
	}
	if p, err := strconv.Atoi(port); err != nil || p <= 0 || p > 65535 {
		return "", fmt.Errorf("resolver: nameserver %q has a bad port", s)
	}
	return net.JoinHostPort(host, port), nil
}
