package queue

import (
	"bytes"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestIDGeneratorOrderedAndUnique(t *testing.T) {
	now := time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	g := NewIDGenerator(clock)
	seen := map[string]bool{}
	prev := ""
	for i := range 20000 {
		if i%5000 == 4999 {
			mu.Lock()
			now = now.Add(-time.Second) // the clock steps back: ids must still grow
			mu.Unlock()
		} else if i%7 == 0 {
			mu.Lock()
			now = now.Add(time.Millisecond)
			mu.Unlock()
		}
		id := g.Next()
		if len(id) != 20 || strings.Trim(id, idDigits) != "" {
			t.Fatalf("id %q: want 20 chars of [0-9a-z]", id)
		}
		if id <= prev {
			t.Fatalf("id %q after %q: not increasing", id, prev)
		}
		if seen[id] {
			t.Fatalf("duplicate id %q", id)
		}
		seen[id] = true
		prev = id
	}
}

func TestIDGeneratorAcrossRestarts(t *testing.T) {
	now := time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	// Two generators started in the same millisecond (a restart, or two
	// processes) still never collide: their random parts differ.
	a := NewIDGenerator(clock)
	b := NewIDGenerator(clock)
	ida, idb := a.Next(), b.Next()
	if ida == idb {
		t.Fatalf("two generators made the same id %q", ida)
	}
	if ida[:13] != idb[:13] {
		t.Fatalf("same instant, different time/counter prefix: %q %q", ida, idb)
	}
	// A generator started later makes ids that sort after earlier ones.
	later := NewIDGenerator(func() time.Time { return now.Add(time.Millisecond) })
	if id := later.Next(); id <= ida || id <= idb {
		t.Fatalf("later id %q does not sort after %q, %q", id, ida, idb)
	}
	// Reproducible with a fixed random source.
	r1 := NewIDGeneratorRand(clock, bytes.NewReader([]byte("1234567"))).Next()
	r2 := NewIDGeneratorRand(clock, bytes.NewReader([]byte("1234567"))).Next()
	if r1 != r2 {
		t.Fatalf("same random source, ids %q and %q", r1, r2)
	}
}

func TestIDGeneratorCounterOverflow(t *testing.T) {
	now := time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)
	g := NewIDGenerator(func() time.Time { return now })
	first := g.Next()
	g.mu.Lock()
	g.count = idCountMax - 2
	g.mu.Unlock()
	a, b := g.Next(), g.Next()
	if !(first < a && a < b) || a[:idTimeLen] != first[:idTimeLen] || b[:idTimeLen] == a[:idTimeLen] {
		t.Fatalf("counter overflow: %q %q %q", first, a, b)
	}
}

func BenchmarkIDNext(b *testing.B) {
	g := NewIDGenerator(nil)
	b.ReportAllocs()
	for b.Loop() {
		g.Next()
	}
}
