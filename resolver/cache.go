package resolver

import (
	"sync"
	"time"
)

// ttlCache is a bounded map whose entries expire at a given instant. It is
// safe for concurrent use. When it is full, an insert first drops expired
// entries among a bounded sample and, if none was expired, one arbitrary
// entry: Go randomizes map iteration order, so this is random eviction,
// which needs no bookkeeping on the read path and is within a small factor
// of LRU for skewed (mail-like) domain popularity.
type ttlCache[K comparable, V any] struct {
	mu      sync.Mutex
	max     int
	entries map[K]cacheEntry[V]
}

type cacheEntry[V any] struct {
	value   V
	expires time.Time
}

// evictSample bounds the work an insert into a full cache does.
const evictSample = 32

func newTTLCache[K comparable, V any](max int) *ttlCache[K, V] {
	return &ttlCache[K, V]{max: max, entries: make(map[K]cacheEntry[V], min(max, 1024))}
}

// get returns the value for k and when it expires, if it has not expired at
// now.
func (c *ttlCache[K, V]) get(k K, now time.Time) (V, time.Time, bool) {
	c.mu.Lock()
	e, ok := c.entries[k]
	c.mu.Unlock()
	if !ok || !now.Before(e.expires) {
		var zero V
		return zero, time.Time{}, false
	}
	return e.value, e.expires, true
}

// put stores v under k until expires. Entries that are already expired are
// not stored.
func (c *ttlCache[K, V]) put(k K, v V, expires, now time.Time) {
	if !now.Before(expires) || c.max <= 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.entries[k]; !ok && len(c.entries) >= c.max {
		c.evictLocked(now)
	}
	c.entries[k] = cacheEntry[V]{value: v, expires: expires}
}

// evictLocked makes room for one entry.
func (c *ttlCache[K, V]) evictLocked(now time.Time) {
	var victim K
	found, dropped, seen := false, 0, 0
	for k, e := range c.entries {
		if !now.Before(e.expires) {
			delete(c.entries, k)
			dropped++
		} else if !found {
			victim, found = k, true
		}
		seen++
		if seen >= evictSample {
			break
		}
	}
	if dropped == 0 && found {
		delete(c.entries, victim)
	}
}

// delete removes k.
func (c *ttlCache[K, V]) delete(k K) {
	c.mu.Lock()
	delete(c.entries, k)
	c.mu.Unlock()
}

// len returns the number of entries, expired ones included.
func (c *ttlCache[K, V]) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.entries)
}
