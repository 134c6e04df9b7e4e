package outbound

import (
	"context"
	"testing"
	"time"
)

// connTokens refuses the first n tokens, each with a wait of d.
type connTokens struct {
	refuse int
	d      time.Duration
	asked  int
}

func (c *connTokens) TakeConnection(Path) (bool, time.Duration) {
	c.asked++
	if c.refuse > 0 {
		c.refuse--
		return false, c.d
	}
	return true, 0
}

// TestWaitSharedConnRate: a new connection waits for the cluster's token
// as long as it is told to, and gives up when its context ends.
func TestWaitSharedConnRate(t *testing.T) {
	m := &Manager{}
	if err := m.waitSharedConnRate(context.Background(), Path{}); err != nil {
		t.Fatalf("without a shared rate: %v", err)
	}
	tok := &connTokens{refuse: 2, d: 20 * time.Millisecond}
	m.opts.SharedConnRate = tok
	t0 := time.Now()
	if err := m.waitSharedConnRate(context.Background(), Path{}); err != nil || tok.asked != 3 {
		t.Fatalf("err %v after %d asks, want a token at the third", err, tok.asked)
	}
	if d := time.Since(t0); d < 40*time.Millisecond {
		t.Errorf("waited %v, want at least the two waits of 20ms", d)
	}
	tok.refuse, tok.d = 1, time.Hour
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if err := m.waitSharedConnRate(ctx, Path{}); err == nil {
		t.Fatal("no error when the context ended before a token")
	}
}
