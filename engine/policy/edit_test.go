package policy

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"gannet/msgheader"
)

// spanOf returns the span of the first field of msg named name.
func spanOf(t testing.TB, msg, name string) Span {
	t.Helper()
	for f := range msgheader.Fields([]byte(msg)) {
		if f.Is(name) {
			return SpanOf(f)
		}
	}
	t.Fatalf("no %s field in %q", name, msg)
	return Span{}
}

func TestAppendEdited(t *testing.T) {
	const msg = "From: a@src.test\r\nX-Tenant: acme\r\nSubject: one\r\n two\r\nx-tenant: other\r\n\r\nX-Tenant: body\r\n"
	for _, tc := range []struct {
		name  string
		in    string
		edits func(in string) []HeaderEdit
		want  string
	}{
		{name: "no edits", in: msg, edits: func(string) []HeaderEdit { return nil }, want: msg},
		{name: "add at the end of the header section",
			in: msg,
			edits: func(string) []HeaderEdit {
				return []HeaderEdit{{Kind: Add, Name: "Date", Value: "x"}, {Kind: Add, Name: "Y", Value: ""}}
			},
			want: strings.Replace(msg, "\r\n\r\n", "\r\nDate: x\r\nY: \r\n\r\n", 1)},
		{name: "prepend at the top",
			in:    msg,
			edits: func(string) []HeaderEdit { return []HeaderEdit{{Kind: Prepend, Name: "X-First", Value: "1"}} },
			want:  "X-First: 1\r\n" + msg},
		{name: "remove every field of a name, not in the body",
			in:    msg,
			edits: func(string) []HeaderEdit { return []HeaderEdit{{Kind: Remove, Name: "X-TENANT"}} },
			want:  "From: a@src.test\r\nSubject: one\r\n two\r\n\r\nX-Tenant: body\r\n"},
		{name: "remove the field at a span, folded",
			in:    msg,
			edits: func(in string) []HeaderEdit { return []HeaderEdit{{Kind: Remove, Field: spanOf(t, in, "Subject")}} },
			want:  "From: a@src.test\r\nX-Tenant: acme\r\nx-tenant: other\r\n\r\nX-Tenant: body\r\n"},
		{name: "replace the field at a span in place",
			in: msg,
			edits: func(in string) []HeaderEdit {
				return []HeaderEdit{{Kind: Replace, Name: "Subject", Value: "new", Field: spanOf(t, in, "Subject")}}
			},
			want: "From: a@src.test\r\nX-Tenant: acme\r\nSubject: new\r\nx-tenant: other\r\n\r\nX-Tenant: body\r\n"},
		{name: "replace by name: the first in place, the others removed",
			in:    msg,
			edits: func(string) []HeaderEdit { return []HeaderEdit{{Kind: Replace, Name: "X-Tenant", Value: "beta"}} },
			want:  "From: a@src.test\r\nX-Tenant: beta\r\nSubject: one\r\n two\r\n\r\nX-Tenant: body\r\n"},
		{name: "replace by name without such a field: added",
			in:    msg,
			edits: func(string) []HeaderEdit { return []HeaderEdit{{Kind: Replace, Name: "X-Type", Value: "bulk"}} },
			want:  strings.Replace(msg, "\r\n\r\n", "\r\nX-Type: bulk\r\n\r\n", 1)},
		{name: "first matching edit wins; a later remove still sees its field",
			in: msg,
			edits: func(in string) []HeaderEdit {
				return []HeaderEdit{{Kind: Replace, Name: "Subject", Value: "kept"}, {Kind: Remove, Field: spanOf(t, in, "Subject")}}
			},
			want: "From: a@src.test\r\nX-Tenant: acme\r\nSubject: kept\r\nx-tenant: other\r\n\r\nX-Tenant: body\r\n"},
		{name: "remove then replace by name: the field is set once, at the end",
			in: msg,
			edits: func(string) []HeaderEdit {
				return []HeaderEdit{{Kind: Remove, Name: "X-Tenant"}, {Kind: Replace, Name: "X-Tenant", Value: "beta"}}
			},
			want: "From: a@src.test\r\nSubject: one\r\n two\r\nX-Tenant: beta\r\n\r\nX-Tenant: body\r\n"},
		{name: "all header, last line without a line end",
			in:    "From: a@src.test\r\nDate: x",
			edits: func(string) []HeaderEdit { return []HeaderEdit{{Kind: Add, Name: "Message-ID", Value: "<1@h>"}} },
			want:  "From: a@src.test\r\nDate: x\r\nMessage-ID: <1@h>\r\n"},
		{name: "the unterminated last field removed: no empty line before the added one",
			in: "From: a@src.test\r\nX-Tenant: acme",
			edits: func(in string) []HeaderEdit {
				return []HeaderEdit{{Kind: Remove, Field: spanOf(t, in, "X-Tenant")}, {Kind: Add, Name: "Message-ID", Value: "<1@h>"}}
			},
			want: "From: a@src.test\r\nMessage-ID: <1@h>\r\n"},
		{name: "nothing added to an unterminated header: unchanged",
			in:    "From: a@src.test\r\nDate: x",
			edits: func(string) []HeaderEdit { return []HeaderEdit{{Kind: Remove, Name: "X-None"}} },
			want:  "From: a@src.test\r\nDate: x"},
		{name: "empty message",
			in:    "",
			edits: func(string) []HeaderEdit { return []HeaderEdit{{Kind: Add, Name: "Date", Value: "x"}} },
			want:  "Date: x\r\n"},
		{name: "empty header section",
			in:    "\r\nbody\r\n",
			edits: func(string) []HeaderEdit { return []HeaderEdit{{Kind: Add, Name: "Date", Value: "x"}} },
			want:  "Date: x\r\n\r\nbody\r\n"},
		{name: "bare LF empty line",
			in:    "From: a@src.test\r\nSubject: s\r\n\nbody",
			edits: func(string) []HeaderEdit { return []HeaderEdit{{Kind: Add, Name: "Date", Value: "x"}} },
			want:  "From: a@src.test\r\nSubject: s\r\nDate: x\r\n\nbody"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			edits := tc.edits(tc.in)
			dst := []byte("prefix")
			got, err := AppendEdited(dst, []byte(tc.in), edits)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != "prefix"+tc.want {
				t.Errorf("got\n%q\nwant\n%q", got[len("prefix"):], tc.want)
			}
			if max := EditedLen([]byte(tc.in), edits); len(tc.want) > max {
				t.Errorf("EditedLen %d < %d", max, len(tc.want))
			}
		})
	}
}

// TestAppendEditedRefuses: an edit that would not make one well-formed
// header field, or names a span that is not a field, fails and appends
// nothing.
func TestAppendEditedRefuses(t *testing.T) {
	const msg = "From: a@src.test\r\nSubject: s\r\n\r\nbody\r\n"
	for _, e := range []HeaderEdit{
		{Name: "X", Value: "no kind"},
		{Kind: Add, Name: "", Value: "v"},
		{Kind: Add, Name: "Bad Name", Value: "v"},
		{Kind: Add, Name: "Bad:Name", Value: "v"},
		{Kind: Add, Name: "Bad\u00e9", Value: "v"},
		{Kind: Add, Name: "X", Value: "v\r\nBcc: injected@evil.test"},
		{Kind: Replace, Name: "Subject", Value: "bare\nLF"},
		{Kind: Prepend, Name: "X", Value: "bare\rCR"},
		{Kind: Remove, Name: "X Y"},
		{Kind: Remove, Field: Span{2, 10}},
		{Kind: Remove, Field: Span{len(msg) - 6, len(msg)}}, // in the body
	} {
		got, err := AppendEdited([]byte("dst"), []byte(msg), []HeaderEdit{{Kind: Add, Name: "Date", Value: "x"}, e})
		if !errors.Is(err, errBadEdit) || string(got) != "dst" {
			t.Errorf("%+v: %q, %v; want errBadEdit and nothing appended", e, got, err)
		}
	}
}

// TestAppendEditedNoAlloc: with EditedLen bytes of room, applying the
// edits allocates nothing.
func TestAppendEditedNoAlloc(t *testing.T) {
	msg := []byte("From: a@src.test\r\nX-Tenant: acme\r\nSubject: s\r\n\r\nbody\r\n")
	edits := []HeaderEdit{
		{Kind: Remove, Field: spanOf(t, string(msg), "X-Tenant")},
		{Kind: Replace, Name: "Subject", Value: "t"},
		{Kind: Add, Name: "Date", Value: "Sun, 01 Mar 2026 12:00:00 +0100"},
		{Kind: Add, Name: "Message-ID", Value: "<1@h>"},
	}
	buf := make([]byte, 0, EditedLen(msg, edits))
	if n := testing.AllocsPerRun(100, func() {
		if _, err := AppendEdited(buf, msg, edits); err != nil {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Errorf("AppendEdited allocates %.0f times", n)
	}
}

// FuzzAppendEdited: on any message, edits of every kind never fail or
// panic, stay within EditedLen, keep the body, and leave a header section
// that starts with the prepended field and ends with the added one.
func FuzzAppendEdited(f *testing.F) {
	for _, s := range []string{"", "A: b\r\n\r\nbody", "A: b\n c\n\nx", " lead: x\r\n", "no colon\r\nB: c", "A: b", "\r\n", "Subject: x\r\nsubject: y\r\n\r\n"} {
		f.Add([]byte(s), uint8(0))
	}
	f.Fuzz(func(t *testing.T, msg []byte, pick uint8) {
		edits := []HeaderEdit{
			{Kind: Remove, Name: "A"},
			{Kind: Replace, Name: "Subject", Value: "replaced"},
			{Kind: Prepend, Name: "X-Top", Value: "1"},
			{Kind: Add, Name: "X-End", Value: "2"},
		}
		// A span edit on one of the message's fields, chosen by pick.
		i := 0
		for fd := range msgheader.Fields(msg) {
			if i == int(pick)%4 {
				edits = append(edits, HeaderEdit{Kind: Remove, Field: SpanOf(fd)})
			}
			i++
		}
		out, err := AppendEdited(nil, msg, edits)
		if err != nil {
			t.Fatal(err)
		}
		if len(out) > EditedLen(msg, edits) {
			t.Fatalf("%d bytes, EditedLen %d", len(out), EditedLen(msg, edits))
		}
		if !bytes.HasSuffix(out, msg[msgheader.SectionEnd(msg):]) {
			t.Fatalf("the body changed: %q", out)
		}
		var names []string
		for fd := range msgheader.Fields(out) {
			if fd.Is("X-Top") || fd.Is("X-End") {
				names = append(names, string(fd.Name))
			}
		}
		if len(names) < 2 || names[0] != "X-Top" || names[len(names)-1] != "X-End" {
			t.Fatalf("added fields %q in %q", names, out)
		}
	})
}
