package queue

import (
	"bytes"
	"errors"
	"fmt"
	"slices"

	"github.com/cockroachdb/pebble/v2"
)

// CompactStats says what one Compact call did.
type CompactStats struct {
	Segments int   // sparse segments compacted (deleted once emptied)
	Moved    int   // live records copied forward
	Skipped  int   // records left in place (corrupt, or removed meanwhile)
	Freed    int64 // bytes of segment files deleted
}

// compactChunk is how many records are moved per index commit.
const compactChunk = 256

type moveItem struct {
	key []byte // m/<id> or d/<id> (a dead letter)
	id  string
	old location
}

// Compact copies the live records of sparse segments — those whose live
// bytes are less than minLive (0 < minLive ≤ 1; 0.5 is a good value) of
// their file size — to the current segment, points the index at the
// copies, and thereby lets the old segments be deleted. It runs alongside
// appends, updates and removes: copies go through the group committer
// (fsynced before the index moves to them), and an index entry moves only
// if it still points to the old record. A corrupt record is left where it
// is, keeping its segment. While the disk has less than
// Options.MinFreeBytes free it does nothing and returns an error wrapping
// ErrNoSpace. Call it from one goroutine at a time, e.g. from a periodic
// maintenance task.
func (s *Spool) Compact(minLive float64) (CompactStats, error) {
	var st CompactStats
	s.closeMu.RLock()
	defer s.closeMu.RUnlock()
	if s.closed {
		return st, ErrClosed
	}
	// Copies need room before the old segments go: below the free-space
	// floor, leave the disk to the index and to deliveries.
	if err := s.checkFree(); err != nil {
		return st, err
	}

	// Candidates: segments other than the one being appended to whose
	// live message count fell below minLive of their peak (a cheap
	// pre-filter, so that a spool with nothing to compact is not scanned).
	s.liveMu.Lock()
	cur := s.curSeq
	cands := map[uint64]bool{}
	for seq, n := range s.live {
		if seq != cur && float64(n) < minLive*float64(s.peak[seq]) {
			cands[seq] = true
		}
	}
	s.liveMu.Unlock()
	if len(cands) == 0 {
		return st, nil
	}
	sizes := map[uint64]int64{}
	s.segMu.RLock()
	for seq := range cands {
		f := s.segs[seq]
		if f == nil {
			continue
		}
		if fi, err := f.Stat(); err == nil && fi.Size() > 0 {
			sizes[seq] = fi.Size()
		}
	}
	s.segMu.RUnlock()
	if len(sizes) == 0 {
		return st, nil
	}
	liveBytes := map[uint64]int64{}
	items := map[uint64][]moveItem{}
	collect := func(prefix string) func(id, v []byte) error {
		return func(id, v []byte) error {
			loc, err := decodeLocation(v)
			if err != nil {
				return nil
			}
			if _, ok := sizes[loc.Segment]; ok {
				liveBytes[loc.Segment] += loc.Length
				items[loc.Segment] = append(items[loc.Segment], moveItem{indexKey(prefix, string(id)), string(id), loc})
			}
			return nil
		}
	}
	err := scanMeta(s.db, collect(metaPrefix))
	if err == nil {
		err = scanIndex(s.db, deadPrefix, deadEnd, true, collect(deadPrefix))
	}
	if err != nil {
		return st, fmt.Errorf("queue: compact: %w", err)
	}
	var sparse []uint64
	for seq, size := range sizes {
		if float64(liveBytes[seq]) < minLive*float64(size) {
			sparse = append(sparse, seq)
		}
	}
	slices.Sort(sparse)
	for _, seq := range sparse {
		s.markMovedFrom(seq) // before any entry is re-pointed (RemoveLocated)
		list := items[seq]
		slices.SortFunc(list, func(a, b moveItem) int { return int(a.old.Offset - b.old.Offset) })
		for len(list) > 0 {
			if s.closing.Load() {
				return st, ErrClosed
			}
			n := min(len(list), compactChunk)
			moved, skipped, err := s.moveRecords(list[:n])
			st.Moved += moved
			st.Skipped += skipped
			if err != nil {
				return st, fmt.Errorf("queue: compact segment %016x: %w", seq, err)
			}
			list = list[n:]
		}
		if !s.hasLive(seq) {
			st.Segments++
			st.Freed += sizes[seq]
		}
	}
	return st, nil
}

func (s *Spool) hasLive(seq uint64) bool {
	s.liveMu.Lock()
	defer s.liveMu.Unlock()
	return s.live[seq] > 0
}

// moveRecords copies one chunk of records forward and re-points their
// index entries.
func (s *Spool) moveRecords(list []moveItem) (moved, skipped int, err error) {
	// Read and verify the old records; corrupt ones stay where they are.
	reqs := make([]*appendReq, 0, len(list))
	olds := make([]location, 0, len(list))
	for _, it := range list {
		rec, err := s.rawRecord(it.id, it.old)
		if err != nil {
			skipped++
			continue
		}
		reqs = append(reqs, &appendReq{key: it.key, rec: rec, done: make(chan error, 1)})
		olds = append(olds, it.old)
	}
	if len(reqs) == 0 {
		return 0, skipped, nil
	}
	// Write the copies through the committer: fsynced, counted live in the
	// new segment, not indexed.
	for _, r := range reqs {
		s.written.Add(int64(len(r.rec)))
		s.appendCh <- r
	}
	var werr error
	for _, r := range reqs {
		if err := <-r.done; err != nil {
			werr = err // fail has already uncounted it
			r.loc = location{}
		}
	}
	if werr != nil {
		for _, r := range reqs {
			if r.loc.Segment != 0 {
				s.release(r.loc.Segment)
			}
		}
		return 0, skipped, werr
	}

	// Lock the stripes of the chunk (lockStripes), move the entries that
	// still point at the old records, and commit once.
	ids := make([]string, len(reqs))
	for i, r := range reqs {
		ids[i] = string(r.key[len(metaPrefix):]) // d/ is as long
	}
	defer s.lockStripes(ids)()
	b := s.db.NewBatch()
	defer b.Close()
	apply := make([]bool, len(reqs))
	for i, r := range reqs {
		v, closer, err := s.db.Get(r.key)
		if errors.Is(err, pebble.ErrNotFound) {
			continue // removed meanwhile
		}
		if err != nil {
			return 0, skipped, s.undoMoves(reqs, err)
		}
		loc, lerr := decodeLocation(v)
		if lerr == nil && loc == olds[i] {
			nv := bytes.Clone(v)
			putLocation(nv, r.loc)
			if err := b.Set(r.key, nv, nil); err != nil {
				closer.Close()
				return 0, skipped, s.undoMoves(reqs, err)
			}
			apply[i] = true
		}
		closer.Close()
	}
	if err := b.Commit(pebble.Sync); err != nil {
		return 0, skipped, s.undoMoves(reqs, noSpace(err))
	}
	for i, r := range reqs {
		if apply[i] {
			moved++
			s.release(olds[i].Segment)
		} else {
			skipped++
			s.release(r.loc.Segment)
		}
	}
	return moved, skipped, nil
}

// undoMoves uncounts copies that will not be indexed.
func (s *Spool) undoMoves(reqs []*appendReq, err error) error {
	for _, r := range reqs {
		s.release(r.loc.Segment)
	}
	return err
}

// rawRecord reads the verified bytes of the record at loc.
func (s *Spool) rawRecord(id string, loc location) ([]byte, error) {
	s.segMu.RLock()
	defer s.segMu.RUnlock()
	f := s.segs[loc.Segment]
	if f == nil {
		return nil, corruptf("message %s: segment %016x is missing", id, loc.Segment)
	}
	_, raw, err := readRecord(f, loc.Offset, loc.Length, id, nil)
	return raw, err
}
