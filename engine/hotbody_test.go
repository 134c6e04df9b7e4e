package engine

import (
	"fmt"
	"testing"
	"time"
)

// TestHotBodies: a message's content is there for its first attempt, once;
// the oldest entries give way to new ones once they are hotMaxAge old, and
// their buffers go back to the pool, as do dropped ones; nothing is kept
// past the byte budget.
// TestHotBodyGoesBackWhole: the content an attempt took lies past the room
// left for signatures; when the attempt gives it back, the pool gets the
// whole buffer, of the capacity prepare asked for, not the content's tail
// of it (which the pool would file a class lower, where prepare never
// looks).
func TestHotBodyGoesBackWhole(t *testing.T) {
	var recycled [][]byte
	h := newHotBodies(func(b []byte) { recycled = append(recycled, b) })
	buf := make([]byte, 0, 128<<10)
	buf = append(buf, make([]byte, 1500)...) // the room not used by signatures
	buf = append(buf, "Subject: x\r\n\r\nbody\r\n"...)
	content := buf[1500:]
	h.put("a", content, buf, time.Now())
	got, ok := h.take("a")
	if !ok {
		t.Fatal("take found nothing")
	}
	hotStore{hot: h}.ReleaseBody(got)
	if len(recycled) != 1 {
		t.Fatalf("recycled %d buffers, want 1", len(recycled))
	}
	if cap(recycled[0]) != cap(buf) || &recycled[0][:1][0] != &buf[:1][0] {
		t.Fatalf("recycled a buffer of cap %d; want the whole buffer, cap %d", cap(recycled[0]), cap(buf))
	}
	// Bodies taken and never given back are forgotten past maxLentBytes.
	for i := range 2 * maxLentBytes / cap(buf) {
		b := make([]byte, 10, 128<<10)
		if !h.put(fmt.Sprint("n", i), b[1:], b, time.Now()) {
			t.Fatal("put kept nothing")
		}
		if _, ok := h.take(fmt.Sprint("n", i)); !ok {
			t.Fatal("take found nothing")
		}
		if h.lentBytes > maxLentBytes || h.lentBytes != len(h.lent)*cap(b) {
			t.Fatalf("after %d bodies never given back: %d lent, %d bytes", i+1, len(h.lent), h.lentBytes)
		}
	}
	other := []byte("read from the spool\r\n")
	hotStore{hot: h}.ReleaseBody(other)
	if len(recycled) != 2 || &recycled[1][0] != &other[0] {
		t.Fatal("a body not lent by take was not recycled as it is")
	}
}

func TestHotBodies(t *testing.T) {
	now := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	var recycled [][]byte
	h := newHotBodies(func(b []byte) { recycled = append(recycled, b) })
	buf := []byte("Received: x\r\nSubject: one\r\n\r\nbody\r\n")
	if !h.put("a", buf[len("Received: x\r\n"):], buf, now) {
		t.Fatal("put(a) kept nothing")
	}
	if b, ok := h.take("a"); !ok || string(b) != "Subject: one\r\n\r\nbody\r\n" {
		t.Fatalf("take(a) = %q, %v", b, ok)
	}
	if _, ok := h.take("a"); ok {
		t.Fatal("a second take found the content again")
	}

	h.put("dropped", []byte("x\r\n"), []byte("x\r\n"), now)
	h.drop("dropped")
	if _, ok := h.take("dropped"); ok {
		t.Fatal("a dropped id was found")
	}
	if len(recycled) != 1 || string(recycled[0]) != "x\r\n" {
		t.Fatalf("recycled after a drop: %q", recycled)
	}

	for i := range hotSlots + 10 {
		b := []byte(fmt.Sprint("m", i))
		at := now
		if i >= hotSlots {
			at = now.Add(hotMaxAge) // the first ones may give way now
		}
		h.put(string(b), b, b, at)
	}
	if _, ok := h.take("m9"); ok {
		t.Error("m9 is still there after hotSlots newer entries")
	}
	if h.put("fresh", []byte("x"), []byte("x"), now.Add(hotMaxAge/2)) {
		t.Error("a full ring of entries younger than hotMaxAge took one more")
	}
	if b, ok := h.take(fmt.Sprint("m", hotSlots+9)); !ok || string(b) != fmt.Sprint("m", hotSlots+9) {
		t.Errorf("the newest entry: %q, %v", b, ok)
	}
	if len(recycled) != 1+10 || string(recycled[1]) != "m0" {
		t.Errorf("recycled: %d buffers, want 11 from m0 on", len(recycled))
	}

	h = newHotBodies(func([]byte) {})
	big := make([]byte, hotMaxBytes/2+1)
	if !h.put("big1", big, big, now) || h.put("big2", big, big, now) {
		t.Fatal("the byte budget: want big1 kept, big2 not")
	}
	if _, ok := h.take("big1"); !ok {
		t.Error("big1 was not kept")
	}
	if !h.put("big3", big, big, now) {
		t.Error("big3 was not kept once big1 was taken")
	}
	h.take("big3")
	if h.bytes != 0 || len(h.byID) != 0 {
		t.Errorf("after every take: %d bytes, %d ids held", h.bytes, len(h.byID))
	}
}
