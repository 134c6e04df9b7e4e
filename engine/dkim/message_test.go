package dkim

import (
	"bytes"
	"strings"
	"testing"
)

func TestSplitHeader(t *testing.T) {
	msg := "From: a@example.com\r\nSubject: one\r\n two\r\nX-No-Colon\r\nTo : b@example.com\r\n\r\nbody\r\n"
	fs, body := splitHeader([]byte(msg), nil)
	var names, raws []string
	for _, f := range fs {
		names = append(names, string(f.Name))
		raws = append(raws, string(f.Raw))
	}
	if got := strings.Join(names, "|"); got != "From|Subject||To" {
		t.Errorf("names %q", got)
	}
	if raws[1] != "Subject: one\r\n two\r\n" {
		t.Errorf("folded field %q", raws[1])
	}
	if string(body) != "body\r\n" {
		t.Errorf("body %q", body)
	}
	if _, body := splitHeader([]byte("From: x\r\n"), nil); body != nil {
		t.Errorf("header-only message has body %q", body)
	}
	if got := pickField(fs, "to", 0); got == nil || string(got.Raw) != "To : b@example.com\r\n" {
		t.Errorf("pickField To = %+v", got)
	}
}

// FuzzSplitHeader checks, on arbitrary messages, that the header split
// accounts for every byte before the body, that every field name is the
// bytes before its colon, and that HeaderFromDomain never panics.
func FuzzSplitHeader(f *testing.F) {
	f.Add([]byte("From: a@example.com\r\nSubject:  x \r\n\ty\r\n\r\n a  b \r\n\r\n"))
	f.Add([]byte("A: X\r\nB : Y\t\r\n\tZ  \r\n\r\n C \r\nD \t E\r\n\r\n\r\n"))
	f.Add([]byte("no header end"))
	f.Add([]byte("\r\n\r\nbody only"))
	f.Add([]byte(" continuation first\r\nX: y\n\nbare lf\n"))
	f.Add([]byte("From: \"x@evil\" <<a@b.example>\r\n\r\n"))
	f.Fuzz(func(t *testing.T, msg []byte) {
		fs, body := splitHeader(msg, nil)
		n := 0
		for _, fl := range fs {
			if !bytes.HasPrefix(msg[n:], fl.Raw) {
				t.Fatalf("field %q is not at offset %d", fl.Raw, n)
			}
			n += len(fl.Raw)
			if fl.Name != nil && !bytes.HasPrefix(fl.Raw, fl.Name) {
				t.Fatalf("name %q not at the start of %q", fl.Name, fl.Raw)
			}
		}
		if body != nil && n+len(body) > len(msg) {
			t.Fatalf("header %d + body %d bytes > message %d", n, len(body), len(msg))
		}
		if body == nil && n != len(msg) {
			t.Fatalf("no body but fields cover %d of %d bytes", n, len(msg))
		}
		_ = HeaderFromDomain(msg)
	})
}
