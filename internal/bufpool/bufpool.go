// Package bufpool keeps byte buffers of a few power-of-two size classes for
// reuse, so that the buffers a hot path needs once per message (a received
// body, a spool record) are not allocated and collected once per message.
//
// A Pool is a set of sync.Pools, one per class: a buffer nobody takes again
// is dropped by the garbage collector within two cycles, so an idle server
// pins no memory, and a burst of large messages does not leave large buffers
// behind for long. Buffers smaller than MinSize or larger than MaxSize are
// not kept: small ones are cheap to allocate and huge ones rare.
//
// A class keeps the address of each buffer's first byte, not a *[]byte:
// a pointer goes into a sync.Pool without an allocation, where boxing a
// slice header cost one per Put (up to five a message on the relay's
// path). Get rebuilds the buffer with its class's size as capacity, which
// the buffer's array covers (classBelow); that pointer keeps the whole
// array alive meanwhile.
package bufpool

import (
	"sync"
	"unsafe"
)

const (
	minShift = 12 // 4 KiB
	maxShift = 20 // 1 MiB
	nClasses = maxShift - minShift + 1

	// MinSize is the smallest capacity a Pool keeps.
	MinSize = 1 << minShift
	// MaxSize is the largest capacity a Pool keeps.
	MaxSize = 1 << maxShift
)

// Pool is a set of reusable byte buffers. The zero value is ready to use and
// safe for concurrent use; a Pool must not be copied after first use.
type Pool struct {
	classes [nClasses]sync.Pool
}

// Get returns an empty buffer with room for at least n bytes: a kept one
// when its class has any, else a new one of the class's full capacity (so
// that it can be kept after use). n above MaxSize gets a plain allocation.
func (p *Pool) Get(n int) []byte {
	if n > MaxSize {
		return make([]byte, 0, n)
	}
	c := classFor(n)
	if v := p.classes[c].Get(); v != nil {
		return unsafe.Slice(v.(*byte), 1<<(c+minShift))[:0]
	}
	return make([]byte, 0, 1<<(c+minShift))
}

// Put gives b back for reuse; the caller must not use b (or anything sharing
// its array) afterwards. It goes to the largest class whose size b's
// capacity covers, so that Get never returns less room than it promised.
func (p *Pool) Put(b []byte) {
	c := cap(b)
	if c < MinSize || c > MaxSize {
		return
	}
	p.classes[classBelow(c)].Put(unsafe.SliceData(b))
}

// classFor is the smallest class holding n bytes.
func classFor(n int) int {
	c := 0
	for size := MinSize; size < n; size <<= 1 {
		c++
	}
	return c
}

// classBelow is the largest class whose size is at most c (c ≥ MinSize).
func classBelow(c int) int {
	k := 0
	for size := MinSize << 1; size <= c && k < nClasses-1; size <<= 1 {
		k++
	}
	return k
}
