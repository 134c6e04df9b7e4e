package resolver

import (
	"slices"
	"strings"
)

// SiteKey names the set of MX hosts that serves a domain: the host names,
// lower-cased and without trailing dots, sorted, without duplicates and
// joined by ",". Domains hosted on the same MX hosts get the same key, so
// delivery can share one ready queue, one connection pool and one set of
// limits between them. For an implicit MX (RFC 5321 §5.1) the only host is
// the domain itself. Empty names (the null MX target ".") are left out.
func SiteKey(hosts []string) string {
	names := make([]string, 0, len(hosts))
	for _, h := range hosts {
		if h = hostName(h); h != "" {
			names = append(names, h)
		}
	}
	slices.Sort(names)
	names = slices.Compact(names)
	return strings.Join(names, ",")
}
