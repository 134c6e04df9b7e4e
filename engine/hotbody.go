package engine

import (
	"sync"

	"gannet/queue"
)

// Sizes of hotBodies: the content of the last hotSlots messages spooled,
// hotMaxBytes of it at most. At a few thousand messages a second a first
// attempt starts milliseconds after the spool append, so these cover the
// messages in flight with room to spare; when delivery falls behind, the
// older ones are read from the spool as before.
const (
	hotSlots    = 2048
	hotMaxBytes = 4 << 20
)

// hotBodies keeps a copy of the content of each message the store path
// just spooled until the message's first delivery attempt takes it, so that
// the attempt does not read back and decompress from the segment what was
// written there a moment before (queue.Spool.Body: a read and, with
// compression on, a decompression per message). It is a ring of hotSlots
// entries: a new entry replaces the oldest one, so a message never
// attempted (a suspended domain, a full queue) stays at most until
// hotSlots more have been spooled. Safe for concurrent use.
type hotBodies struct {
	mu    sync.Mutex
	slots [hotSlots]hotBody
	next  int            // the slot the next entry takes
	byID  map[string]int // id → slot
	bytes int            // content held
}

type hotBody struct {
	id      string
	content []byte
}

func newHotBodies() *hotBodies {
	return &hotBodies{byID: make(map[string]int, hotSlots)}
}

// put keeps a copy of content, the message id's spooled content; it keeps
// nothing when hotMaxBytes would be passed.
func (h *hotBodies) put(id string, content []byte) {
	if h == nil { // an Engine built without New, in tests
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.dropSlot(h.next)
	if len(content) > 0 && h.bytes+len(content) <= hotMaxBytes {
		h.slots[h.next] = hotBody{id: id, content: append([]byte(nil), content...)}
		h.byID[id] = h.next
		h.bytes += len(content)
	}
	h.next = (h.next + 1) % hotSlots
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
	h.dropSlot(i)
	return content, true
}

// drop forgets the content kept for id (a message taken out of the spool
// again before delivery could take it).
func (h *hotBodies) drop(id string) {
	if h == nil {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if i, ok := h.byID[id]; ok {
		h.dropSlot(i)
	}
}

func (h *hotBodies) dropSlot(i int) {
	s := &h.slots[i]
	if s.content == nil {
		return
	}
	delete(h.byID, s.id)
	h.bytes -= len(s.content)
	*s = hotBody{}
}

// hotStore is the spool as delivery sees it (delivery.Store): Body answers
// from hotBodies first.
type hotStore struct {
	*queue.Spool
	hot *hotBodies
}

// Body returns m's content: the copy the store path kept, else the
// spool's.
func (s hotStore) Body(m *queue.Message) ([]byte, error) {
	if b, ok := s.hot.take(m.ID); ok {
		return b, nil
	}
	return s.Spool.Body(m)
}
