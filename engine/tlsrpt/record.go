package tlsrpt

import (
	"errors"
	"net/url"
	"strings"

	"gannet/internal/txtrec"
)

// Errors of the TXT record. All mean "the domain does not want TLS reports"
// (§3: a sender must then assume the domain does not implement TLSRPT).
var (
	// ErrNoRecord: no TXT record of the name starts with "v=TLSRPTv1".
	ErrNoRecord = errors.New("no TLSRPT TXT record")
	// ErrManyRecords: more than one TXT record starts with "v=TLSRPTv1".
	ErrManyRecords = errors.New("more than one TLSRPT TXT record")
	// ErrBadRecord: the record starts with "v=TLSRPTv1" but does not follow
	// the grammar of §3 (no rua, a URI that is neither mailto: nor https:).
	ErrBadRecord = errors.New("malformed TLSRPT TXT record")
)

// MaxRUA bounds the report addresses taken from one record; the rest are
// ignored, so that a record cannot make Gannet send without end.
const MaxRUA = 8

// Record is a "_smtp._tls.DOMAIN" TXT record (RFC 8460 §3):
//
//	v=TLSRPTv1; rua=mailto:reports@example.com,https://reporting.example.com/v1/tlsrpt
type Record struct {
	// RUA are the addresses reports go to, in the record's order: mailto:
	// and https: URIs (§3: other schemes are ignored). At least one.
	RUA []string
	// Extensions are the other fields, "name=value", in order.
	Extensions []string
}

// rptVersion is the version field every record begins with (§3).
const rptVersion = "v=TLSRPTv1"

// SelectRecord picks the TLSRPT record among the TXT records of a
// "_smtp._tls" name (§3): records that do not begin with "v=TLSRPTv1" are
// discarded; exactly one must remain, and it must parse.
func SelectRecord(txts []string) (Record, error) {
	switch found, n := txtrec.Select(txts, rptVersion); n {
	case 0:
		return Record{}, ErrNoRecord
	case 1:
		return ParseRecord(found)
	}
	return Record{}, ErrManyRecords
}

// ParseRecord parses one TXT record per the ABNF of §3:
//
//	tlsrpt-record   = tlsrpt-version 1*(field-delim tlsrpt-field) [field-delim]
//	field-delim     = *WSP ";" *WSP
//	tlsrpt-field    = tlsrpt-rua / tlsrpt-extension
//	tlsrpt-version  = %s"v=TLSRPTv1"
//	tlsrpt-rua      = %s"rua=" tlsrpt-uri *(*WSP "," *WSP tlsrpt-uri)
//	tlsrpt-uri      = URI  ; with commas and semicolons percent-encoded
//	tlsrpt-extension = tlsrpt-ext-name "=" tlsrpt-ext-value
//	tlsrpt-ext-name = (ALPHA / DIGIT) *31(ALPHA / DIGIT / "_" / "-" / ".")
//	tlsrpt-ext-value = 1*(%x21-3A / %x3C / %x3E-7E)
//
// Exactly one rua field is required. URIs of other schemes than mailto:
// and https: are dropped; a record left with none is malformed.
func ParseRecord(txt string) (Record, error) {
	fields, ok := txtrec.Fields(txt, rptVersion)
	if !ok {
		return Record{}, ErrBadRecord
	}
	var r Record
	seenRUA := false
	for _, f := range fields {
		if f.Name == "rua" {
			if seenRUA {
				return Record{}, ErrBadRecord
			}
			seenRUA = true
			for _, u := range strings.Split(f.Value, ",") {
				u = strings.Trim(u, " \t")
				if u == "" {
					return Record{}, ErrBadRecord
				}
				if !validURI(u) {
					continue
				}
				if len(r.RUA) < MaxRUA {
					r.RUA = append(r.RUA, u)
				}
			}
			continue
		}
		if !txtrec.IsExtName(f.Name) || !txtrec.IsExtValue(f.Value) {
			return Record{}, ErrBadRecord
		}
		r.Extensions = append(r.Extensions, f.String())
	}
	if len(r.RUA) == 0 {
		return Record{}, ErrBadRecord
	}
	return r, nil
}

// validURI reports whether u is a usable mailto: or https: report address.
func validURI(u string) bool {
	for i := 0; i < len(u); i++ {
		if u[i] <= ' ' || u[i] >= 0x7f {
			return false
		}
	}
	p, err := url.Parse(u)
	if err != nil {
		return false
	}
	switch strings.ToLower(p.Scheme) {
	case "https":
		return p.Host != "" && p.User == nil
	case "mailto":
		addr, err := url.PathUnescape(p.Opaque)
		if err != nil {
			return false
		}
		local, domain, ok := strings.Cut(addr, "@")
		return ok && local != "" && domain != "" && !strings.ContainsAny(addr, ",<>\"() \\") && p.RawQuery == ""
	}
	return false
}

// MailtoAddress returns the address of a mailto: URI ("" for others).
func MailtoAddress(u string) string {
	p, err := url.Parse(u)
	if err != nil || !strings.EqualFold(p.Scheme, "mailto") {
		return ""
	}
	addr, err := url.PathUnescape(p.Opaque)
	if err != nil {
		return ""
	}
	return addr
}
