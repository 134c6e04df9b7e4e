package engine

import (
	"bytes"
	"fmt"
	"testing"
)

// TestHotBodies: a message's content is there for its first attempt, once;
// a copy is kept, not the store path's buffer; the oldest entries give way
// to new ones, and nothing is kept past the byte budget.
func TestHotBodies(t *testing.T) {
	h := newHotBodies()
	buf := []byte("Subject: one\r\n\r\nbody\r\n")
	h.put("a", buf)
	buf[0] = 'X' // the store path reuses its buffer
	if b, ok := h.take("a"); !ok || !bytes.HasPrefix(b, []byte("Subject")) {
		t.Fatalf("take(a) = %q, %v", b, ok)
	}
	if _, ok := h.take("a"); ok {
		t.Fatal("a second take found the content again")
	}

	h.put("dropped", []byte("x\r\n"))
	h.drop("dropped")
	if _, ok := h.take("dropped"); ok {
		t.Fatal("a dropped id was found")
	}

	for i := range hotSlots + 10 {
		h.put(fmt.Sprint("m", i), []byte("x\r\n"))
	}
	if _, ok := h.take("m9"); ok {
		t.Error("m9 is still there after hotSlots newer entries")
	}
	if b, ok := h.take(fmt.Sprint("m", hotSlots+9)); !ok || string(b) != "x\r\n" {
		t.Errorf("the newest entry: %q, %v", b, ok)
	}

	h = newHotBodies()
	big := make([]byte, hotMaxBytes/2+1)
	h.put("big1", big)
	h.put("big2", big)
	if _, ok := h.take("big2"); ok {
		t.Error("big2 was kept past the byte budget")
	}
	if _, ok := h.take("big1"); !ok {
		t.Error("big1 was not kept")
	}
	h.put("big3", big)
	if _, ok := h.take("big3"); !ok {
		t.Error("big3 was not kept once big1 was taken")
	}
	if h.bytes != 0 || len(h.byID) != 0 {
		t.Errorf("after every take: %d bytes, %d ids held", h.bytes, len(h.byID))
	}
}
