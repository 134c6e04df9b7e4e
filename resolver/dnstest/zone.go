package dnstest

import (
	"fmt"
	"strings"

	"github.com/miekg/dns"
)

// zone is the parsed data: records by lower-case owner name, the SOA records
// that mark zone apexes, and every name that exists (owners and the empty
// non-terminals above them, RFC 4592 §2.2.2).
type zone struct {
	records map[string][]dns.RR
	soas    map[string]*dns.SOA
	exists  map[string]bool
}

// parseZone reads RFC 1035 §5 master file text. Names are relative to the
// $ORIGIN lines in the text, or to the root when there is none; records
// without a TTL and without $TTL get 3600.
func parseZone(text string) (*zone, error) {
	z := &zone{records: map[string][]dns.RR{}, soas: map[string]*dns.SOA{}, exists: map[string]bool{}}
	zp := dns.NewZoneParser(strings.NewReader(text), ".", "zone")
	zp.SetDefaultTTL(3600)
	for rr, ok := zp.Next(); ok; rr, ok = zp.Next() {
		h := rr.Header()
		h.Name = strings.ToLower(h.Name)
		z.records[h.Name] = append(z.records[h.Name], rr)
		if soa, isSOA := rr.(*dns.SOA); isSOA {
			z.soas[h.Name] = soa
		}
		for n := h.Name; ; {
			z.exists[n] = true
			i := strings.IndexByte(n, '.')
			if i < 0 || i == len(n)-1 {
				break
			}
			n = n[i+1:]
		}
	}
	if err := zp.Err(); err != nil {
		return nil, fmt.Errorf("dnstest: zone text: %w", err)
	}
	return z, nil
}

// apex returns the SOA of the closest enclosing zone of name, or nil.
func (z *zone) apex(name string) *dns.SOA {
	for n := name; ; {
		if soa, ok := z.soas[n]; ok {
			return soa
		}
		i := strings.IndexByte(n, '.')
		if i < 0 || i == len(n)-1 {
			return nil
		}
		n = n[i+1:]
	}
}

// answer fills resp for the question (name, qtype) the way an authoritative
// server does (RFC 1034 §4.3.2): it follows CNAMEs inside its data, answers
// NXDOMAIN for names that do not exist and NODATA for names without the type,
// both with the zone's SOA in the authority section (RFC 2308 §3), and
// REFUSED for names outside every zone.
func (z *zone) answer(resp *dns.Msg, name string, qtype uint16) {
	if z.apex(name) == nil {
		resp.Rcode = dns.RcodeRefused
		resp.Authoritative = false
		return
	}
	cur := name
	seen := map[string]bool{name: true}
	for range maxChase {
		rrs := z.records[cur]
		var cname *dns.CNAME
		found := false
		for _, rr := range rrs {
			if rr.Header().Rrtype == qtype || qtype == dns.TypeANY {
				resp.Answer = append(resp.Answer, rr)
				found = true
			}
			if c, ok := rr.(*dns.CNAME); ok {
				cname = c
			}
		}
		if found || cname == nil {
			break
		}
		resp.Answer = append(resp.Answer, cname)
		next := strings.ToLower(cname.Target)
		if seen[next] || z.apex(next) == nil {
			return // a loop, or a target outside our data: the client chases
		}
		seen[next] = true
		cur = next
	}
	if len(resp.Answer) > 0 && resp.Answer[len(resp.Answer)-1].Header().Rrtype == qtype {
		return
	}
	soa := z.apex(cur)
	if !z.exists[cur] {
		resp.Rcode = dns.RcodeNameError
	}
	if soa != nil {
		resp.Ns = append(resp.Ns, soa)
	}
}
