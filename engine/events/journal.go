package events

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// segmentSize is the size past which a journal starts a new segment file
// (journal.segSize; tests make it smaller).
const segmentSize = 8 << 20

// journal is one sink's durable queue: its records in sequence, each with
// a number (seq), in segment files named after the seq of their first
// record, and the sink's cursor. Records before the cursor are done
// (shipped, refused, expired or dropped); segments wholly before it are
// deleted. One goroutine appends (the sink's writer), one reads (its
// shipper); mu guards the shared positions.
type journal struct {
	dir     string
	segSize int64

	mu       sync.Mutex
	segs     []uint64 // first seq of each segment file, ascending
	head     uint64   // seq the next appended record gets
	next     uint64   // cursor: the first record not done
	batchEnd uint64   // > next: the batch in flight is [next, batchEnd) (kept across a restart)
	dirty    bool     // the cursor moved since it was saved
	cursorF  *os.File // the cursor file, rewritten in place
	changed  chan struct{}

	// The writer goroutine's own.
	f      *os.File
	w      *bufio.Writer
	size   int64
	synced bool
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
const (
	cursorFile = "cursor"
	cursorSize = 64
)

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

// openJournal opens (or creates) the journal in dir: it reads the cursor,
// finds the segments, and cuts a torn last line left by a crash.
func openJournal(dir string) (*journal, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	j := &journal{dir: dir, segSize: segmentSize, changed: make(chan struct{})}
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
	if b, err := os.ReadFile(filepath.Join(dir, cursorFile)); err == nil {
		// A cursor that does not decode ships the journal again from its
		// start: at least once.
		j.next, j.batchEnd, _ = decodeCursor(b)
	}
	cf, err := os.OpenFile(filepath.Join(dir, cursorFile), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, err
	}
	j.cursorF = cf
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
	if j.f == nil || j.size >= j.segSize {
		if err := j.rotate(head); err != nil {
			return err
		}
	}
	_, err := j.w.Write(lines)
	if err == nil {
		err = j.w.Flush()
	}
	if err != nil {
		// Part of the lines may be in the file (a full disk): cut them, so
		// that the next record is numbered by its line again.
		j.f.Truncate(j.size)
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
	err = errors.Join(err, j.saveCursorLocked())
	if j.cursorF != nil {
		err = errors.Join(err, j.cursorF.Sync(), j.cursorF.Close())
		j.cursorF = nil
	}
	return err
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
// ships the same records again under the same key (a batch of one is
// named by its record: nothing to save). It reports false when the
// cursor has moved past from meanwhile (the records were dropped).
func (j *journal) startBatch(from, end uint64) (bool, error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.next != from {
		return false, nil
	}
	if j.batchEnd == end || end-from == 1 {
		return true, nil
	}
	j.batchEnd = end
	return true, j.saveCursorLocked()
}

// done moves the cursor past end (the batch [.., end) is shipped or given
// up) and deletes the segments it leaves behind. The cursor is saved by
// the next saveCursor (the writer's, every cursorEvery) or startBatch:
// a crash before ships those records again.
func (j *journal) done(end uint64) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if end > j.next {
		j.next = end
		j.dirty = true
	}
	if j.batchEnd <= j.next {
		j.batchEnd = 0
	}
	j.removeDoneLocked()
	j.notifyLocked()
}

// saveCursor saves the cursor when it moved since it was last saved.
func (j *journal) saveCursor() error {
	j.mu.Lock()
	defer j.mu.Unlock()
	if !j.dirty {
		return nil
	}
	return j.saveCursorLocked()
}

// trim drops the oldest records so that at most max are not done; it
// returns how many it dropped.
func (j *journal) trim(max uint64) uint64 {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.head-j.next <= max {
		return 0
	}
	n := j.head - j.next - max
	j.next += n
	j.dirty = true
	if j.batchEnd <= j.next {
		j.batchEnd = 0
	}
	j.removeDoneLocked()
	j.notifyLocked()
	return n
}

// removeDoneLocked deletes the segments whose records are all before the
// cursor (never the last one, which the writer may be appending to).
func (j *journal) removeDoneLocked() {
	for len(j.segs) > 1 && j.segs[1] <= j.next {
		os.Remove(j.segPath(j.segs[0]))
		j.segs = j.segs[1:]
	}
}

// saveCursorLocked rewrites the cursor file. It is not synced (but at
// close): a crash of the process keeps it, and one of the machine at
// worst ships some records again.
func (j *journal) saveCursorLocked() error {
	if j.cursorF == nil {
		return errors.New("events: journal closed")
	}
	if _, err := j.cursorF.WriteAt(encodeCursor(j.next, j.batchEnd), 0); err != nil {
		return err
	}
	j.dirty = false
	return nil
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

// syncEvery is how often the writer syncs a journal with new records;
// cursorEvery how often it saves a cursor that moved.
const (
	syncEvery   = time.Second
	cursorEvery = 100 * time.Millisecond
)
