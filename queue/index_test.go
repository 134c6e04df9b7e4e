package queue

import (
	"errors"
	"reflect"
	"testing"
	"time"
)

func TestMetaRoundTrip(t *testing.T) {
	created := time.Date(2026, 3, 2, 10, 0, 0, 123, time.UTC)
	m := &Message{
		ID: "ignored", From: "b@shop.example", Tenant: "acme", Campaign: "spring", Priority: 1,
		Created: created, NextDue: created.Add(5 * time.Minute), Attempts: 3, Size: 12345,
		Segment: 7, Offset: 1 << 33, Length: 999,
		Recipients: []Recipient{
			{Addr: "a@x.example", State: Delivered, Attempts: 1, LastReply: "250 2.0.0 ok"},
			{Addr: "b@x.example", State: Pending, Attempts: 3, LastReply: "451 4.7.1 greylisted"},
			{Addr: "c@y.example", State: Bounced, Attempts: 2, LastReply: "550 5.1.1 no such user"},
			{Addr: "d@y.example", State: Expired},
		},
		RequireTLS: true,
	}
	b := encodeMeta(nil, m)
	var got Message
	if err := decodeMeta(b, &got); err != nil {
		t.Fatal(err)
	}
	got.ID = m.ID
	if !got.Created.Equal(m.Created) || !got.NextDue.Equal(m.NextDue) {
		t.Fatalf("times %v %v, want %v %v", got.Created, got.NextDue, m.Created, m.NextDue)
	}
	got.Created, got.NextDue = m.Created, m.NextDue
	if !reflect.DeepEqual(&got, m) {
		t.Fatalf("round trip:\n got %+v\nwant %+v", got, *m)
	}

	// Zero times stay zero; a message without recipients is fine.
	var z Message
	if err := decodeMeta(encodeMeta(nil, &Message{Segment: 1, Length: 40}), &z); err != nil || !z.Created.IsZero() || !z.NextDue.IsZero() || len(z.Recipients) != 0 {
		t.Fatalf("zero message: %+v, %v", z, err)
	}

	// A value written before the flags were added (it ends after the last
	// recipient) still loads, without REQUIRETLS.
	var old Message
	if err := decodeMeta(b[:len(b)-1], &old); err != nil || old.RequireTLS || len(old.Recipients) != 4 {
		t.Fatalf("value without flags: %+v, %v", old, err)
	}
	// Unknown flags are corrupt.
	if err := decodeMeta(append(b[:len(b)-1:len(b)-1], 4), &got); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("unknown flag: err = %v", err)
	}

	// Truncations and trailing bytes are corrupt, never a panic.
	for i := 0; i < len(b)-1; i++ {
		if err := decodeMeta(b[:i], &got); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("truncated to %d: err = %v", i, err)
		}
	}
	if err := decodeMeta(append(b, 0), &got); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("trailing byte: err = %v", err)
	}
}

// FuzzMetaDecode feeds arbitrary bytes to the metadata decoder: it must
// never panic, the decoder Scan uses (decodeMetaShared, with its string
// table) must agree with it, and whatever it accepts must survive encoding
// and decoding again unchanged. Seeds beyond these: testdata/fuzz.
func FuzzMetaDecode(f *testing.F) {
	created := time.Unix(1772445600, 0)
	f.Add(encodeMeta(nil, &Message{Segment: 1, Length: 40}))
	f.Add(encodeMeta(nil, &Message{From: "a@b.example", Created: created, Segment: 1, Length: 40,
		Recipients: []Recipient{{Addr: "r@x.example", State: Bounced, Attempts: 2, LastReply: "550 5.1.1 no"}}}))
	f.Add([]byte{metaVersion})
	f.Fuzz(func(t *testing.T, b []byte) {
		var m, shared Message
		err := decodeMeta(b, &m)
		serr := decodeMetaShared(b, &shared, newInterner(2), nil)
		if (err == nil) != (serr == nil) {
			t.Fatalf("decodeMeta: %v; decodeMetaShared: %v", err, serr)
		}
		if err != nil {
			if !errors.Is(err, ErrCorrupt) || !errors.Is(serr, ErrCorrupt) {
				t.Fatalf("errors %v, %v do not wrap ErrCorrupt", err, serr)
			}
			return
		}
		if !reflect.DeepEqual(m, shared) {
			t.Fatalf("decodeMetaShared differs:\n plain  %+v\n shared %+v", m, shared)
		}
		var again Message
		if err := decodeMeta(encodeMeta(nil, &m), &again); err != nil {
			t.Fatalf("re-encoded metadata does not decode: %v", err)
		}
		if !reflect.DeepEqual(m, again) {
			t.Fatalf("re-decoding differs:\n first  %+v\n second %+v", m, again)
		}
	})
}
