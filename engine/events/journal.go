package events

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// segmentSize is the size past which a journal starts a new segment file.
const segmentSize = 8 << 20

// journal is one sink's durable queue: its records in sequence, each with
// a number (seq), in segment files named after the seq of their first
// record, and the sink's cursor. Records before the cursor are done
// (shipped, refused, expired or dropped); segments wholly before it are
// deleted. One goroutine appends (the sink's writer), one reads (its
// shipper); mu guards the shared positions.
type journal struct {
	dir string

	mu       sync.Mutex
	segs     []uint64 // first seq of each segment file, ascending
	head     uint64   // seq the next appended record gets
	next     uint64   // cursor: the first record not done
	batchEnd uint64   // > next: the batch in flight is [next, batchEnd) (kept across a restart)
	changed  chan struct{}

	// The writer goroutine's own.
	f      *os.File
	w      *bufio.Writer
	size   int64
	synced bool
}

// cursor is the content of the cursor file.
type cursor struct {
	Next     uint64 `json:"next"`
	BatchEnd uint64 `json:"batch_end,omitempty"`
}

const cursorFile = "cursor.json"

// openJournal opens (or creates) the journal in dir: it reads the cursor,
// finds the segments, and cuts a torn last line left by a crash.
func openJournal(dir string) (*journal, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	j := &journal{dir: dir, changed: make(chan struct{})}
	names, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	for _, de := range names {
		name := de.Name()
		if strings.HasSuffix(name, ".tmp") {
			os.Remove(filepath.Join(dir, name))
			continue
		}
		if !strings.HasSuffix(name, ".seg") {
			continue
		}
		first, err := strconv.ParseUint(strings.TrimSuffix(name, ".seg"), 16, 64)
		if err != nil {
			continue
		}
		j.segs = append(j.segs, first)
	}
	slices.Sort(j.segs)
	var c cursor
	if b, err := os.ReadFile(filepath.Join(dir, cursorFile)); err == nil {
		// A cursor that does not parse ships the journal again from its
		// start: at least once.
		_ = json.Unmarshal(b, &c)
	}
	j.next, j.batchEnd = c.Next, c.BatchEnd
	if len(j.segs) == 0 {
		j.head = j.next
	} else {
		last := j.segs[len(j.segs)-1]
		n, size, err := countLines(j.segPath(last))
		if err != nil {
			return nil, err
		}
		j.head = last + n
		if err := os.Truncate(j.segPath(last), size); err != nil {
			return nil, err
		}
		if j.next < j.segs[0] {
			j.next = j.segs[0]
		}
		if j.next > j.head {
			j.head = j.next
		}
	}
	if j.batchEnd <= j.next || j.batchEnd > j.head {
		j.batchEnd = 0
	}
	j.removeDoneLocked()
	return j, nil
}

func (j *journal) segPath(first uint64) string {
	return filepath.Join(j.dir, fmt.Sprintf("%016x.seg", first))
}

// countLines counts the complete lines of a segment and returns the size
// they take (a torn last line is not counted).
func countLines(path string) (n uint64, size int64, err error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	r := bufio.NewReaderSize(f, 256<<10)
	for {
		line, err := r.ReadSlice('\n')
		if err == bufio.ErrBufferFull {
			// A line longer than the buffer: keep reading it.
			rest, err2 := r.ReadBytes('\n')
			if err2 != nil {
				return n, size, nil
			}
			size += int64(len(line) + len(rest))
			n++
			continue
		}
		if err == io.EOF {
			return n, size, nil
		}
		if err != nil {
			return 0, 0, err
		}
		size += int64(len(line))
		n++
	}
}

// append writes lines (each ending in '\n', count of them) at the head
// and makes them visible to the reader. The bytes reach the operating
// system before append returns; sync makes them durable.
func (j *journal) append(lines []byte, count int) error {
	if count == 0 {
		return nil
	}
	j.mu.Lock()
	head := j.head
	j.mu.Unlock()
	if j.f == nil || j.size >= segmentSize {
		if err := j.rotate(head); err != nil {
			return err
		}
	}
	if _, err := j.w.Write(lines); err != nil {
		j.closeFile()
		return err
	}
	if err := j.w.Flush(); err != nil {
		j.closeFile()
		return err
	}
	j.size += int64(len(lines))
	j.synced = false
	j.mu.Lock()
	j.head += uint64(count)
	j.notifyLocked()
	j.mu.Unlock()
	return nil
}

// rotate closes the current segment (synced) and starts one whose first
// record is head.
func (j *journal) rotate(head uint64) error {
	if j.f != nil {
		if err := j.sync(); err != nil {
			return err
		}
		j.closeFile()
	}
	f, err := os.OpenFile(j.segPath(head), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return err
	}
	j.f, j.size = f, st.Size()
	if j.w == nil {
		j.w = bufio.NewWriterSize(f, 256<<10)
	} else {
		j.w.Reset(f)
	}
	j.mu.Lock()
	if n := len(j.segs); n == 0 || j.segs[n-1] != head {
		j.segs = append(j.segs, head)
	}
	j.mu.Unlock()
	return syncDir(j.dir)
}

func (j *journal) closeFile() {
	if j.f != nil {
		j.f.Close()
		j.f = nil
	}
}

// sync makes the appended records durable.
func (j *journal) sync() error {
	if j.f == nil || j.synced {
		return nil
	}
	j.synced = true
	return j.f.Sync()
}

// close syncs and closes the segment being written, and saves the cursor.
func (j *journal) close() error {
	err := j.sync()
	j.closeFile()
	j.mu.Lock()
	defer j.mu.Unlock()
	return errors.Join(err, j.saveCursorLocked())
}

func (j *journal) notifyLocked() {
	close(j.changed)
	j.changed = make(chan struct{})
}

// positions returns the cursor, the head, the batch in flight (0: none)
// and a channel closed at the next change.
func (j *journal) positions() (next, head, batchEnd uint64, changed <-chan struct{}) {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.next, j.head, j.batchEnd, j.changed
}

// backlog is how many records are not done.
func (j *journal) backlog() uint64 {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.head - j.next
}

// startBatch records that [from, end) is being shipped, so that a restart
// ships the same records again under the same key. It reports false when
// the cursor has moved past from meanwhile (the records were dropped).
func (j *journal) startBatch(from, end uint64) (bool, error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.next != from {
		return false, nil
	}
	if j.batchEnd == end {
		return true, nil
	}
	j.batchEnd = end
	return true, j.saveCursorLocked()
}

// done moves the cursor past end (the batch [.., end) is shipped or given
// up) and deletes the segments it leaves behind.
func (j *journal) done(end uint64) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	if end > j.next {
		j.next = end
	}
	if j.batchEnd <= j.next {
		j.batchEnd = 0
	}
	j.removeDoneLocked()
	j.notifyLocked()
	return j.saveCursorLocked()
}

// trim drops the oldest records so that at most max are not done; it
// returns how many it dropped.
func (j *journal) trim(max uint64) (uint64, error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.head-j.next <= max {
		return 0, nil
	}
	n := j.head - j.next - max
	j.next += n
	if j.batchEnd <= j.next {
		j.batchEnd = 0
	}
	j.removeDoneLocked()
	j.notifyLocked()
	return n, j.saveCursorLocked()
}

// removeDoneLocked deletes the segments whose records are all before the
// cursor (never the last one, which the writer may be appending to).
func (j *journal) removeDoneLocked() {
	for len(j.segs) > 1 && j.segs[1] <= j.next {
		os.Remove(j.segPath(j.segs[0]))
		j.segs = j.segs[1:]
	}
}

// saveCursorLocked writes the cursor file (a temporary file renamed over
// the old one). It is not synced: a crash of the process keeps it, and
// one of the machine at worst ships some records again.
func (j *journal) saveCursorLocked() error {
	b, _ := json.Marshal(cursor{Next: j.next, BatchEnd: j.batchEnd})
	tmp := filepath.Join(j.dir, cursorFile+".tmp")
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(j.dir, cursorFile))
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// reader reads a journal's records in order; used by the shipper only.
type reader struct {
	j   *journal
	seq uint64 // seq of the next line r returns
	seg uint64 // first seq of the open segment
	f   *os.File
	r   *bufio.Reader
}

func (rd *reader) close() {
	if rd.f != nil {
		rd.f.Close()
		rd.f = nil
	}
}

// read returns the record seq (a line without its newline; valid until
// the next call). seq must be below the head.
func (rd *reader) read(seq uint64) ([]byte, error) {
	rd.j.mu.Lock()
	segs := rd.j.segs
	i, found := slices.BinarySearch(segs, seq)
	if !found {
		i--
	}
	if i < 0 {
		rd.j.mu.Unlock()
		return nil, fmt.Errorf("events: record %d is before the journal", seq)
	}
	seg := segs[i]
	rd.j.mu.Unlock()
	if rd.f == nil || rd.seg != seg || seq < rd.seq {
		rd.close()
		f, err := os.Open(rd.j.segPath(seg))
		if err != nil {
			return nil, err
		}
		rd.f, rd.seg, rd.seq = f, seg, seg
		if rd.r == nil {
			rd.r = bufio.NewReaderSize(f, 256<<10)
		} else {
			rd.r.Reset(f)
		}
	}
	for {
		line, err := rd.r.ReadSlice('\n')
		if err == bufio.ErrBufferFull {
			rest, err2 := rd.r.ReadBytes('\n')
			if err2 != nil {
				rd.close()
				return nil, fmt.Errorf("events: segment %s: %w", rd.j.segPath(seg), err2)
			}
			line = append(append([]byte(nil), line...), rest...)
			err = nil
		}
		if err != nil {
			rd.close()
			return nil, fmt.Errorf("events: segment %s at record %d: %w", rd.j.segPath(seg), rd.seq, err)
		}
		rd.seq++
		if rd.seq-1 == seq {
			return bytes.TrimSuffix(line, []byte{'\n'}), nil
		}
	}
}

// syncEvery is how often the writer syncs a journal with new records.
const syncEvery = time.Second
