package queue

import (
	"strings"
	"testing"
	"time"
)

func packedTestMessage() *Message {
	m := testMessage("ignored", 3)
	m.Created = time.Date(2026, 3, 2, 10, 0, 0, 123, time.UTC)
	m.NextDue = m.Created.Add(5 * time.Minute)
	m.Attempts, m.Size, m.Segment, m.Offset, m.Length = 2, 4321, 7, 65<<20, 1234
	m.Recipients[0].State, m.Recipients[0].Attempts, m.Recipients[0].LastReply = Delivered, 1, "250 2.0.0 ok"
	m.Recipients[1].Attempts, m.Recipients[1].LastReply = 2, "451 4.7.1 try later"
	m.Recipients[2].State, m.Recipients[2].LastReply = Bounced, strings.Repeat("550 5.1.1 long ", 20)
	m.RequireTLS = true
	return m
}

// sameMeta compares everything but the ID; times by instant.
func sameMeta(t *testing.T, got, want *Message) {
	t.Helper()
	if got.From != want.From || got.Tenant != want.Tenant || got.Campaign != want.Campaign ||
		got.Priority != want.Priority || !got.Created.Equal(want.Created) || !got.NextDue.Equal(want.NextDue) ||
		got.Attempts != want.Attempts || got.Size != want.Size || got.Segment != want.Segment ||
		got.Offset != want.Offset || got.Length != want.Length || len(got.Recipients) != len(want.Recipients) ||
		got.RequireTLS != want.RequireTLS {
		t.Fatalf("unpacked %+v\nwant     %+v", got, want)
	}
	for i := range want.Recipients {
		if got.Recipients[i] != want.Recipients[i] {
			t.Errorf("recipient %d = %+v, want %+v", i, got.Recipients[i], want.Recipients[i])
		}
	}
}

func TestPackRoundTrip(t *testing.T) {
	p := NewPacker(0)
	for _, m := range []*Message{packedTestMessage(), {ID: "empty"}} {
		pk := p.Pack(m)
		got, err := p.Unpacked("x", pk)
		if err != nil {
			t.Fatal(err)
		}
		if got.ID != "x" {
			t.Errorf("ID %q", got.ID)
		}
		sameMeta(t, got, m)
	}
}

// TestPackShares: a second message with the same sender, tenant, campaign
// and replies packs smaller than the first (those strings come from the
// table), and a table that is full still packs correctly, inline.
func TestPackShares(t *testing.T) {
	m := packedTestMessage()
	full := NewPacker(1)
	full.Pack(&Message{From: "fills@the.table"})
	inline := full.Pack(m)
	p := NewPacker(0)
	shared := p.Pack(m)
	// from, tenant, campaign and two short replies; the long one (300
	// bytes) stays inline.
	if n := p.Shared(); n != 5 {
		t.Errorf("table holds %d strings, want 5", n)
	}
	saved := len(m.From) + len(m.Tenant) + len(m.Campaign) + len(m.Recipients[0].LastReply) + len(m.Recipients[1].LastReply)
	if len(inline)-len(shared) != saved {
		t.Errorf("shared packing %d bytes, inline %d: want %d saved", len(shared), len(inline), saved)
	}
	if len(shared) > 300+120 {
		t.Errorf("packed %d bytes, want at most 420", len(shared))
	}
	for _, c := range []struct {
		p  *Packer
		pk Packed
	}{{full, inline}, {p, shared}, {p, p.Pack(m)}} {
		got, err := c.p.Unpacked("x", c.pk)
		if err != nil {
			t.Fatal(err)
		}
		sameMeta(t, got, m)
	}
}

// TestUnpackReuses: unpacking into the same scratch message allocates
// nothing, and the strings it yields stay valid after the next unpack.
func TestUnpackReuses(t *testing.T) {
	p := NewPacker(0)
	a, b := packedTestMessage(), packedTestMessage()
	b.Recipients[1].Addr = "other@else.example"
	pa, pb := p.Pack(a), p.Pack(b)
	var scratch Message
	if err := p.Unpack(pa, &scratch); err != nil {
		t.Fatal(err)
	}
	kept := scratch.Recipients[1].Addr
	allocs := testing.AllocsPerRun(100, func() {
		if err := p.Unpack(pb, &scratch); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Errorf("Unpack into scratch: %v allocations, want 0", allocs)
	}
	if kept != a.Recipients[1].Addr || scratch.Recipients[1].Addr != b.Recipients[1].Addr {
		t.Errorf("kept %q, scratch %q", kept, scratch.Recipients[1].Addr)
	}
}

// TestUnpackGarbage: truncations of a valid value fail cleanly.
func TestUnpackGarbage(t *testing.T) {
	p := NewPacker(0)
	pk := p.Pack(packedTestMessage())
	for i := range len(pk) {
		var m Message
		if err := p.Unpack(pk[:i], &m); err == nil {
			t.Fatalf("a value cut to %d of %d bytes unpacked", i, len(pk))
		}
	}
	var m Message
	if err := NewPacker(0).Unpack(pk, &m); err == nil {
		t.Error("a value unpacked by another Packer (missing table entries)")
	}
}

// FuzzUnpack: any string either unpacks or fails; it never panics, and
// what unpacks packs back to a value that unpacks to the same metadata.
func FuzzUnpack(f *testing.F) {
	p := NewPacker(0)
	f.Add(string(p.Pack(packedTestMessage())))
	f.Add(string(p.Pack(&Message{})))
	f.Add("\x01\x02\x03")
	f.Add("")
	f.Fuzz(func(t *testing.T, s string) {
		var m Message
		if err := p.Unpack(Packed(s), &m); err != nil {
			return
		}
		var again Message
		if err := p.Unpack(p.Pack(&m), &again); err != nil {
			t.Fatalf("repacked value does not unpack: %v", err)
		}
		sameMeta(t, &again, &m)
	})
}

func BenchmarkPack(b *testing.B) {
	p := NewPacker(0)
	m := &Message{From: "news@sender.example", Tenant: "acme", Campaign: "weekly",
		Created: time.Now(), NextDue: time.Now().Add(time.Hour), Attempts: 1, Size: 600,
		Segment: 3, Offset: 1 << 20, Length: 400,
		Recipients: []Recipient{{Addr: "user123456@d123.example", Attempts: 1, LastReply: "451 4.3.0 receiver down"}}}
	b.ReportAllocs()
	var pk Packed
	for b.Loop() {
		pk = p.Pack(m)
	}
	b.ReportMetric(float64(len(pk)), "bytes/packed")
}

func BenchmarkUnpack(b *testing.B) {
	p := NewPacker(0)
	pk := p.Pack(packedTestMessage())
	var m Message
	b.ReportAllocs()
	for b.Loop() {
		if err := p.Unpack(pk, &m); err != nil {
			b.Fatal(err)
		}
	}
}
