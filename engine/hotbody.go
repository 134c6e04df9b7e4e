package engine

import (
	"sync"
	"time"

	"gannet/queue"
)

// Sizes of hotBodies: the content of the last hotSlots messages spooled,
// hotMaxBytes of it at most. At a few thousand messages a second a first
// attempt starts milliseconds after the spool append, so these cover the
// messages in flight with room to spare; when delivery falls behind, the
// older ones are read from the spool as before.
const (
	hotSlots    = 1024
	hotMaxBytes = 4 << 20
	// hotMaxAge: an entry younger than this is not replaced. Delivery takes
	// messages about in the order they came, so when it falls behind, the
	// oldest entries are the next to go out: replacing them by new ones
	// would leave the ring holding only messages that are not due yet.
	hotMaxAge = time.Second
)

// hotBodies keeps the content of each message the store path just spooled
// until the message's first delivery attempt takes it, so that the attempt
// does not read back and decompress from the segment what was written there
// a moment before (queue.Spool.Body: a read and, with compression on, a
// decompression per message). It keeps the store path's buffer itself, not
// a copy: an attempt takes it for good, and a buffer nobody took goes back
// to the pool (recycle) when its entry is dropped. It is a ring of hotSlots
// entries: a new entry replaces the oldest one, so a message never
// attempted (a suspended domain, a full queue) stays at most until hotSlots
// more have been spooled, and at least hotMaxAge. Safe for concurrent use.
type hotBodies struct {
	recycle func([]byte) // where a buffer nobody took goes
	mu      sync.Mutex
	slots   [hotSlots]hotBody
	next    int            // the slot the next entry takes
	byID    map[string]int // id → slot
	bytes   int            // capacity of the buffers held
	// lent maps the first byte of each content an attempt took to the
	// buffer it lies in, so that giveBack recycles the whole buffer. A
	// signed message's content starts past the room prepare left for
	// the signatures: recycled by itself, its smaller capacity would file
	// it a class below the one prepare asks for, and prepare would
	// allocate a new buffer for every message (in (c) of make bench, 120
	// KB a message). lentBytes is the capacity of the buffers in lent; past
	// maxLentBytes (bodies taken and never given back, as a DSN's copy of
	// the message) the map starts over, and the buffers in it are left to
	// the garbage collector.
	lent      map[*byte][]byte
	lentBytes int
}

// maxLentBytes bounds the buffers hotBodies.lent holds: room for the
// bodies of the attempts in flight.
const maxLentBytes = 4 * hotMaxBytes

type hotBody struct {
	id      string
	content []byte // the message, in buf
	buf     []byte
	at      time.Time // when it was spooled
}

func newHotBodies(recycle func([]byte)) *hotBodies {
	return &hotBodies{recycle: recycle, byID: make(map[string]int, hotSlots), lent: make(map[*byte][]byte)}
}

// put keeps content, the message id's content spooled at now, which lies in
// buf, and reports whether it did: then buf is the ring's. It keeps nothing
// when the oldest entry is younger than hotMaxAge (the ring is full of mail
// not attempted yet) or when hotMaxBytes would be passed.
func (h *hotBodies) put(id string, content, buf []byte, now time.Time) bool {
	if h == nil { // an Engine built without New, in tests
		return false
	}
	h.mu.Lock()
	if s := &h.slots[h.next]; s.content != nil && now.Sub(s.at) < hotMaxAge {
		h.mu.Unlock()
		return false
	}
	old := h.dropSlot(h.next)
	kept := len(content) > 0 && h.bytes+cap(buf) <= hotMaxBytes
	if kept {
		h.slots[h.next] = hotBody{id: id, content: content, buf: buf, at: now}
		h.byID[id] = h.next
		h.bytes += cap(buf)
	}
	h.next = (h.next + 1) % hotSlots
	h.mu.Unlock()
	if old != nil {
		h.recycle(old)
	}
	return kept
}

// take returns and forgets the content kept for id; false when none is.
func (h *hotBodies) take(id string) ([]byte, bool) {
	if h == nil {
		return nil, false
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	i, ok := h.byID[id]
	if !ok {
		return nil, false
	}
	content := h.slots[i].content
	buf := h.dropSlot(i) // the buffer is the attempt's now
	if h.lentBytes+cap(buf) > maxLentBytes {
		clear(h.lent)
		h.lentBytes = 0
	}
	h.lent[&content[0]] = buf
	h.lentBytes += cap(buf)
	return content, true
}

// giveBack recycles body, which an attempt is done with: the whole buffer
// it lies in when take lent it, else body itself (read from the spool).
func (h *hotBodies) giveBack(body []byte) {
	if len(body) > 0 {
		h.mu.Lock()
		if buf, ok := h.lent[&body[0]]; ok {
			delete(h.lent, &body[0])
			h.lentBytes -= cap(buf)
			body = buf
		}
		h.mu.Unlock()
	}
	h.recycle(body)
}

// drop forgets the content kept for id (a message taken out of the spool
// again before delivery could take it).
func (h *hotBodies) drop(id string) {
	if h == nil {
		return
	}
	h.mu.Lock()
	var old []byte
	if i, ok := h.byID[id]; ok {
		old = h.dropSlot(i)
	}
	h.mu.Unlock()
	if old != nil {
		h.recycle(old)
	}
}

// dropSlot empties slot i and returns the buffer it held, if any.
func (h *hotBodies) dropSlot(i int) []byte {
	s := &h.slots[i]
	if s.content == nil {
		return nil
	}
	buf := s.buf
	delete(h.byID, s.id)
	h.bytes -= cap(buf)
	*s = hotBody{}
	return buf
}

// hotStore is the spool as delivery sees it (delivery.Store): Body answers
// from hotBodies first, and the body of an ended transaction goes back to
// the pool the store path takes its buffers from (hotBodies.recycle).
type hotStore struct {
	*queue.Spool
	hot *hotBodies
}

// ReleaseBody takes back a body Body returned, once its transaction has
// ended: whether it came from the ring or the spool, nothing else holds it.
func (s hotStore) ReleaseBody(body []byte) {
	if s.hot != nil {
		s.hot.giveBack(body)
	}
}

// Body returns m's content: the copy the store path kept, else the
// spool's.
func (s hotStore) Body(m *queue.Message) ([]byte, error) {
	if b, ok := s.hot.take(m.ID); ok {
		return b, nil
	}
	return s.Spool.Body(m)
}
