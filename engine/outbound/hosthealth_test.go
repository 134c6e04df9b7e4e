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
