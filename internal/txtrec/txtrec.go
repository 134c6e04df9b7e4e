// Package txtrec parses the tag-value TXT records that mail policies are
// discovered by — "v=VERSION; name=value; …" — as MTA-STS (RFC 8461 §3.1)
// and SMTP TLS reporting (RFC 8460 §3) publish them. It does the grammar
// the two share: picking the one record of a version among a name's TXT
// records, splitting it into fields, and the extension fields' syntax.
// What each field means is the caller's.
package txtrec

import "strings"

// Select returns the record of txts that begins with version (followed by
// the end or, after optional whitespace, ";"), and how many do: a policy
// is discovered only when exactly one does (RFC 8461 §3.1, RFC 8460 §3).
func Select(txts []string, version string) (rec string, n int) {
	for _, t := range txts {
		rest, ok := strings.CutPrefix(t, version)
		if !ok {
			continue
		}
		rest = strings.TrimLeft(rest, " \t")
		if rest == "" || rest[0] == ';' {
			rec = t
			n++
		}
	}
	return rec, n
}

// Field is one "name=value" field of a record.
type Field struct {
	Name, Value string
}

// String returns the field as written, "name=value".
func (f Field) String() string { return f.Name + "=" + f.Value }

// Fields splits a record into the fields after its version:
//
//	record      = version 1*(field-delim field) [field-delim]
//	field-delim = *WSP ";" *WSP
//
// ok is false when the record does not begin with version, when text is
// glued to the version, or when a field is empty or has no "=".
func Fields(txt, version string) (fields []Field, ok bool) {
	rest, ok := strings.CutPrefix(txt, version)
	if !ok {
		return nil, false
	}
	parts := strings.Split(rest, ";")
	if strings.Trim(parts[0], " \t") != "" {
		return nil, false
	}
	parts = parts[1:]
	for i, p := range parts {
		p = strings.Trim(p, " \t")
		if p == "" {
			if i == len(parts)-1 && i > 0 {
				break // the optional trailing delimiter
			}
			return nil, false
		}
		name, value, ok := strings.Cut(p, "=")
		if !ok {
			return nil, false
		}
		fields = append(fields, Field{Name: name, Value: value})
	}
	return fields, true
}

// IsAlnum reports an ASCII letter or digit.
func IsAlnum(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

// IsExtName reports the extension field name of both grammars:
// (ALPHA / DIGIT) *31(ALPHA / DIGIT / "_" / "-" / ".").
func IsExtName(s string) bool {
	if s == "" || len(s) > 32 || !IsAlnum(s[0]) {
		return false
	}
	for i := 1; i < len(s); i++ {
		if c := s[i]; !IsAlnum(c) && c != '_' && c != '-' && c != '.' {
			return false
		}
	}
	return true
}

// IsExtValue reports the extension field value of both grammars:
// 1*(%x21-3A / %x3C / %x3E-7E) — printable ASCII but ";" and "=".
func IsExtValue(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x21 || c > 0x7e || c == ';' || c == '=' {
			return false
		}
	}
	return true
}
