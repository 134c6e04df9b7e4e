// Package msgheader reads and writes the header section of an Internet
// message (RFC 5322 §2.2): where it ends, its fields one by one with their
// folding, a field by name, and the Received trace field Gannet prepends
// (RFC 5321 §4.4). It is the one header scanner of the code base: the
// message policy, DKIM, DSNs, admin inspection, outbound and the HTTP
// injectors all use it, so a message is split the same way everywhere.
//
// Lines end at LF, with or without a CR before it. The header section ends
// at the first empty line ("\r\n" or "\n"); a message without one is all
// header. A line that starts with a space or tab continues the field before
// it (folding, RFC 5322 §2.2.3). A line without a colon is a field with no
// name, which no lookup matches; so is a line whose name is not a valid
// field name (RFC 5322 §3.6.8). Nothing here allocates except Get and
// Field.Unfolded.
package msgheader

import (
	"bytes"
	"iter"
	"strings"
)

// Field is one header field. Name and Raw point into the message.
type Field struct {
	// Name is the field name, the bytes before the colon without trailing
	// white space; nil for a line without a colon or with an invalid name.
	Name []byte
	// Raw is the whole field: name, colon, value, continuation lines and
	// the final line end (when the message has one).
	Raw []byte
	// Start is the offset of Raw in the message.
	Start int
}

// End returns the offset just past the field.
func (f Field) End() int { return f.Start + len(f.Raw) }

// Is reports whether the field's name is name, ignoring ASCII case
// (RFC 5322 §1.2.2: field names are case-insensitive).
func (f Field) Is(name string) bool { return equalFold(f.Name, name) }

// Value returns the field body: the bytes after the colon, folding kept,
// without the final line end. It is nil for a field with no name.
func (f Field) Value() []byte {
	if f.Name == nil {
		return nil
	}
	v := f.Raw[bytes.IndexByte(f.Raw, ':')+1:]
	for len(v) > 0 && (v[len(v)-1] == '\n' || v[len(v)-1] == '\r') {
		v = v[:len(v)-1]
	}
	return v
}

// Unfolded returns the field body unfolded (RFC 5322 §2.2.3: the CRLF
// before each continuation line removed) and trimmed of surrounding white
// space.
func (f Field) Unfolded() string {
	v := f.Value()
	if bytes.IndexAny(v, "\r\n") < 0 {
		return string(bytes.TrimSpace(v))
	}
	var b strings.Builder
	b.Grow(len(v))
	for _, c := range v {
		if c != '\r' && c != '\n' {
			b.WriteByte(c)
		}
	}
	return strings.TrimSpace(b.String())
}

// Scanner walks the fields of a header section.
//
//	s := msgheader.NewScanner(msg)
//	for s.Next() {
//		f := s.Field()
//	}
//	body := msg[s.BodyStart():]
type Scanner struct {
	msg   []byte
	pos   int // start of the next line
	field Field
	end   int // offset of the empty line; -1 until Next has found it
	body  int // offset just past the empty line
}

// NewScanner returns a scanner at the start of msg.
func NewScanner(msg []byte) Scanner { return Scanner{msg: msg, end: -1} }

// Next advances to the next field; false at the end of the header section.
func (s *Scanner) Next() bool {
	if s.end >= 0 {
		return false
	}
	msg, i := s.msg, s.pos
	if i >= len(msg) {
		s.end, s.body = len(msg), len(msg)
		return false
	}
	if n := emptyLine(msg[i:]); n > 0 {
		s.end, s.body = i, i+n
		return false
	}
	start := i
	i = lineEnd(msg, i)
	// Continuation lines belong to this field.
	for i < len(msg) && (msg[i] == ' ' || msg[i] == '\t') {
		i = lineEnd(msg, i)
	}
	raw := msg[start:i]
	var name []byte
	if msg[start] != ' ' && msg[start] != '\t' {
		if colon := bytes.IndexByte(raw, ':'); colon >= 0 {
			name = raw[:colon:colon]
			// RFC 5322 §4.5.8 (obsolete syntax): white space before the colon.
			for len(name) > 0 && (name[len(name)-1] == ' ' || name[len(name)-1] == '\t') {
				name = name[:len(name)-1]
			}
			if !isFieldName(name) {
				name = nil
			}
		}
	}
	s.field = Field{Name: name, Raw: raw, Start: start}
	s.pos = i
	return true
}

// Field returns the field Next stopped at.
func (s *Scanner) Field() Field { return s.field }

// SectionEnd returns the offset of the empty line that ends the header
// section, or len(msg) when there is none. Valid once Next returned false.
func (s *Scanner) SectionEnd() int { return s.end }

// BodyStart returns the offset of the body: just past the empty line, or
// len(msg) when there is none. Valid once Next returned false.
func (s *Scanner) BodyStart() int { return s.body }

// Fields iterates over the header fields of msg.
func Fields(msg []byte) iter.Seq[Field] {
	return func(yield func(Field) bool) {
		s := NewScanner(msg)
		for s.Next() {
			if !yield(s.field) {
				return
			}
		}
	}
}

// SectionEnd returns the offset of the empty line that ends the header
// section of msg (where fields are added), or len(msg) when it has none.
func SectionEnd(msg []byte) int {
	s := NewScanner(msg)
	for s.Next() {
	}
	return s.end
}

// BodyStart returns the offset of the body of msg: just past the empty
// line, or len(msg) when it has none.
func BodyStart(msg []byte) int {
	s := NewScanner(msg)
	for s.Next() {
	}
	return s.body
}

// Section returns the header section of msg with the empty line that ends
// it, or all of msg when it has none.
func Section(msg []byte) []byte { return msg[:BodyStart(msg)] }

// Get returns the unfolded body of the first field named name.
func Get(msg []byte, name string) (string, bool) {
	s := NewScanner(msg)
	for s.Next() {
		if s.field.Is(name) {
			return s.field.Unfolded(), true
		}
	}
	return "", false
}

// isFieldName reports RFC 5322 §3.6.8 field-name: one or more printable
// US-ASCII characters other than the colon.
func isFieldName(b []byte) bool {
	for _, c := range b {
		if c < 33 || c > 126 {
			return false
		}
	}
	return len(b) > 0
}

// emptyLine returns the length of the empty line at the start of b
// ("\r\n" or "\n"), or 0.
func emptyLine(b []byte) int {
	switch {
	case len(b) > 0 && b[0] == '\n':
		return 1
	case len(b) > 1 && b[0] == '\r' && b[1] == '\n':
		return 2
	}
	return 0
}

// lineEnd returns the offset just past the LF of the line at i, or len(msg).
func lineEnd(msg []byte, i int) int {
	if nl := bytes.IndexByte(msg[i:], '\n'); nl >= 0 {
		return i + nl + 1
	}
	return len(msg)
}

// equalFold reports b == s ignoring ASCII case, without converting b.
func equalFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := range len(b) {
		x, y := b[i], s[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}
