package events

import (
	"errors"
	"hash/crc32"
	"os"
	"strconv"
	"strings"
)

// cursor is one sink's position in the journal: next, the first record
// not done for it, and batchEnd, the end of the batch being shipped (0:
// none), kept across a restart so that the same records go out again
// under the same key. owed counts the records of [next, head) the sink
// takes (its backlog). Guarded by the journal's mu.
type cursor struct {
	bit      uint32
	f        *os.File // the cursor file, rewritten in place
	next     uint64
	batchEnd uint64
	owed     uint64
	dirty    bool // moved since it was saved
}

// The cursor file holds one line of cursorSize bytes, rewritten in place:
//
//	next batch_end crc32(of "next batch_end")\n, padded with spaces
//
// in decimal. Rewriting a few bytes in place costs microseconds where a
// new file renamed over the old one cost half a millisecond here (ext4
// flushes the data of a file renamed over another). A line whose checksum
// does not match (a write torn by a power loss) counts as no cursor: the
// journal is shipped again from its first record, at least once.
const cursorSize = 64

func encodeCursor(next, batchEnd uint64) []byte {
	b := make([]byte, 0, cursorSize)
	b = strconv.AppendUint(b, next, 10)
	b = append(b, ' ')
	b = strconv.AppendUint(b, batchEnd, 10)
	b = append(b, ' ')
	b = strconv.AppendUint(b, uint64(crc32.ChecksumIEEE(b[:len(b)-1])), 10)
	for len(b) < cursorSize-1 {
		b = append(b, ' ')
	}
	return append(b, '\n')
}

func decodeCursor(b []byte) (next, batchEnd uint64, ok bool) {
	f := strings.Fields(string(b))
	if len(f) != 3 {
		return 0, 0, false
	}
	sum, err := strconv.ParseUint(f[2], 10, 32)
	if err != nil || uint32(sum) != crc32.ChecksumIEEE([]byte(f[0]+" "+f[1])) {
		return 0, 0, false
	}
	next, err1 := strconv.ParseUint(f[0], 10, 64)
	batchEnd, err2 := strconv.ParseUint(f[1], 10, 64)
	return next, batchEnd, err1 == nil && err2 == nil
}

// openCursor opens (or creates) the cursor file at path for sink i (bit
// 1<<i). A missing file starts at the head when newAtHead (a sink added
// to the configuration gets the records from now on), else at the first
// record; a file that does not decode starts at the first record (at
// least once).
func (j *journal) openCursor(path string, i int, newAtHead bool) error {
	c := &cursor{bit: 1 << i}
	b, err := os.ReadFile(path)
	switch {
	case err == nil:
		c.next, c.batchEnd, _ = decodeCursor(b)
	case errors.Is(err, os.ErrNotExist) && newAtHead:
		c.next = j.head
	case !errors.Is(err, os.ErrNotExist):
		return err
	}
	if c.f, err = os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644); err != nil {
		return err
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	if len(j.segs) > 0 {
		c.next = max(c.next, j.segs[0].first)
	}
	c.next = min(c.next, j.head)
	if c.batchEnd <= c.next || c.batchEnd > j.head {
		c.batchEnd = 0
	}
	c.owed = j.takenLocked(c.next, j.head, c.bit)
	for len(j.cursors) <= i {
		j.cursors = append(j.cursors, nil)
	}
	j.cursors[i] = c
	return c.save()
}

// save rewrites the cursor file. It is not synced (but at close): a crash
// of the process keeps it, and one of the machine at worst ships some
// records again.
func (c *cursor) save() error {
	if c.f == nil {
		return errors.New("events: journal closed")
	}
	if _, err := c.f.WriteAt(encodeCursor(c.next, c.batchEnd), 0); err != nil {
		return err
	}
	c.dirty = false
	return nil
}

func (c *cursor) close() error {
	if c.f == nil {
		return nil
	}
	err := errors.Join(c.save(), c.f.Sync(), c.f.Close())
	c.f = nil
	return err
}

// position is a sink's view of the journal.
type position struct {
	next, head, batchEnd uint64
	owed                 uint64 // records of [next, head) the sink takes
	changed              <-chan struct{}
}

// position returns sink i's position and a channel closed at the next
// change.
func (j *journal) position(i int) position {
	j.mu.Lock()
	defer j.mu.Unlock()
	c := j.cursors[i]
	return position{next: c.next, head: j.head, batchEnd: c.batchEnd, owed: c.owed, changed: j.changed}
}

// backlog is how many records sink i takes that are not done.
func (j *journal) backlog(i int) uint64 {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.cursors[i].owed
}

// span returns the end of sink i's next batch from next: up to max
// records it takes.
func (j *journal) span(i int, next, max uint64) uint64 {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.spanLocked(next, max, j.cursors[i].bit)
}

// startBatch records that [from, end), n records, is being shipped to
// sink i, so that a restart ships the same records again under the same
// key (a batch of one is named by its record: nothing to save). It
// reports false when the cursor has moved past from meanwhile (the
// records were dropped).
func (j *journal) startBatch(i int, from, end uint64, n int) (bool, error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	c := j.cursors[i]
	if c.next != from {
		return false, nil
	}
	if c.batchEnd == end || n == 1 {
		return true, nil
	}
	c.batchEnd = end
	return true, c.save()
}

// done moves sink i's cursor past end (the batch [.., end) is shipped or
// given up) and deletes the segments no sink needs. The cursor is saved
// by the next saveCursors (the writer's, every cursorEvery) or
// startBatch: a crash before ships those records again.
func (j *journal) done(i int, end uint64) {
	j.mu.Lock()
	defer j.mu.Unlock()
	c := j.cursors[i]
	j.advanceLocked(c, end, c.owed-j.takenLocked(c.next, max(end, c.next), c.bit))
}

// trim drops sink i's oldest records so that at most max are not done; it
// returns how many it dropped.
func (j *journal) trim(i int, max uint64) uint64 {
	j.mu.Lock()
	defer j.mu.Unlock()
	c := j.cursors[i]
	if c.owed <= max {
		return 0
	}
	n := c.owed - max
	j.advanceLocked(c, j.spanLocked(c.next, n, c.bit), max)
	return n
}

// skip moves sink i's cursor to the head when none of the records there
// are its own (it has nothing to ship; the segments can go).
func (j *journal) skip(i int) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if c := j.cursors[i]; c.owed == 0 && c.next < j.head {
		j.advanceLocked(c, j.head, 0)
	}
}

// advanceLocked moves cursor c forward to next, where owed of its records
// are left, and deletes the segments no sink needs.
func (j *journal) advanceLocked(c *cursor, next, owed uint64) {
	if next > c.next {
		c.next, c.owed, c.dirty = next, owed, true
	}
	if c.batchEnd <= c.next {
		c.batchEnd = 0
	}
	j.removeDoneLocked()
	j.notifyLocked()
}

// saveCursors saves the cursors that moved since they were last saved.
func (j *journal) saveCursors() error {
	j.mu.Lock()
	defer j.mu.Unlock()
	var err error
	for _, c := range j.cursors {
		if c != nil && c.dirty {
			err = errors.Join(err, c.save())
		}
	}
	return err
}
