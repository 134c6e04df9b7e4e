package events

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
)

// segmentSize is the size past which the journal starts a new segment
// file (journal.segSize; tests make it smaller).
const segmentSize = 8 << 20

// maxSinks is how many sinks one journal serves: a record's sinks are the
// bits of a uint32.
const maxSinks = 32

// journal is the durable queue of records: every record any sink takes,
// once, in sequence, each with a number (seq), in segment files named
// after the seq of their first record; and one cursor per sink (cursor.go).
// Records before a sink's cursor are done for that sink; segments wholly
// before every cursor are deleted.
//
// An index in memory holds, per record, where its line starts in its
// segment and which sinks take it (a bit per sink), so that a sink reads
// a batch as one byte range (one read from the page cache), skips the
// records it does not take without reading them, and knows its backlog.
// The index is built when the journal is opened (every segment is read
// once) and grows with each append.
//
// One goroutine appends (the Shipper's writer); each sink's shipper reads;
// mu guards the index, the head and the cursors.
type journal struct {
	dir     string
	segSize int64

	mu      sync.Mutex
	segs    []*segment // ascending
	head    uint64     // seq the next appended record gets
	cursors []*cursor  // by sink bit
	changed chan struct{}

	// The writer goroutine's own.
	f      *os.File // the last segment, open for appending
	synced bool
}

// segment is one segment file's part of the index.
type segment struct {
	first uint64   // seq of its first record
	offs  []uint32 // where each record's line starts
	masks []uint32 // the sinks that take each record
	size  int64    // bytes of complete lines
}

// records is how many records the segment holds.
func (s *segment) records() uint64 { return uint64(len(s.offs)) }

// lineEnd is where record i's line ends (after its newline).
func (s *segment) lineEnd(i int) int64 {
	if i+1 < len(s.offs) {
		return int64(s.offs[i+1])
	}
	return s.size
}

// classifier says which sinks take a record, from its journal header
// (type, tenant): the bits of the sinks' positions.
type classifier func(typ, tenant []byte) uint32

// openJournal opens (or creates) the journal whose segments are the
// *.seg files of dir: it indexes the records (classify gives each one's
// sinks) and cuts a torn last line left by a crash. Cursors are added by
// openCursor.
func openJournal(dir string, classify classifier) (*journal, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	j := &journal{dir: dir, segSize: segmentSize, changed: make(chan struct{})}
	names, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var firsts []uint64
	for _, de := range names {
		name := de.Name()
		if de.IsDir() || !strings.HasSuffix(name, ".seg") {
			continue
		}
		first, err := strconv.ParseUint(strings.TrimSuffix(name, ".seg"), 16, 64)
		if err != nil {
			continue
		}
		firsts = append(firsts, first)
	}
	slices.Sort(firsts)
	for i, first := range firsts {
		s, err := indexSegment(j.segPath(first), first, classify)
		if err != nil {
			return nil, err
		}
		if i == len(firsts)-1 {
			// A crash may have torn the last line of the last segment.
			if err := os.Truncate(j.segPath(first), s.size); err != nil {
				return nil, err
			}
		}
		j.segs = append(j.segs, s)
		j.head = first + s.records()
	}
	return j, nil
}

func (j *journal) segPath(first uint64) string {
	return filepath.Join(j.dir, fmt.Sprintf("%016x.seg", first))
}

// indexSegment reads a segment's lines and indexes them; a torn last line
// is left out (size ends before it).
func indexSegment(path string, first uint64, classify classifier) (*segment, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	s := &segment{first: first}
	r := bufio.NewReaderSize(f, 256<<10)
	for {
		line, err := r.ReadSlice('\n')
		if err == bufio.ErrBufferFull {
			// A line longer than the buffer: its header is in line.
			rest, err2 := r.ReadBytes('\n')
			if err2 != nil {
				return s, nil
			}
			s.add(uint32(s.size), classifyLine(line, classify))
			s.size += int64(len(line) + len(rest))
			continue
		}
		if err == io.EOF {
			return s, nil
		}
		if err != nil {
			return nil, err
		}
		s.add(uint32(s.size), classifyLine(line, classify))
		s.size += int64(len(line))
	}
}

func (s *segment) add(off, mask uint32) {
	s.offs = append(s.offs, off)
	s.masks = append(s.masks, mask)
}

// classifyLine gives the sinks of a journal line: none when its header
// does not parse.
func classifyLine(line []byte, classify classifier) uint32 {
	var h header
	if _, ok := h.parse(line); !ok {
		return 0
	}
	return classify(h.typ, h.tenant)
}

// segAt returns the segment holding seq and seq's index in it; nil when
// seq is in no segment (before the first, or a hole a damaged segment
// left).
func (j *journal) segAt(seq uint64) (*segment, int) {
	i, found := slices.BinarySearchFunc(j.segs, seq, func(s *segment, seq uint64) int {
		switch {
		case s.first < seq:
			return -1
		case s.first > seq:
			return 1
		}
		return 0
	})
	if !found {
		i--
	}
	if i < 0 || seq-j.segs[i].first >= j.segs[i].records() {
		return nil, 0
	}
	return j.segs[i], int(seq - j.segs[i].first)
}

// takenLocked counts the records of [from, end) that bit takes.
func (j *journal) takenLocked(from, end uint64, bit uint32) uint64 {
	var n uint64
	for seq := from; seq < end; {
		s, i := j.segAt(seq)
		if s == nil {
			seq++
			continue
		}
		stop := min(end-s.first, s.records())
		for _, m := range s.masks[i:stop] {
			if m&bit != 0 {
				n++
			}
		}
		seq = s.first + stop
	}
	return n
}

// spanLocked returns the end of the shortest range from seq that holds
// max records bit takes, or head when fewer are left.
func (j *journal) spanLocked(seq, max uint64, bit uint32) uint64 {
	var n uint64
	for seq < j.head {
		s, i := j.segAt(seq)
		if s == nil {
			seq++
			continue
		}
		for k, m := range s.masks[i:] {
			if m&bit != 0 {
				n++
				if n == max {
					return seq + uint64(k) + 1
				}
			}
		}
		seq = s.first + s.records()
	}
	return j.head
}

// append writes lines (each ending in '\n'; masks[i] the sinks of line i)
// at the head, makes them visible to the readers and adds them to the
// backlogs. The bytes reach the operating system, in one write, before
// append returns; sync makes them durable.
func (j *journal) append(lines []byte, masks []uint32) error {
	if len(masks) == 0 {
		return nil
	}
	j.mu.Lock()
	head := j.head
	var last *segment
	if n := len(j.segs); n > 0 {
		last = j.segs[n-1]
	}
	j.mu.Unlock()
	if j.f == nil || last == nil || last.size >= j.segSize {
		var err error
		if last, err = j.rotate(head, last); err != nil {
			return err
		}
	}
	if _, err := j.f.Write(lines); err != nil {
		// Part of the lines may be in the file (a full disk): cut them, so
		// that the next record is numbered by its line again.
		j.f.Truncate(last.size)
		j.closeFile()
		return err
	}
	j.synced = false
	j.mu.Lock()
	defer j.mu.Unlock()
	off := last.size
	for _, m := range masks {
		last.add(uint32(off), m)
		k := bytes.IndexByte(lines[off-last.size:], '\n')
		off += int64(k + 1)
		for _, c := range j.cursors {
			if c != nil && m&c.bit != 0 {
				c.owed++
			}
		}
	}
	last.size = off
	j.head += uint64(len(masks))
	j.notifyLocked()
	return nil
}

// rotate syncs and closes the segment being written and starts one whose
// first record is head (or goes on appending to last, the last segment of
// an earlier run, when it has room).
func (j *journal) rotate(head uint64, last *segment) (*segment, error) {
	if j.f != nil {
		if err := j.sync(); err != nil {
			return nil, err
		}
		j.closeFile()
	}
	if last == nil || last.size >= j.segSize {
		last = &segment{first: head}
	}
	f, err := os.OpenFile(j.segPath(last.first), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	j.f = f
	j.mu.Lock()
	if n := len(j.segs); n == 0 || j.segs[n-1] != last {
		j.segs = append(j.segs, last)
	}
	j.mu.Unlock()
	return last, syncDir(j.dir)
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

// close syncs and closes the segment being written, and saves and closes
// the cursors.
func (j *journal) close() error {
	err := j.sync()
	j.closeFile()
	j.mu.Lock()
	defer j.mu.Unlock()
	for _, c := range j.cursors {
		if c != nil {
			err = errors.Join(err, c.close())
		}
	}
	return err
}

func (j *journal) notifyLocked() {
	close(j.changed)
	j.changed = make(chan struct{})
}

// removeDoneLocked deletes the segments whose records are done for every
// sink (never the last one, which the writer may be appending to).
func (j *journal) removeDoneLocked() {
	low := j.head
	for _, c := range j.cursors {
		if c != nil {
			low = min(low, c.next)
		}
	}
	for len(j.segs) > 1 && j.segs[1].first <= low {
		os.Remove(j.segPath(j.segs[0].first))
		j.segs = j.segs[1:]
	}
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// reader reads one sink's batches from a journal; used by that sink's
// shipper only.
type reader struct {
	j   *journal
	bit uint32
	seg uint64   // first seq of the open segment
	f   *os.File // nil: none open
	buf []byte   // the last batch's lines
	b   batch    // the last batch
}

func (rd *reader) close() {
	if rd.f != nil {
		rd.f.Close()
		rd.f = nil
	}
}

// part is the piece of a batch one segment holds.
type part struct {
	first      uint64 // the segment
	seq        uint64 // the piece's first record
	start, end int64  // byte range
	offs       []uint32
	masks      []uint32
}

// read returns the records of [from, end) the sink takes, in order. The
// batch and its entries are valid until the next read.
func (rd *reader) read(from, end uint64) (*batch, error) {
	var parts []part
	rd.j.mu.Lock()
	for seq := from; seq < end; {
		s, i := rd.j.segAt(seq)
		if s == nil {
			seq++
			continue
		}
		stop := int(min(end-s.first, s.records()))
		parts = append(parts, part{first: s.first, seq: seq, start: int64(s.offs[i]), end: s.lineEnd(stop - 1),
			offs: s.offs[i:stop], masks: s.masks[i:stop]})
		seq = s.first + uint64(stop)
	}
	rd.j.mu.Unlock()
	b := &rd.b
	b.entries, b.key = b.entries[:0], ""
	rd.buf = rd.buf[:0]
	for _, p := range parts {
		if err := rd.readPart(&p, b); err != nil {
			return nil, err
		}
	}
	return b, nil
}

func (rd *reader) readPart(p *part, b *batch) error {
	if rd.f == nil || rd.seg != p.first {
		rd.close()
		f, err := os.Open(rd.j.segPath(p.first))
		if err != nil {
			return err
		}
		rd.f, rd.seg = f, p.first
	}
	base := len(rd.buf)
	rd.buf = slices.Grow(rd.buf, int(p.end-p.start))[:base+int(p.end-p.start)]
	data := rd.buf[base:]
	if _, err := rd.f.ReadAt(data, p.start); err != nil {
		rd.close()
		return fmt.Errorf("events: segment %s: %w", rd.j.segPath(p.first), err)
	}
	for i, m := range p.masks {
		if m&rd.bit == 0 {
			continue
		}
		lo := int64(p.offs[i]) - p.start
		hi := int64(len(data))
		if i+1 < len(p.offs) {
			hi = int64(p.offs[i+1]) - p.start
		}
		e, err := parseLine(data[lo : hi-1])
		if err != nil {
			return fmt.Errorf("record %d: %w", p.seq+uint64(i), err)
		}
		b.entries = append(b.entries, e)
	}
	return nil
}
