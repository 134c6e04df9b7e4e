package resolver

import (
	"encoding/hex"
	"math"
	"net/netip"
	"strings"

	"github.com/miekg/dns"
)

// MaxCNAMEChain bounds how many CNAME records are followed for one question,
// across the records inside one answer and any further queries for the
// chain's last name. RFC 1034 §3.6.2 asks resolvers to follow chains but to
// guard against loops; 8 is what common resolvers allow.
const MaxCNAMEChain = 8

// outcome is what one (name, type) question resolved to.
type outcome uint8

const (
	outcomeAnswer   outcome = iota // records of the asked type exist
	outcomeNoData                  // the name exists, but has no such records (RFC 2308 §2.2)
	outcomeNXDomain                // the name does not exist (RFC 2308 §2.1)
)

// noTTL marks an answer that must not be cached: a negative answer without an
// SOA record in its authority section (RFC 2308 §5).
const noTTL = math.MaxUint32

// mxRecord is one MX record: the exchange host is lower-case without the
// trailing dot; the root name "." (null MX, RFC 7505) is the empty string.
type mxRecord struct {
	host string
	pref uint16
}

// answer is the processed result of one question, the unit that the cache
// holds. It is never modified once built, so it is shared between callers.
type answer struct {
	outcome outcome
	mx      []mxRecord   // for TypeMX
	addrs   []netip.Addr // for TypeA and TypeAAAA
	txt     []string     // for TypeTXT: each record's strings joined
	tlsa    []TLSA       // for TypeTLSA
	ttl     uint32       // the smallest TTL seen along the chain; noTTL: do not cache
	// target is the name at the end of the CNAME chain (lower-case FQDN),
	// "" when the asked name had no CNAME.
	target string
	// authentic: every response along the chain had the AD bit and
	// Config.TrustAD is set. Set by query, not by parseResponse.
	authentic bool
}

// parseResponse turns the response m to the question (qname, qtype) into an
// answer. qname is a lower-case fully qualified name. It follows the CNAME
// chain inside the answer section (RFC 1034 §3.6.2, §4.3.2 step 3a) and keeps
// only records whose owner is the current name in the chain, which discards
// unrelated records a server may have added. When the chain ends at a name
// for which the response carries neither records nor an SOA, the server did
// not chase the chain: next is then that name, to be asked in a new query.
//
// m comes from the network and is untrusted: parseResponse must never panic,
// whatever it holds (see FuzzParseResponse).
func parseResponse(qname string, qtype uint16, m *dns.Msg) (a answer, next string, err error) {
	if m == nil || !m.Response || len(m.Question) != 1 {
		return a, "", ErrBadResponse
	}
	q := m.Question[0]
	if q.Qtype != qtype || q.Qclass != dns.ClassINET || !strings.EqualFold(q.Name, qname) {
		return a, "", ErrBadResponse
	}
	switch m.Rcode {
	case dns.RcodeSuccess, dns.RcodeNameError:
	case dns.RcodeServerFailure:
		return a, "", ErrServerFailure
	case dns.RcodeRefused:
		return a, "", ErrRefused
	default:
		return a, "", ErrBadResponse
	}

	ttl := uint32(noTTL)
	name := qname
	var seen [MaxCNAMEChain + 1]string // the names visited so far
	seen[0] = qname
	hops := 0
	// Follow CNAMEs while the current name has one and no record of the
	// asked type (a name with a CNAME has no other data, RFC 1034 §3.6.2).
	for {
		target, cttl, ok := findCNAME(m.Answer, name)
		if !ok || hasType(m.Answer, name, qtype) {
			break
		}
		hops++
		if hops > MaxCNAMEChain {
			return answer{}, "", ErrCNAMEChain
		}
		for _, v := range seen[:hops] {
			if v == target {
				return answer{}, "", ErrCNAMELoop
			}
		}
		seen[hops] = target
		ttl = min(ttl, cttl)
		name = target
	}

	for _, rr := range m.Answer {
		h := rr.Header()
		if h.Class != dns.ClassINET || h.Rrtype != qtype || !strings.EqualFold(h.Name, name) {
			continue
		}
		switch v := rr.(type) {
		case *dns.MX:
			a.mx = append(a.mx, mxRecord{host: hostName(v.Mx), pref: v.Preference})
		case *dns.A:
			if ip, ok := netip.AddrFromSlice(v.A); ok {
				a.addrs = appendUsable(a.addrs, ip.Unmap())
			}
		case *dns.AAAA:
			if ip, ok := netip.AddrFromSlice(v.AAAA); ok && len(v.AAAA) == 16 {
				a.addrs = appendUsable(a.addrs, ip)
			}
		case *dns.TXT:
			// A record of several character-strings is one text, their
			// concatenation (RFC 7208 §3.3, RFC 8461 §3.1).
			a.txt = append(a.txt, strings.Join(v.Txt, ""))
		case *dns.TLSA:
			data, err := hex.DecodeString(v.Certificate)
			if err != nil {
				continue // malformed: as if absent (RFC 7671 §4 "unusable")
			}
			a.tlsa = append(a.tlsa, TLSA{Usage: v.Usage, Selector: v.Selector, MatchingType: v.MatchingType, Data: data})
		default:
			continue
		}
		ttl = min(ttl, h.Ttl)
	}
	if name != qname {
		a.target = name
	}
	if len(a.mx) > 0 || len(a.addrs) > 0 || len(a.txt) > 0 || len(a.tlsa) > 0 {
		a.outcome = outcomeAnswer
		a.ttl = ttl
		return a, "", nil
	}

	// A negative answer. Its TTL is the smaller of the SOA record's own TTL
	// and its MINIMUM field (RFC 2308 §5); without an SOA it is not cached.
	soaTTL, haveSOA := negativeTTL(m.Ns)
	if m.Rcode == dns.RcodeSuccess && name != qname && !haveSOA {
		// The chain leaves the data this server had (RFC 1034 §4.3.2 step 3a):
		// ask again for the last name.
		a.ttl = ttl
		return a, name, nil
	}
	if m.Rcode == dns.RcodeNameError {
		// After a CNAME, the RCODE describes the last name of the chain
		// (RFC 6604 §2.1): the mail domain itself resolves to nothing.
		a.outcome = outcomeNXDomain
	} else {
		a.outcome = outcomeNoData
	}
	if haveSOA {
		a.ttl = min(ttl, soaTTL)
	} else {
		a.ttl = noTTL
	}
	return a, "", nil
}

// findCNAME returns the target of the CNAME record owned by name.
func findCNAME(rrs []dns.RR, name string) (target string, ttl uint32, ok bool) {
	for _, rr := range rrs {
		if c, isC := rr.(*dns.CNAME); isC && c.Hdr.Class == dns.ClassINET && strings.EqualFold(c.Hdr.Name, name) {
			return strings.ToLower(dns.Fqdn(c.Target)), c.Hdr.Ttl, true
		}
	}
	return "", 0, false
}

// hasType reports whether rrs hold a record of type t owned by name.
func hasType(rrs []dns.RR, name string, t uint16) bool {
	for _, rr := range rrs {
		h := rr.Header()
		if h.Rrtype == t && h.Class == dns.ClassINET && strings.EqualFold(h.Name, name) {
			return true
		}
	}
	return false
}

// negativeTTL finds the SOA record in the authority section of a negative
// answer and returns min(SOA TTL, SOA MINIMUM) as RFC 2308 §5 prescribes.
func negativeTTL(ns []dns.RR) (uint32, bool) {
	for _, rr := range ns {
		if soa, ok := rr.(*dns.SOA); ok && soa.Hdr.Class == dns.ClassINET {
			return min(soa.Hdr.Ttl, soa.Minttl), true
		}
	}
	return 0, false
}

// hostName lower-cases a domain name from DNS data and removes its trailing
// dot. The root name "." becomes "".
func hostName(s string) string {
	s = strings.TrimSuffix(s, ".")
	return strings.ToLower(s)
}

// appendUsable appends ip unless no mail can ever be sent to it: the
// unspecified and multicast addresses are never SMTP servers. Loopback stays,
// as test setups rely on it. Duplicates are dropped.
func appendUsable(dst []netip.Addr, ip netip.Addr) []netip.Addr {
	if !ip.IsValid() || ip.IsUnspecified() || ip.IsMulticast() || ip == netip.AddrFrom4([4]byte{255, 255, 255, 255}) {
		return dst
	}
	for _, have := range dst {
		if have == ip {
			return dst
		}
	}
	return append(dst, ip)
}
