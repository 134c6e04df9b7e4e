package outbound

import (
	"testing"
	"time"
)

func TestHostHealthBackoff(t *testing.T) {
	clk := &fakeClock{t: time.Unix(1000, 0)}
	h := newHostHealth(clk.Now, 10*time.Second, 40*time.Second)
	const a = "127.0.0.2:25"
	h.failed(a)
	if h.skip(a) {
		t.Fatal("one failure already skips the host")
	}
	h.failed(a)
	if !h.skip(a) {
		t.Fatal("two failures do not skip the host")
	}
	clk.Advance(11 * time.Second)
	if h.skip(a) {
		t.Fatal("still skipped after the 10s back-off")
	}
	h.failed(a) // third: 20s
	clk.Advance(15 * time.Second)
	if !h.skip(a) {
		t.Fatal("third failure: not skipped 15s later (want 20s)")
	}
	for i := 0; i < 10; i++ {
		h.failed(a)
	}
	clk.Advance(41 * time.Second)
	if h.skip(a) {
		t.Fatal("back-off exceeded its maximum")
	}
	h.succeeded(a)
	h.failed(a)
	if h.skip(a) {
		t.Fatal("success did not reset the failure count")
	}
	if h.skip("127.0.0.3:25") {
		t.Fatal("unknown host skipped")
	}
}

// The default back-off is capped well below the retry schedule's steps: an
// address that failed many times in a row is tried again within a minute.
func TestHostHealthDefaultCap(t *testing.T) {
	clk := &fakeClock{t: time.Unix(1000, 0)}
	m := New(Options{Now: clk.Now})
	defer m.Close()
	const a = "127.0.0.2:25"
	for range 50 { // a long outage
		m.health.failed(a)
	}
	if !m.health.skip(a) {
		t.Fatal("an address that keeps failing is not backed off")
	}
	clk.Advance(60 * time.Second)
	if m.health.skip(a) {
		t.Fatal("back-off after a long outage exceeds 60s")
	}
}

// When every address is in back-off, the one whose back-off ends first is
// still offered; otherwise only the healthy ones are, in order.
func TestHostHealthUsable(t *testing.T) {
	clk := &fakeClock{t: time.Unix(1000, 0)}
	h := newHostHealth(clk.Now, 10*time.Second, 40*time.Second)
	const a, b, c = "127.0.0.2:25", "127.0.0.3:25", "127.0.0.4:25"
	same := func(got []int, want ...int) bool {
		if len(got) != len(want) {
			return false
		}
		for i := range got {
			if got[i] != want[i] {
				return false
			}
		}
		return true
	}
	if got := h.usable([]string{a, b, c}); !same(got, 0, 1, 2) {
		t.Fatalf("fresh: %v", got)
	}
	for range 3 { // a: 20s
		h.failed(a)
	}
	h.failed(b) // b: 10s
	h.failed(b)
	if got := h.usable([]string{a, b, c}); !same(got, 2) {
		t.Fatalf("a and b backed off: %v, want [2]", got)
	}
	if got := h.usable([]string{a, b}); !same(got, 1) {
		t.Fatalf("all backed off: %v, want [1] (b's back-off ends first)", got)
	}
	if got := h.usable([]string{a}); !same(got, 0) {
		t.Fatalf("single address backed off: %v, want [0]", got)
	}
	clk.Advance(11 * time.Second)
	if got := h.usable([]string{a, b}); !same(got, 1) {
		t.Fatalf("after b's back-off: %v, want [1]", got)
	}
	if got := h.usable(nil); len(got) != 0 {
		t.Fatalf("no addresses: %v", got)
	}
}
