package mtasts

import (
	"errors"

	"gannet/internal/txtrec"
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

// stsVersion is the version field every record begins with (§3.1).
const stsVersion = "v=STSv1"

// SelectRecord picks the MTA-STS record among the TXT records of a
// "_mta-sts" name (§3.1): the records that do not begin with "v=STSv1;"
// are discarded; exactly one must remain, and it must parse. (A record
// that is only "v=STSv1" is let through, so that ParseRecord reports it as
// malformed: it has no id.)
func SelectRecord(txts []string) (Record, error) {
	switch found, n := txtrec.Select(txts, stsVersion); n {
	case 0:
		return Record{}, ErrNoRecord
	case 1:
		return ParseRecord(found)
	}
	return Record{}, ErrManyRecords
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
	fields, ok := txtrec.Fields(txt, stsVersion)
	if !ok {
		return Record{}, ErrBadRecord
	}
	var r Record
	haveID := false
	for _, f := range fields {
		if f.Name == "id" {
			if haveID || !validID(f.Value) {
				return Record{}, ErrBadRecord
			}
			r.ID, haveID = f.Value, true
			continue
		}
		if !txtrec.IsExtName(f.Name) || !txtrec.IsExtValue(f.Value) {
			return Record{}, ErrBadRecord
		}
		r.Extensions = append(r.Extensions, f.String())
	}
	if !haveID {
		return Record{}, ErrBadRecord
	}
	return r, nil
}

func validID(s string) bool {
	if len(s) < 1 || len(s) > 32 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !txtrec.IsAlnum(s[i]) {
			return false
		}
	}
	return true
}
