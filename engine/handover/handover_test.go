package handover

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"
)

const spooled = "Received: from app by node-a\r\nDKIM-Signature: v=1; a=rsa-sha256; d=src.test\r\nFrom: a@src.test\r\nSubject: hi\r\n\r\nbody\r\n"

var meta = Meta{Node: "node-a", From: "127.0.0.1:2525", ID: "0mxd1", Tenant: "acme corp", Campaign: "spring;sale",
	Received: time.Unix(1765140000, 0).UTC(), Attempts: 3, Hops: 1, Signed: true}

// TestRoundTrip: a field made with the secret verifies with it, gives back
// every value (spaces and semicolons included), and the message under it
// unchanged; the receiving node's own Received field above it does not
// matter.
func TestRoundTrip(t *testing.T) {
	msg := Prepend("s3cret", meta, []byte(spooled))
	if !bytes.HasPrefix(msg, []byte(HeaderName+": v=1;\r\n node=node-a;")) || !bytes.HasSuffix(msg, []byte(spooled)) {
		t.Fatalf("Prepend:\n%s", msg)
	}
	withTrace := append([]byte("Received: from node-a by node-b\r\n"), msg...)
	got, rest, err := Verify("s3cret", withTrace)
	if err != nil || got != meta {
		t.Fatalf("Verify = %+v, %v; want %+v", got, err, meta)
	}
	if want := "Received: from node-a by node-b\r\n" + spooled; string(rest) != want {
		t.Errorf("rest:\n%q\nwant\n%q", rest, want)
	}
	if p, ok := Parse(withTrace); !ok || p != meta {
		t.Errorf("Parse = %+v, %v", p, ok)
	}
}

// TestForgeries: another secret, an altered value, a field moved onto
// another message, or no field at all do not verify; the field is
// stripped all the same.
func TestForgeries(t *testing.T) {
	msg := Prepend("s3cret", meta, []byte(spooled))
	altered := bytes.Replace(msg, []byte("tenant=acme+corp"), []byte("tenant=evil"), 1)
	moved := append(msg[:len(msg)-len(spooled):len(msg)-len(spooled)], strings.Replace(spooled, "body", "other", 1)...)
	for name, c := range map[string]struct {
		secret string
		msg    []byte
		want   error
	}{
		"other secret": {"guess", msg, ErrBadMAC},
		"no secret":    {"", msg, ErrBadMAC},
		"altered":      {"s3cret", altered, ErrBadMAC},
		"moved":        {"s3cret", moved, ErrBadMAC},
		"none":         {"s3cret", []byte(spooled), ErrNoField},
	} {
		_, rest, err := Verify(c.secret, c.msg)
		if !errors.Is(err, c.want) {
			t.Errorf("%s: err %v, want %v", name, err, c.want)
		}
		if bytes.Contains(rest, []byte(HeaderName)) || !bytes.Contains(rest, []byte("From: a@src.test")) {
			t.Errorf("%s: rest keeps the field or loses the message:\n%s", name, rest)
		}
	}
	if _, _, err := Verify("s3cret", []byte(HeaderName+": v=2; id=x; mac=y\r\n\r\n")); err == nil || errors.Is(err, ErrBadMAC) {
		t.Errorf("version 2: err %v, want a parse error", err)
	}
}

// TestStripAndPassword: Strip removes every field (folded too) and leaves
// a message without one as it is; the password is the secret's, checked
// in constant time, never with no secret.
func TestStripAndPassword(t *testing.T) {
	in := "x-gannet-xfer: v=1;\r\n id=a\r\nFrom: a@b.test\r\nX-Gannet-Xfer: other\r\n\r\nX-Gannet-Xfer: in the body\r\n"
	if got := string(Strip([]byte(in))); got != "From: a@b.test\r\n\r\nX-Gannet-Xfer: in the body\r\n" {
		t.Errorf("Strip = %q", got)
	}
	plain := []byte(spooled)
	if got := Strip(plain); &got[0] != &plain[0] {
		t.Error("Strip copied a message without the field")
	}
	if !CheckPassword("s3cret", Password("s3cret")) || CheckPassword("s3cret", Password("other")) || CheckPassword("", Password("")) {
		t.Error("CheckPassword accepts a wrong password or an empty secret, or refuses the right one")
	}
}

// BenchmarkStripNoField is what every message received from a client
// costs: one pass over a header section of about 1 KB without the field.
func BenchmarkStripNoField(b *testing.B) {
	msg := []byte(strings.Repeat("X-Header-Of-Some-Length: with a value of some length too, as mail has\r\n", 14) +
		"Subject: hi\r\n\r\n" + strings.Repeat("body line\r\n", 200))
	b.ReportAllocs()
	b.SetBytes(int64(len(msg)))
	for b.Loop() {
		if out := Strip(msg); len(out) != len(msg) {
			b.Fatal("stripped")
		}
	}
}
