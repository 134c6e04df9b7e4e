package delivery

import "sort"

// msgTable finds the loop's messages by id. Mail enqueued one by one goes
// into a map; the queue that Load reads at startup, which comes in id
// order and may hold millions of messages, goes into a sorted slice: 8
// bytes a message instead of the 40–56 a map entry costs, and no hashing
// or rehashing while it loads. A forgotten message leaves a nil slot; the
// slice is compacted when half of it is nil. Every method is called with
// Loop.mu held.
//
// Lookups in the slice go through fences, the id at every fenceStep-th
// slot when it was appended: a binary search over the fences finds the
// block that may hold an id, and a scan of that block's non-nil slots
// finds it. The fences keep working as slots turn nil.
type msgTable struct {
	byID    map[string]*msgState
	loaded  []*msgState // sorted by id
	fences  []string    // loaded[k*fenceStep].id when appended
	nLoaded int         // non-nil slots of loaded
	lastID  string      // the id last appended to loaded
}

const fenceStep = 64

func newMsgTable() msgTable { return msgTable{byID: make(map[string]*msgState)} }

// len returns the number of messages.
func (t *msgTable) len() int { return len(t.byID) + t.nLoaded }

// get returns the message with this id, nil when there is none.
func (t *msgTable) get(id string) *msgState {
	if ms := t.byID[id]; ms != nil {
		return ms
	}
	k := sort.Search(len(t.fences), func(i int) bool { return t.fences[i] > id }) - 1
	if k < 0 {
		return nil
	}
	for _, ms := range t.loaded[k*fenceStep : min((k+1)*fenceStep, len(t.loaded))] {
		if ms != nil && ms.id == id {
			return ms
		}
	}
	return nil
}

// add puts a message in the map.
func (t *msgTable) add(ms *msgState) { t.byID[ms.id] = ms }

// growLoaded makes room for n loaded messages.
func (t *msgTable) growLoaded(n int) {
	if cap(t.loaded)-len(t.loaded) < n {
		grown := make([]*msgState, len(t.loaded), len(t.loaded)+n)
		copy(grown, t.loaded)
		t.loaded = grown
	}
}

// appendLoaded puts a loaded message at the end of the slice, or, when
// its id does not sort after the last one there, in the map.
func (t *msgTable) appendLoaded(ms *msgState) {
	if t.lastID != "" && t.lastID >= ms.id {
		t.add(ms)
		return
	}
	if len(t.loaded)%fenceStep == 0 {
		t.fences = append(t.fences, ms.id)
	}
	t.loaded = append(t.loaded, ms)
	t.lastID = ms.id
	t.nLoaded++
}

// remove drops ms if the table holds it.
func (t *msgTable) remove(ms *msgState) {
	if t.byID[ms.id] == ms {
		delete(t.byID, ms.id)
		return
	}
	k := sort.Search(len(t.fences), func(i int) bool { return t.fences[i] > ms.id }) - 1
	if k < 0 {
		return
	}
	block := t.loaded[k*fenceStep : min((k+1)*fenceStep, len(t.loaded))]
	for i := range block {
		if block[i] == ms {
			block[i] = nil
			t.nLoaded--
			if t.nLoaded < len(t.loaded)/2 && len(t.loaded) >= 4*fenceStep {
				t.compact()
			}
			return
		}
	}
}

// compact drops the nil slots and rebuilds the fences.
func (t *msgTable) compact() {
	live := make([]*msgState, 0, t.nLoaded)
	fences := make([]string, 0, t.nLoaded/fenceStep+1)
	for _, ms := range t.loaded {
		if ms == nil {
			continue
		}
		if len(live)%fenceStep == 0 {
			fences = append(fences, ms.id)
		}
		live = append(live, ms)
	}
	t.loaded, t.fences = live, fences
}

// each calls fn for every message, in no particular order.
func (t *msgTable) each(fn func(*msgState)) {
	for _, ms := range t.byID {
		fn(ms)
	}
	for _, ms := range t.loaded {
		if ms != nil {
			fn(ms)
		}
	}
}
