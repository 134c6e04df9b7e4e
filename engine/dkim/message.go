package dkim

import "gannet/msgheader"

// field is one header field of a message (msgheader.Field: its name and
// the whole raw field, both pointing into the message).
type field = msgheader.Field

// splitHeader appends the header fields of msg to fields (msgheader's
// scan: folding, LF or CRLF line ends; a line without a valid name has a nil
// name, which no signed header name matches) and returns them with the
// body: everything after the first empty line, nil when msg has none (it is
// all header).
func splitHeader(msg []byte, fields []field) ([]field, []byte) {
	sc := msgheader.NewScanner(msg)
	for sc.Next() {
		f := sc.Field()
		fields = append(fields, f)
	}
	if sc.BodyStart() == sc.SectionEnd() {
		return fields, nil
	}
	return fields, msg[sc.BodyStart():]
}

// countFields returns how many fields are named name.
func countFields(fields []field, name string) int {
	n := 0
	for i := range fields {
		if fields[i].Is(name) {
			n++
		}
	}
	return n
}

// pickField returns the skip+1-th field named name counting from the bottom
// of the header, or nil. RFC 6376 §5.4.2: when a name is listed several times
// in "h=", its instances are signed from the last one upwards.
func pickField(fields []field, name string, skip int) *field {
	for i := len(fields) - 1; i >= 0; i-- {
		if fields[i].Is(name) {
			if skip == 0 {
				return &fields[i]
			}
			skip--
		}
	}
	return nil
}
