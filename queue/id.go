package queue

import (
	"crypto/rand"
	"io"
	"sync"
	"time"
)

// IDGenerator makes message ids: 20 characters of [0-9a-z] that sort in the
// order they were made (so the index, keyed by id, iterates in arrival
// order) and stay unique across restarts and across generators.
//
//	tttttttttcccc rrrrrrr
//	│        │    └ 7 random base-36 digits drawn once per generator (~36 bits)
//	│        └ 4-digit counter within the millisecond (1,679,616 per ms)
//	└ 9-digit Unix milliseconds (good until the year 5138)
//
// Within one generator ids strictly increase, even if the clock steps back
// or more than 36⁴ ids are made in one millisecond (the time part then runs
// ahead of the clock until the clock catches up). Across generators and
// restarts the time prefix orders ids and the random part keeps them apart.
type IDGenerator struct {
	now    func() time.Time
	suffix [idRandLen]byte

	mu    sync.Mutex
	ms    int64
	count int64
}

const (
	idTimeLen  = 9
	idCountLen = 4
	idRandLen  = 7
	idLen      = idTimeLen + idCountLen + idRandLen
	idDigits   = "0123456789abcdefghijklmnopqrstuvwxyz"
	idCountMax = 36 * 36 * 36 * 36
)

// NewIDGenerator returns a generator reading the time from now (time.Now when
// nil) and its random part from crypto/rand.
func NewIDGenerator(now func() time.Time) *IDGenerator {
	return NewIDGeneratorRand(now, rand.Reader)
}

// NewIDGeneratorRand is NewIDGenerator with the source of randomness given,
// for tests that need reproducible ids.
func NewIDGeneratorRand(now func() time.Time, random io.Reader) *IDGenerator {
	if now == nil {
		now = time.Now
	}
	g := &IDGenerator{now: now}
	var b [idRandLen]byte
	if _, err := io.ReadFull(random, b[:]); err != nil {
		// crypto/rand does not fail on supported platforms; fall back to
		// the clock's nanoseconds so ids stay usable.
		n := now().UnixNano()
		for i := range b {
			b[i] = byte(n >> (8 * i))
		}
	}
	for i, c := range b {
		g.suffix[i] = idDigits[int(c)%36]
	}
	return g
}

// Next returns a new id.
func (g *IDGenerator) Next() string {
	ms := g.now().UnixMilli()
	g.mu.Lock()
	if ms > g.ms {
		g.ms, g.count = ms, 0
	} else {
		g.count++
		if g.count == idCountMax {
			g.ms, g.count = g.ms+1, 0
		}
	}
	ms, count := g.ms, g.count
	g.mu.Unlock()

	var b [idLen]byte
	putBase36(b[:idTimeLen], ms)
	putBase36(b[idTimeLen:idTimeLen+idCountLen], count)
	copy(b[idTimeLen+idCountLen:], g.suffix[:])
	return string(b[:])
}

// putBase36 writes v as len(dst) base-36 digits, most significant first.
func putBase36(dst []byte, v int64) {
	if v < 0 {
		v = 0
	}
	for i := len(dst) - 1; i >= 0; i-- {
		dst[i] = idDigits[v%36]
		v /= 36
	}
}
