package resolver

import (
	"slices"
	"strings"
)

// SiteKey names a delivery site: where the mail of a destination domain
// goes, and so what delivery shares between the domains that go there
// (one ready queue, one connection pool and one set of limits per site and
// egress source). A site is one of
//
//   - a set of MX hosts (MXSite), named by their host names, lower-cased,
//     without trailing dots, sorted, without duplicates and joined by ",":
//     domains hosted on the same MX hosts share the site. For an implicit
//     MX (RFC 5321 §5.1) the only host is the domain itself; an address
//     literal ("[192.0.2.1]") is its own site.
//   - the smarthost of [delivery] relay_to (RelaySite), named by its
//     "host:port", which is not an MX host name.
//
// The zero SiteKey is no site (a domain not routed yet). SiteKeys are
// comparable, and equal keys name the same site.
type SiteKey struct {
	name  string // the string form
	relay bool   // name is a relay_to "host:port"
}

// MXSite returns the key of the site served by the MX hosts named hosts.
// Empty names (the null MX target ".") are left out.
func MXSite(hosts []string) SiteKey {
	if len(hosts) == 1 { // the common case, without allocating
		return SiteKey{name: hostName(hosts[0])}
	}
	names := make([]string, 0, len(hosts))
	for _, h := range hosts {
		if h = hostName(h); h != "" {
			names = append(names, h)
		}
	}
	slices.Sort(names)
	names = slices.Compact(names)
	return SiteKey{name: strings.Join(names, ",")}
}

// RelaySite returns the key of the relay_to smarthost at hostPort ("host:port").
func RelaySite(hostPort string) SiteKey { return SiteKey{name: hostPort, relay: true} }

// String returns the key's form in logs, metrics and the admin API: the MX
// host names joined by ",", or the smarthost's "host:port"; "" for the
// zero key. No two sites share it (an MX host name holds no ":", a
// relay_to "host:port" always does), so it may key a map.
func (k SiteKey) String() string { return k.name }

// IsRelay reports whether k is a smarthost (RelaySite): its String is
// the "host:port" to connect to.
func (k SiteKey) IsRelay() bool { return k.relay }

// IsZero reports whether k names no site.
func (k SiteKey) IsZero() bool { return k == SiteKey{} }

// MXHosts returns the MX host names of the site, sorted; nil for the relay_to
// smarthost (no MX host of the destination is known) and for the zero key.
func (k SiteKey) MXHosts() []string {
	if k.relay || k.name == "" {
		return nil
	}
	return strings.Split(k.name, ",")
}
