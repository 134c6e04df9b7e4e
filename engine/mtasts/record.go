package mtasts

import (
	"errors"
	"strings"
)

// Errors of the TXT record. All mean "no MTA-STS policy record" to the
// sender (§3.1: a record that does not parse is as if there were none).
var (
	// ErrNoRecord: no TXT record of the name starts with "v=STSv1".
	ErrNoRecord = errors.New("no MTA-STS TXT record")
	// ErrManyRecords: more than one TXT record starts with "v=STSv1"
	// (§3.1: the sender must then assume there is no policy).
	ErrManyRecords = errors.New("more than one MTA-STS TXT record")
	// ErrBadRecord: the record starts with "v=STSv1" but does not follow
	// the grammar of §3.1 (for example, no valid id).
	ErrBadRecord = errors.New("malformed MTA-STS TXT record")
)

// Record is a "_mta-sts.DOMAIN" TXT record (RFC 8461 §3.1):
//
//	v=STSv1; id=20160831085700Z;
type Record struct {
	// ID identifies the policy in force: when it changes, the sender
	// fetches the policy again. 1 to 32 letters and digits.
	ID string
	// Extensions are the other fields, "name=value", in order.
	Extensions []string
}

// SelectRecord picks the MTA-STS record among the TXT records of a
// "_mta-sts" name (§3.1): the records that do not begin with "v=STSv1;"
// are discarded; exactly one must remain, and it must parse.
func SelectRecord(txts []string) (Record, error) {
	var found string
	n := 0
	for _, t := range txts {
		if isSTSRecord(t) {
			found = t
			n++
		}
	}
	switch n {
	case 0:
		return Record{}, ErrNoRecord
	case 1:
		return ParseRecord(found)
	}
	return Record{}, ErrManyRecords
}

// isSTSRecord reports whether a TXT record begins with the version field.
// §3.1 asks for "v=STSv1;"; a record that is only "v=STSv1" is let through
// here so that ParseRecord reports it as malformed (it has no id).
func isSTSRecord(t string) bool {
	rest, ok := strings.CutPrefix(t, "v=STSv1")
	if !ok {
		return false
	}
	rest = strings.TrimLeft(rest, " \t")
	return rest == "" || rest[0] == ';'
}

// ParseRecord parses one TXT record per the ABNF of §3.1:
//
//	sts-text-record = sts-version 1*(*WSP field-delim *WSP sts-field) [field-delim]
//	sts-version     = %s"v=STSv1"
//	sts-id          = %s"id=" 1*32(ALPHA / DIGIT)
//	sts-extension   = sts-ext-name "=" sts-ext-value
//	sts-ext-name    = (ALPHA / DIGIT) *31(ALPHA / DIGIT / "_" / "-" / ".")
//	sts-ext-value   = 1*(%x21-3A / %x3C / %x3E-7E)
//
// The version must come first; exactly one id is required.
func ParseRecord(txt string) (Record, error) {
	rest, ok := strings.CutPrefix(txt, "v=STSv1")
	if !ok {
		return Record{}, ErrBadRecord
	}
	var r Record
	haveID := false
	for rest != "" {
		rest = strings.TrimLeft(rest, " \t")
		if rest == "" {
			break
		}
		if rest[0] != ';' {
			return Record{}, ErrBadRecord
		}
		rest = strings.TrimLeft(rest[1:], " \t")
		if rest == "" {
			break // the optional trailing field-delim
		}
		end := strings.IndexAny(rest, "; \t")
		if end < 0 {
			end = len(rest)
		}
		field := rest[:end]
		rest = rest[end:]
		name, value, ok := strings.Cut(field, "=")
		if !ok {
			return Record{}, ErrBadRecord
		}
		if name == "id" {
			if haveID || !validID(value) {
				return Record{}, ErrBadRecord
			}
			r.ID, haveID = value, true
			continue
		}
		if !validExtName(name) || !validExtValue(value) {
			return Record{}, ErrBadRecord
		}
		r.Extensions = append(r.Extensions, field)
	}
	if !haveID {
		return Record{}, ErrBadRecord
	}
	return r, nil
}

func isAlnum(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

func validID(s string) bool {
	if len(s) < 1 || len(s) > 32 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isAlnum(s[i]) {
			return false
		}
	}
	return true
}

func validExtName(s string) bool {
	if len(s) < 1 || len(s) > 32 || !isAlnum(s[0]) {
		return false
	}
	for i := 1; i < len(s); i++ {
		if c := s[i]; !isAlnum(c) && c != '_' && c != '-' && c != '.' {
			return false
		}
	}
	return true
}

func validExtValue(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		// %x21-3A / %x3C / %x3E-7E: visible characters but ";" and "=".
		if c := s[i]; c < 0x21 || c > 0x7e || c == ';' || c == '=' {
			return false
		}
	}
	return true
}
