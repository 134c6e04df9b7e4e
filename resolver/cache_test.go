package resolver

import (
	"fmt"
	"testing"
	"time"
)

func TestTTLCache(t *testing.T) {
	now := time.Unix(1000, 0)
	c := newTTLCache[string, int](3)
	c.put("a", 1, now.Add(time.Second), now)
	if v, exp, ok := c.get("a", now); !ok || v != 1 || !exp.Equal(now.Add(time.Second)) {
		t.Fatalf("get = %v %v %v", v, exp, ok)
	}
	if _, _, ok := c.get("a", now.Add(time.Second)); ok {
		t.Fatal("an entry is valid at its expiry instant")
	}
	c.put("gone", 1, now, now)
	if c.len() != 1 {
		t.Fatal("an already expired entry was stored")
	}
	// Full: expired entries go first.
	c.put("b", 2, now.Add(time.Hour), now)
	c.put("c", 3, now.Add(time.Hour), now)
	later := now.Add(time.Minute) // "a" has expired
	c.put("d", 4, later.Add(time.Hour), later)
	for _, k := range []string{"b", "c", "d"} {
		if _, _, ok := c.get(k, later); !ok {
			t.Fatalf("%s was evicted instead of the expired entry", k)
		}
	}
	// Full of live entries: one is evicted, the bound holds.
	for i := range 100 {
		c.put(fmt.Sprint(i), i, later.Add(time.Hour), later)
		if c.len() > 3 {
			t.Fatalf("cache holds %d entries, bound 3", c.len())
		}
	}
	// Replacing a key in a full cache evicts nothing.
	c.put("99", 0, later.Add(time.Hour), later)
	if v, _, ok := c.get("99", later); !ok || v != 0 || c.len() != 3 {
		t.Fatalf("replace: %v %v len %d", v, ok, c.len())
	}
	c.delete("99")
	if _, _, ok := c.get("99", later); ok {
		t.Fatal("delete did not delete")
	}
}

func BenchmarkTTLCacheGet(b *testing.B) {
	now := time.Unix(1000, 0)
	c := newTTLCache[question, answer](1000)
	k := question{name: "example.test.", qtype: 15}
	c.put(k, answer{}, now.Add(time.Hour), now)
	b.ReportAllocs()
	for b.Loop() {
		c.get(k, now)
	}
}
