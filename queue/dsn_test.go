package queue

import (
	"bytes"
	"errors"
	"testing"
	"time"
)

// dsnTestMessage is a message with every DSN parameter (RFC 3461) set.
func dsnTestMessage() *Message {
	m := testMessage("dsn1", 3)
	m.Created = time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)
	m.Segment, m.Length = 1, 999
	m.DSNRet, m.EnvID = RetHeaders, "QQ+314=159"
	m.Recipients[0].Notify, m.Recipients[0].ORcpt = NotifySuccess|NotifyFailure, "rfc822;Orig+1@mail0.example"
	m.Recipients[1].Notify, m.Recipients[1].DelayWarned = NotifyDelay, true
	m.Recipients[2].Notify = NotifyNever
	return m
}

// withoutDSN returns a copy of m with no DSN parameters.
func withoutDSN(m *Message) *Message {
	c := *m
	c.Recipients = append([]Recipient(nil), m.Recipients...)
	clearDSN(&c)
	return &c
}

func sameDSN(t *testing.T, got, want *Message) {
	t.Helper()
	if got.DSNRet != want.DSNRet || got.EnvID != want.EnvID {
		t.Errorf("ret %d envid %q, want %d %q", got.DSNRet, got.EnvID, want.DSNRet, want.EnvID)
	}
	for i := range want.Recipients {
		if got.Recipients[i] != want.Recipients[i] {
			t.Errorf("recipient %d = %+v, want %+v", i, got.Recipients[i], want.Recipients[i])
		}
	}
}

// TestMetaDSN: the DSN section round-trips; a value without it (every
// value written before DSN existed) decodes with no DSN parameters; a cut
// or malformed section is corrupt.
func TestMetaDSN(t *testing.T) {
	m := dsnTestMessage()
	b := encodeMeta(nil, m)
	var got Message
	if err := decodeMeta(b, &got); err != nil {
		t.Fatal(err)
	}
	sameDSN(t, &got, m)

	plain := withoutDSN(m)
	old := encodeMeta(nil, plain)
	if bytes.IndexByte(old[len(old)-1:], dsnSection) >= 0 && plain.HasDSN() {
		t.Fatal("a message without DSN parameters has a DSN section")
	}
	got = Message{}
	if err := decodeMeta(old, &got); err != nil || got.HasDSN() {
		t.Fatalf("old value: %+v %v", got, err)
	}
	if len(old) >= len(b) {
		t.Errorf("the DSN section costs nothing? %d >= %d", len(old), len(b))
	}
	for i := len(old); i < len(b); i++ {
		if err := decodeMeta(b[:i], &got); i > len(old) && !errors.Is(err, ErrCorrupt) {
			t.Errorf("cut at %d: %v", i, err)
		}
	}
	bad := append([]byte(nil), b...)
	bad[len(old)+1] = 9 // RET out of range
	if err := decodeMeta(bad, &got); !errors.Is(err, ErrCorrupt) {
		t.Errorf("bad RET: %v", err)
	}
}

// TestPackDSN: the packed form keeps the DSN parameters, and unpacking a
// message without them into a reused Message clears them.
func TestPackDSN(t *testing.T) {
	p := NewPacker(0)
	m := dsnTestMessage()
	var got Message
	if err := p.Unpack(p.Pack(m), &got); err != nil {
		t.Fatal(err)
	}
	sameDSN(t, &got, m)
	plain := withoutDSN(m)
	if err := p.Unpack(p.Pack(plain), &got); err != nil {
		t.Fatal(err)
	}
	if got.HasDSN() {
		t.Fatalf("reused message keeps DSN fields: %+v", got)
	}
	pk := p.Pack(m)
	for i := len(p.Pack(plain)); i < len(pk); i++ {
		if err := p.Unpack(pk[:i], &got); err == nil && i > len(p.Pack(plain)) {
			t.Errorf("cut at %d: no error", i)
		}
	}
}

// TestSpoolDSNAfterReopen: the DSN parameters and the delay-warned flag
// are in the spool after a restart.
func TestSpoolDSNAfterReopen(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, Options{Dir: dir})
	m := dsnTestMessage()
	m.Recipients[1].DelayWarned = false
	if err := s.Append(m, testMail(1, 500)); err != nil {
		t.Fatal(err)
	}
	m.Recipients[1].DelayWarned = true
	if err := s.Update(m); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s = openTest(t, Options{Dir: dir})
	got := scanAll(t, s)["dsn1"]
	if got == nil {
		t.Fatal("message missing after reopen")
	}
	sameDSN(t, got, m)
}

// TestDSNAndRequireTLS: a message with both the REQUIRETLS flag and DSN
// parameters round-trips in the index value and in the packed form (the
// flags come first, then the DSN section).
func TestDSNAndRequireTLS(t *testing.T) {
	m := dsnTestMessage()
	m.RequireTLS = true
	var got Message
	if err := decodeMeta(encodeMeta(nil, m), &got); err != nil {
		t.Fatal(err)
	}
	if !got.RequireTLS {
		t.Error("index value: REQUIRETLS lost")
	}
	sameDSN(t, &got, m)
	p := NewPacker(0)
	got = Message{}
	if err := p.Unpack(p.Pack(m), &got); err != nil {
		t.Fatal(err)
	}
	if !got.RequireTLS {
		t.Error("packed: REQUIRETLS lost")
	}
	sameDSN(t, &got, m)
}

// TestXferredFlag: the Xferred flag round-trips in the index value and in
// the packed form, beside REQUIRETLS, each without the other.
func TestXferredFlag(t *testing.T) {
	for _, c := range []struct{ requireTLS, xferred bool }{{false, true}, {true, true}, {true, false}} {
		m := dsnTestMessage()
		m.RequireTLS, m.Xferred = c.requireTLS, c.xferred
		var got Message
		if err := decodeMeta(encodeMeta(nil, m), &got); err != nil {
			t.Fatal(err)
		}
		p := NewPacker(0)
		var packed Message
		if err := p.Unpack(p.Pack(m), &packed); err != nil {
			t.Fatal(err)
		}
		for name, g := range map[string]*Message{"index value": &got, "packed": &packed} {
			if g.RequireTLS != c.requireTLS || g.Xferred != c.xferred {
				t.Errorf("%s: RequireTLS %v Xferred %v, want %v %v", name, g.RequireTLS, g.Xferred, c.requireTLS, c.xferred)
			}
		}
	}
}
