package httpapi

import (
	"net/netip"
	"strings"
)

// ForwardedClient returns the client of a request that reached us from
// peer with the X-Forwarded-For field lines xff, given the proxies we
// trust: when peer is not one of them the header is ignored (anyone can
// write it) and peer is the client. Otherwise the list is walked from the
// right, where each trusted proxy appended the address it got the request
// from: the first address that is not a trusted proxy is the client; when
// all are, the leftmost. An entry that is not an address (with or without
// a port) stops the walk at the last hop that was one, so a client cannot
// push its own choice past a proxy. The result is 4-in-6 unmapped.
func ForwardedClient(peer netip.Addr, xff []string, trusted []netip.Prefix) netip.Addr {
	client := peer.Unmap()
	if len(trusted) == 0 || !containsAddr(trusted, client) {
		return client
	}
	for i := len(xff) - 1; i >= 0; i-- {
		line := xff[i]
		for line != "" {
			var entry string
			if j := strings.LastIndexByte(line, ','); j >= 0 {
				line, entry = line[:j], line[j+1:]
			} else {
				line, entry = "", line
			}
			a, ok := parseForwardedAddr(strings.TrimSpace(entry))
			if !ok {
				return client
			}
			client = a
			if !containsAddr(trusted, a) {
				return client
			}
		}
	}
	return client
}

// parseForwardedAddr reads one X-Forwarded-For entry: an IP address, or
// one with a port ("192.0.2.1:4711", "[2001:db8::1]:4711").
func parseForwardedAddr(s string) (netip.Addr, bool) {
	if a, err := netip.ParseAddr(s); err == nil && a.Zone() == "" {
		return a.Unmap(), true
	}
	if ap, err := netip.ParseAddrPort(s); err == nil && ap.Addr().Zone() == "" {
		return ap.Addr().Unmap(), true
	}
	return netip.Addr{}, false
}

// containsAddr reports whether ip is inside one of ps.
func containsAddr(ps []netip.Prefix, ip netip.Addr) bool {
	for _, p := range ps {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}
