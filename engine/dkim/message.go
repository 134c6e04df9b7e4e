package dkim

import "bytes"

// field is one header field of a message: raw is the whole field (name,
// colon, value, continuation lines and the line ending), name the bytes
// before the colon without trailing WSP. Both point into the message.
type field struct {
	name []byte
	raw  []byte
}

// splitHeader appends the header fields of msg to fields and returns them
// with the body: everything after the first empty line (RFC 5322 §2.1). A
// line that starts with WSP continues the field before it (folding, RFC 5322
// §2.2.3). A message without an empty line is all header and has an empty
// body. Lines end at LF, with or without CR. A line without a colon becomes a
// field with an empty name, which no signed header name matches.
func splitHeader(msg []byte, fields []field) ([]field, []byte) {
	i := 0
	for i < len(msg) {
		end := len(msg)
		if nl := bytes.IndexByte(msg[i:], '\n'); nl >= 0 {
			end = i + nl + 1
		}
		line := msg[i:end]
		if line[0] == '\n' || (line[0] == '\r' && len(line) == 2 && line[1] == '\n') {
			return fields, msg[end:]
		}
		if isWSP(line[0]) && len(fields) > 0 {
			last := &fields[len(fields)-1]
			last.raw = last.raw[:len(last.raw)+len(line)]
			i = end
			continue
		}
		var name []byte
		if colon := bytes.IndexByte(line, ':'); colon >= 0 {
			name = line[:colon]
			for len(name) > 0 && isWSP(name[len(name)-1]) {
				name = name[:len(name)-1]
			}
		}
		fields = append(fields, field{name: name, raw: line})
		i = end
	}
	return fields, nil
}

// equalFold reports whether b equals s in ASCII case-insensitive comparison,
// without converting b to a string.
func equalFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := range len(b) {
		if lowerASCII(b[i]) != lowerASCII(s[i]) {
			return false
		}
	}
	return true
}

// countFields returns how many fields are named name.
func countFields(fields []field, name string) int {
	n := 0
	for i := range fields {
		if equalFold(fields[i].name, name) {
			n++
		}
	}
	return n
}

// pickField returns the skip+1-th field named name counting from the bottom
// of the header, or nil. RFC 6376 §5.4.2: when a name is listed several times
// in "h=", its instances are signed from the last one upwards.
func pickField(fields []field, name string, skip int) []byte {
	for i := len(fields) - 1; i >= 0; i-- {
		if equalFold(fields[i].name, name) {
			if skip == 0 {
				return fields[i].raw
			}
			skip--
		}
	}
	return nil
}

// isWSP reports whether c is white space in the sense of RFC 5234 (WSP).
func isWSP(c byte) bool { return c == ' ' || c == '\t' }

// lowerASCII lower-cases an ASCII letter and leaves every other byte alone.
func lowerASCII(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}
