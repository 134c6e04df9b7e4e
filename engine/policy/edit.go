package policy

import (
	"errors"
	"fmt"
	"strings"

	"gannet/msgheader"
)

// EditKind says what a HeaderEdit does.
type EditKind uint8

const (
	// Add puts the field "Name: Value" at the end of the header section.
	Add EditKind = iota + 1
	// Prepend puts the field "Name: Value" at the top of the header
	// section, above the received message's first field (the Received
	// field and the signatures Gannet adds go above it in turn).
	Prepend
	// Remove takes out the one field at Field, or, when Field is zero,
	// every field named Name.
	Remove
	// Replace puts the field "Name: Value" in place of the one at Field,
	// or, when Field is zero, in place of the first field named Name,
	// removing the others of that name; a message without one gets it at
	// the end of its header section (the field is set).
	Replace
)

// String returns the kind's name.
func (k EditKind) String() string {
	switch k {
	case Add:
		return "add"
	case Prepend:
		return "prepend"
	case Remove:
		return "remove"
	case Replace:
		return "replace"
	}
	return fmt.Sprintf("EditKind(%d)", uint8(k))
}

// Span is the byte range of one header field in Message.Body, as
// msgheader.Field gives it: [Start, End), the field with its continuation
// lines and line end. The zero Span names no field.
type Span struct{ Start, End int }

// SpanOf returns the span of f.
func SpanOf(f msgheader.Field) Span { return Span{f.Start, f.End()} }

// IsZero reports whether s names no field.
func (s Span) IsZero() bool { return s.End == 0 }

// HeaderEdit is one change to a message's header section. Names match
// field names without regard to ASCII case (RFC 5322 §1.2.2). A field is
// written "Name: Value" and CRLF; Value is the unfolded field body, without
// line ends.
type HeaderEdit struct {
	Kind  EditKind
	Name  string
	Value string
	// Field, when not zero, is the one field of the received message that
	// a Remove or Replace applies to (Name is then only the new field's
	// name, for Replace).
	Field Span
}

// errBadEdit is wrapped by the errors of AppendEdited for an edit that
// would not make a well-formed header field.
var errBadEdit = errors.New("policy: bad header edit")

// check reports whether e can be applied: a kind; a name that is an RFC
// 5322 §3.6.8 field-name (printable US-ASCII except the colon) when the
// edit writes or matches by name; a value without CR or LF, so that it can
// neither end the field early nor add fields of its own.
func (e *HeaderEdit) check() error {
	switch e.Kind {
	case Add, Prepend, Remove, Replace:
	default:
		return fmt.Errorf("%w: kind %v", errBadEdit, e.Kind)
	}
	if e.Kind == Remove && !e.Field.IsZero() {
		return nil
	}
	if !isFieldName(e.Name) {
		return fmt.Errorf("%w: %v of field name %q", errBadEdit, e.Kind, e.Name)
	}
	if strings.IndexByte(e.Value, '\r') >= 0 || strings.IndexByte(e.Value, '\n') >= 0 {
		return fmt.Errorf("%w: %v %s: value holds a line end", errBadEdit, e.Kind, e.Name)
	}
	return nil
}

// writes reports whether e puts a new field into the message.
func (e *HeaderEdit) writes() bool { return e.Kind != Remove }

// fieldLen is the length of the field e writes.
func (e *HeaderEdit) fieldLen() int { return len(e.Name) + len(": ") + len(e.Value) + len("\r\n") }

// appendField appends the field e writes.
func (e *HeaderEdit) appendField(dst []byte) []byte {
	dst = append(dst, e.Name...)
	dst = append(dst, ": "...)
	dst = append(dst, e.Value...)
	return append(dst, "\r\n"...)
}

// EditedLen returns a length that the message body with edits applied
// does not exceed: what AppendEdited appends at the most.
func EditedLen(body []byte, edits []HeaderEdit) int {
	n := len(body) + len("\r\n") // a last header line without a line end gets one
	for i := range edits {
		if edits[i].writes() {
			n += edits[i].fieldLen()
		}
	}
	return n
}

// maxEditsOnStack is how many edits AppendEdited tracks without
// allocating.
const maxEditsOnStack = 16

// AppendEdited appends body to dst with edits applied, in one pass over
// the header section: each byte of body is copied once, the removed fields
// are left out, the replacing fields are written where the replaced ones
// were, the prepended fields before the first field and the added fields
// before the empty line that ends the header section (at the end of a
// message that is all header, on a line of their own). The edits apply in
// list order: when two match the same field, the first wins. With
// EditedLen(body, edits) bytes of room in dst it does not allocate. It
// fails, appending nothing, on an edit that check refuses and on a Field
// span that is not a field of body.
func AppendEdited(dst, body []byte, edits []HeaderEdit) ([]byte, error) {
	// The edits that apply to fields of body (Remove, Replace): those with
	// a span, sorted by span, are met by a cursor as the fields go by;
	// those by name are tried on each field.
	var spansOnStack, namesOnStack [maxEditsOnStack]int
	spans, names := spansOnStack[:0], namesOnStack[:0]
	for i := range edits {
		e := &edits[i]
		if err := e.check(); err != nil {
			return dst, err
		}
		switch {
		case e.Kind != Remove && e.Kind != Replace:
		case e.Field.IsZero():
			names = append(names, i)
		default:
			spans = append(spans, i)
		}
	}
	// Sorted by start, then by list order (an insertion sort: a policy
	// gives a few, mostly in order already).
	for j := 1; j < len(spans); j++ {
		for k := j; k > 0 && edits[spans[k]].Field.Start < edits[spans[k-1]].Field.Start; k-- {
			spans[k], spans[k-1] = spans[k-1], spans[k]
		}
	}
	start := len(dst)
	// used[i]: edit i met its field (an edit with a span), or wrote its
	// field in place of the first of its name (a Replace by name).
	var usedOnStack [maxEditsOnStack]bool
	used := usedOnStack[:min(len(edits), maxEditsOnStack)]
	if len(edits) > maxEditsOnStack {
		used = make([]bool, len(edits))
	}
	for i := range edits {
		if edits[i].Kind == Prepend {
			dst = edits[i].appendField(dst)
		}
	}
	kept := 0   // body[kept:] is not copied yet
	cursor := 0 // spans[:cursor] start before the current field
	s := msgheader.NewScanner(body)
	for len(spans)+len(names) > 0 && s.Next() {
		f := s.Field()
		sp := SpanOf(f)
		// The first edit in list order that applies to f wins.
		winner := len(edits)
		for cursor < len(spans) && edits[spans[cursor]].Field.Start < sp.Start {
			cursor++ // not at a field: reported below
		}
		for _, i := range spans[cursor:] {
			if edits[i].Field.Start != sp.Start {
				break
			}
			if edits[i].Field == sp {
				used[i] = true
				winner = min(winner, i)
			}
		}
		for _, i := range names {
			if i > winner {
				break
			}
			if f.Is(edits[i].Name) {
				winner = i
				break
			}
		}
		if winner == len(edits) {
			continue
		}
		e := &edits[winner]
		dst = append(dst, body[kept:f.Start]...)
		kept = sp.End
		if e.Kind == Replace && (!e.Field.IsZero() || !used[winner]) {
			dst = e.appendField(dst)
			used[winner] = true
		}
	}
	for _, i := range spans {
		if e := &edits[i]; !used[i] {
			return dst[:start], fmt.Errorf("%w: %v at %d-%d: not a header field", errBadEdit, e.Kind, e.Field.Start, e.Field.End)
		}
	}
	var end int
	if len(spans)+len(names) > 0 {
		end = s.SectionEnd() // the scan above went to the end
	} else {
		end = msgheader.SectionEnd(body)
	}
	dst = append(dst, body[kept:end]...)
	lineOpen := len(dst) > start && dst[len(dst)-1] != '\n'
	for i := range edits {
		e := &edits[i]
		if e.Kind == Add || e.Kind == Replace && e.Field.IsZero() && !used[i] {
			if lineOpen {
				dst = append(dst, "\r\n"...) // the last header line had no line end
				lineOpen = false
			}
			dst = e.appendField(dst)
		}
	}
	return append(dst, body[end:]...), nil
}

// isFieldName reports whether name is an RFC 5322 §3.6.8 field-name: one
// or more printable US-ASCII characters other than the colon.
func isFieldName(name string) bool {
	for i := 0; i < len(name); i++ {
		if c := name[i]; c-'!' > '~'-'!' || c == ':' {
			return false
		}
	}
	return name != ""
}
