package queue

import (
	"bytes"
	"errors"
	"fmt"
	"hash/maphash"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/cockroachdb/pebble/v2"
	pebblevfs "github.com/cockroachdb/pebble/v2/vfs"

	"gannet/internal/bufpool"
)

// Options configures a Spool.
type Options struct {
	// Dir is the spool directory ([spool] path); segments live in
	// Dir/segments and the index in Dir/index.
	Dir string
	// Compression is "zstd" (default), "s2" or "none"; see ParseCompression.
	Compression string
	// FS holds the segment files; OSFS when nil. Tests pass a queuetest.FaultFS.
	FS FS
	// Now is the clock for health checks; time.Now when nil.
	Now func() time.Time
	// SegmentSize is the size at which the current segment is closed and a
	// new one started; 64 MiB when zero.
	SegmentSize int64

	// MinFreeBytes: Append refuses with ErrNoSpace while the filesystem
	// holding Dir has fewer free bytes, so that the index and running
	// deliveries keep room to write. 16 MiB when zero; negative disables.
	MinFreeBytes int64
	// MaxGroupBytes caps the record bytes one group commit writes; 8 MiB
	// when zero.
	MaxGroupBytes int
	// HealthRetry is how long a failed group commit keeps Healthy
	// reporting its error. After it, Healthy lets new mail in again, and
	// the next append is the probe: its success clears the error, its
	// failure renews it. 2 s when zero.
	HealthRetry time.Duration
	// IndexCacheSize is Pebble's block cache; 8 MiB when zero.
	IndexCacheSize int64
	// IndexMemTableSize is Pebble's memtable size; 4 MiB when zero.
	IndexMemTableSize uint64
	// Logf receives errors from Pebble's background work; nil drops them.
	Logf func(format string, args ...any)
	// OnCorrupt is told of every message the spool takes out because it
	// is corrupt (quarantine.go): an index value Scan cannot decode, a
	// body record Quarantine finds damaged. It is called once per message,
	// after the quarantine is durable, on the goroutine of Scan or
	// Quarantine; it must not call back into the spool. Nil: Logf.
	OnCorrupt func(Corruption)
	// MaxQuarantined bounds the quarantine records kept; past it, those
	// with the lowest ids go. DefaultMaxQuarantined when zero.
	MaxQuarantined int

	// indexFS is the filesystem of the Pebble index; the operating
	// system's when nil. Tests set it to a crashable in-memory one.
	indexFS pebblevfs.FS
}

const (
	defaultSegmentSize  = 64 << 20
	defaultMinFree      = 16 << 20
	defaultGroupBytes   = 8 << 20
	maxGroupCount       = 4096
	freeCheckInterval   = time.Second
	defaultHealthRetry  = 2 * time.Second
	defaultCacheSize    = 8 << 20
	defaultMemTableSize = 4 << 20
	// outcomeSyncDelay is how long a delivery outcome waits for a group
	// commit to carry it to the disk before the committer syncs the index
	// for it alone.
	outcomeSyncDelay = time.Millisecond
	// maxUnsyncedOutcomes bounds the delivery outcomes written but not yet
	// synced: past it, Update and Remove wait for the committer's sync
	// (which then comes at once), so that however late the committer runs
	// on a loaded machine — its timer and sync were seen 30–45 ms late at
	// load 10 — a crash can repeat no more than this many deliveries
	// besides those on the wire.
	maxUnsyncedOutcomes = 32
)

// ErrNoSpace is returned when the disk holding the spool is full (a write
// failed with ENOSPC or EDQUOT) or has less than Options.MinFreeBytes free.
// Callers answer it with "452 4.3.1" (SMTP) or 503 (HTTP); see ReplyCode.
var ErrNoSpace = errors.New("queue: spool disk full")

// ErrClosed is returned by every method called after Close.
var ErrClosed = errors.New("queue: spool closed")

// ErrNotFound is returned by Update and Body for an id that is not (or no
// longer) in the spool.
var ErrNotFound = errors.New("queue: message not in spool")

// ReplyCode maps a spool error to the SMTP reply code and enhanced status
// code (RFC 3463) that answers the client: a full disk is "452 4.3.1"
// (RFC 3463 §3.4, mail system full), anything else a transient
// "451 4.3.0" (other or undefined mail system status).
func ReplyCode(err error) (code int, enhanced string) {
	if errors.Is(err, ErrNoSpace) {
		return 452, "4.3.1"
	}
	return 451, "4.3.0"
}

// noSpace wraps err with ErrNoSpace when the OS reports a full disk.
func noSpace(err error) error {
	if err == nil || errors.Is(err, ErrNoSpace) {
		return err
	}
	if errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) {
		return fmt.Errorf("%w: %w", ErrNoSpace, err)
	}
	return err
}

// Stats are counters of a Spool since Open.
type Stats struct {
	Appends      uint64 // messages acknowledged by Append
	Groups       uint64 // group commits (one segment fsync + one index batch each)
	SegmentSyncs uint64 // fsyncs of segment files
	// OutcomeSyncs counts the index fsyncs the committer made for delivery
	// outcomes (Update, Remove) alone, when no group commit was there to
	// carry them to the disk.
	OutcomeSyncs uint64
	Segments     int   // segment files on disk
	Live         int64 // messages in the index
	Dead         int64 // dead letters (dead.go)
	Quarantined  int   // corrupt messages in the quarantine (quarantine.go)
	// DroppedAtOpen counts the index entries Open deleted because their
	// records never reached the disk: a crash cut the last group commit
	// between its index sync and its segment sync, before any "250".
	DroppedAtOpen int
}

// Spool is the durable message store: compressed bodies in append-only
// segment files, metadata in a Pebble index. All methods are safe for
// concurrent use. See the package documentation for the format and the
// crash-safety argument.
type Spool struct {
	opts   Options
	fs     FS
	segDir string
	codecs *codecs
	db     *pebble.DB
	lock   *os.File // the spool directory's lock (lock.go)
	now    func() time.Time

	// closeMu is held for reading by every operation and for writing by
	// Close, so that Close waits for operations in flight.
	closeMu sync.RWMutex
	closed  bool
	// done is closed when Close begins; closing is set at the same time,
	// so that a long Compact stops between chunks.
	done    chan struct{}
	closing atomic.Bool

	appendCh  chan *appendReq
	kick      chan struct{} // release → committer: the current segment may be empty
	committed chan struct{} // closed when the committer has exited

	// Delivery outcomes (Update, Remove) go to the index without a sync
	// of their own; the committer makes them durable within one cycle
	// (syncOutcomes). outcomes counts those written, syncedOutcomes those
	// known durable; outcomeCh (one slot) wakes the committer.
	outcomes       atomic.Uint64
	syncedOutcomes atomic.Uint64
	outcomeCh      chan struct{}
	// Callers past maxUnsyncedOutcomes wait on outcomeSynced (under
	// outcomeMu); outcomeWaiters counts them, so that a sync with none
	// waiting takes no lock.
	outcomeMu      sync.Mutex
	outcomeSynced  *sync.Cond
	outcomeWaiters atomic.Int32

	// segMu guards segs, the open handle of every segment file on disk.
	// Readers hold it shared while they read, so a handle is never closed
	// under a read.
	segMu sync.RWMutex
	segs  map[uint64]File

	// liveMu guards live (messages indexed per segment, including
	// commits in flight) and curSeq (the segment being appended to, 0 when
	// none).
	liveMu sync.Mutex
	live   map[uint64]int64
	peak   map[uint64]int64 // most messages live at once per segment (Compact's pre-filter)
	curSeq uint64
	// movedFrom holds the segments Compact has moved records out of (or
	// is moving them out of): a location a caller of RemoveLocated holds
	// may be stale there. An entry goes when its segment is deleted.
	movedFrom map[uint64]bool
	// quarantined: the ids taken out by quarantine since Open (up to
	// maxQuarantinedIDs; past that, quarantineOverflow): RemoveLocated
	// must not count them out again. Guarded by liveMu too.
	quarantined        map[string]bool
	quarantineOverflow bool

	// Owned by the committer goroutine.
	cur     File
	curW    uint64 // sequence number of cur
	curSize int64
	nextSeq uint64
	wbuf    []byte
	// tailFloor, when set, is the first record of a group whose segment
	// fsync failed and whose index entries could not be deleted: no tail
	// mark goes past it (unindex).
	tailFloor location

	// recs holds record buffers: Append frames a record into one, the
	// committer gives it back once the record is written.
	recs bufpool.Pool
	// reqPool holds the *appendReq of answered Appends (newAppendReq), so
	// that an append does not allocate its request, channel, key and
	// metadata buffer each time.
	reqPool sync.Pool

	// stripes serialize Update and Remove of the same id.
	stripeSeed maphash.Seed
	stripes    [64]sync.Mutex

	healthMu    sync.Mutex
	lastErr     error        // last commit failure; nil after a success
	lastErrAt   time.Time    // when lastErr happened (Options.Now)
	freeAt      atomic.Int64 // free bytes at the last statfs; -1: unknown
	written     atomic.Int64 // record bytes accepted for writing since then
	nextFreeChk atomic.Int64

	nAppends, nGroups, nSyncs atomic.Uint64
	nOutcomeSyncs             atomic.Uint64
	nLive                     atomic.Int64
	nDead                     atomic.Int64 // dead letters (dead.go)
	nUnacked                  int          // entries dropped by Open (dropUnacked)

	// qMu guards nQuarantined, the number of q/ records, and serializes
	// trimming them (quarantine.go).
	qMu          sync.Mutex
	nQuarantined int
}

type appendReq struct {
	m   *Message // nil for a record moved by Compact: written, not indexed
	key []byte
	rec []byte // encoded record, or its head when payload is set
	// payload is the caller's body when the record stores a large body as
	// it is (appendRawHead): written straight after rec, never copied.
	// The caller waits for done, so it stays untouched until written.
	payload []byte
	meta    []byte // encoded metadata, location filled in by the committer
	loc     location
	done    chan error
}

// recordLen is the length of r's record in the segment.
func (r *appendReq) recordLen() int { return len(r.rec) + len(r.payload) }

// Open opens the spool in opts.Dir, creating it if needed. It recovers from
// a crash by construction: segment files that no index entry points to (the
// remains of appends that were never acknowledged) are deleted, and new
// appends always go to a fresh segment, never after a possibly torn tail.
func Open(opts Options) (*Spool, error) {
	if opts.Dir == "" {
		return nil, errors.New("queue: Options.Dir is empty")
	}
	use, err := ParseCompression(opts.Compression)
	if err != nil {
		return nil, err
	}
	if opts.FS == nil {
		opts.FS = OSFS{}
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.SegmentSize <= 0 {
		opts.SegmentSize = defaultSegmentSize
	}
	if opts.MinFreeBytes == 0 {
		opts.MinFreeBytes = defaultMinFree
	}
	if opts.MaxGroupBytes <= 0 {
		opts.MaxGroupBytes = defaultGroupBytes
	}
	if opts.HealthRetry <= 0 {
		opts.HealthRetry = defaultHealthRetry
	}
	if opts.IndexCacheSize <= 0 {
		opts.IndexCacheSize = defaultCacheSize
	}
	if opts.IndexMemTableSize == 0 {
		opts.IndexMemTableSize = defaultMemTableSize
	}
	if opts.MaxQuarantined <= 0 {
		opts.MaxQuarantined = DefaultMaxQuarantined
	}
	s := &Spool{
		opts:       opts,
		fs:         opts.FS,
		segDir:     filepath.Join(opts.Dir, "segments"),
		now:        opts.Now,
		segs:       make(map[uint64]File),
		live:       make(map[uint64]int64),
		peak:       make(map[uint64]int64),
		done:       make(chan struct{}),
		appendCh:   make(chan *appendReq, maxGroupCount),
		kick:       make(chan struct{}, 1),
		outcomeCh:  make(chan struct{}, 1),
		committed:  make(chan struct{}),
		stripeSeed: maphash.MakeSeed(),
	}
	s.outcomeSynced = sync.NewCond(&s.outcomeMu)
	s.freeAt.Store(-1) // unknown until the first statfs
	if s.lock, err = lockDir(opts.Dir); err != nil {
		return nil, err
	}
	unlock := func() { s.lock.Close() }
	if err := s.fs.MkdirAll(s.segDir, 0o755); err != nil {
		unlock()
		return nil, fmt.Errorf("queue: %w", err)
	}
	if s.codecs, err = newCodecs(use); err != nil {
		unlock()
		return nil, err
	}
	s.db, err = openIndex(filepath.Join(opts.Dir, "index"), opts.IndexCacheSize, opts.IndexMemTableSize, opts.Logf, opts.indexFS)
	if err != nil {
		s.codecs.close()
		unlock()
		return nil, err
	}
	if err := s.recover(); err != nil {
		s.closeFiles()
		s.db.Close()
		s.codecs.close()
		unlock()
		return nil, err
	}
	go s.committer()
	return s, nil
}

// recover counts live messages per segment from the index, verifies the
// records of the entries at or past the tail mark (dropUnacked), opens the
// segments that hold live records and deletes the others, and counts the
// quarantine.
func (s *Spool) recover() error {
	if err := s.countQuarantine(); err != nil {
		return fmt.Errorf("queue: read index quarantine: %w", err)
	}
	mark, marked, err := readTail(s.db)
	if err != nil {
		return fmt.Errorf("queue: read index tail mark: %w", err)
	}
	var doubtful []tailEntry
	var maxSeq uint64
	err = scanMeta(s.db, func(id, v []byte) error {
		loc, err := decodeLocation(v)
		if err != nil {
			return nil // quarantined by Scan; it holds no segment alive
		}
		s.live[loc.Segment]++
		s.nLive.Add(1)
		maxSeq = max(maxSeq, loc.Segment)
		if marked && !loc.less(mark) {
			doubtful = append(doubtful, tailEntry{string(id), loc})
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("queue: read index: %w", err)
	}
	// Dead letters keep their bodies, and so their segments, alive. (A
	// dead letter was delivered to first, so its group commit was
	// complete: its record is never in doubt.)
	err = scanIndex(s.db, deadPrefix, deadEnd, true, func(id, v []byte) error {
		s.nDead.Add(1)
		loc, err := decodeLocation(v)
		if err != nil {
			return nil
		}
		s.live[loc.Segment]++
		maxSeq = max(maxSeq, loc.Segment)
		return nil
	})
	if err != nil {
		return fmt.Errorf("queue: read index dead letters: %w", err)
	}
	entries, err := s.fs.ReadDir(s.segDir)
	if err != nil {
		return fmt.Errorf("queue: %w", err)
	}
	for _, e := range entries {
		seq, ok := parseSegmentName(e.Name())
		if !ok {
			continue
		}
		maxSeq = max(maxSeq, seq)
		if s.live[seq] == 0 {
			continue // removed below
		}
		f, err := s.fs.OpenFile(filepath.Join(s.segDir, e.Name()), 0, 0) // os.O_RDONLY
		if err != nil {
			return fmt.Errorf("queue: open segment: %w", err)
		}
		s.segs[seq] = f
	}
	if err := s.dropUnacked(doubtful); err != nil {
		return err
	}
	removed := false
	for _, e := range entries {
		seq, ok := parseSegmentName(e.Name())
		if !ok {
			continue
		}
		s.peak[seq] = s.live[seq]
		if s.live[seq] > 0 {
			continue
		}
		delete(s.live, seq)
		delete(s.peak, seq)
		if f := s.segs[seq]; f != nil {
			f.Close()
			delete(s.segs, seq)
		}
		if err := s.fs.Remove(filepath.Join(s.segDir, e.Name())); err != nil {
			return fmt.Errorf("queue: remove unused segment: %w", err)
		}
		removed = true
	}
	for seq, n := range s.live {
		if n <= 0 { // every entry into a missing segment dropped
			delete(s.live, seq)
			delete(s.peak, seq)
		}
	}
	if removed {
		if err := s.fs.SyncDir(s.segDir); err != nil {
			return fmt.Errorf("queue: %w", err)
		}
	}
	s.nextSeq = maxSeq + 1
	return nil
}

// tailEntry is an index entry at or past the tail mark.
type tailEntry struct {
	id  string
	loc location
}

// dropUnacked settles the entries at or past the tail mark, which a crash
// may have left pointing at records that never reached the disk: the
// index batch of a group commit is synced at the same time as the
// segment, and no caller of the group is answered before both syncs are
// done. An entry whose record is intact is kept (its caller may or may
// not have been answered; if not, the message is delivered although its
// client saw the connection break, which SMTP allows), and the segments
// holding such records are fsynced, since after a kill -9 an intact record
// may still be only in the page cache. An entry whose record is missing,
// short, or fails its checksum or id check is deleted (one synced batch):
// its group's segment fsync never completed, so its caller never got a
// "250"; this is not corruption, and nothing is quarantined.
func (s *Spool) dropUnacked(doubtful []tailEntry) error {
	if len(doubtful) == 0 {
		return nil
	}
	b := s.db.NewBatch()
	defer b.Close()
	keep := map[uint64]bool{}
	var dropped []string
	var buf []byte
	for _, e := range doubtful {
		if len(e.id) == 0 || len(e.id) > MaxIDLen {
			continue // a corrupt entry, not a cut tail: Scan quarantines it
		}
		f := s.segs[e.loc.Segment]
		intact := false
		if f != nil {
			if int64(cap(buf)) < e.loc.Length {
				buf = make([]byte, e.loc.Length)
			}
			// A record that is whole but holds another id means a
			// damaged index value, not a cut tail (a crash leaves the
			// bytes of a lost write missing or zeroed, never another
			// valid record): it is kept for Body to report.
			_, _, err := readRecord(f, e.loc.Offset, e.loc.Length, e.id, buf)
			intact = err == nil || errors.Is(err, errOtherID)
		}
		if intact {
			keep[e.loc.Segment] = true
			continue
		}
		if err := b.Delete(metaKey(e.id), nil); err != nil {
			return fmt.Errorf("queue: drop unacknowledged entry: %w", err)
		}
		dropped = append(dropped, e.id)
		s.live[e.loc.Segment]--
		s.nLive.Add(-1)
	}
	for seq := range keep {
		if err := s.segs[seq].Sync(); err != nil {
			return fmt.Errorf("queue: sync segment %016x: %w", seq, err)
		}
	}
	if len(dropped) == 0 {
		return nil
	}
	if err := b.Commit(pebble.Sync); err != nil {
		return fmt.Errorf("queue: drop unacknowledged entries: %w", err)
	}
	if s.opts.Logf != nil {
		s.opts.Logf("queue: dropped %d index entries of an unacknowledged group commit whose records did not reach the disk (first %s)", len(dropped), dropped[0])
	}
	s.nUnacked = len(dropped)
	return nil
}

// Append stores m and its body durably: when it returns nil, the record is
// fsynced in a segment and its index entry committed with a synced Pebble
// batch (the two fsyncs run at the same time). Concurrent callers share
// both fsyncs (group commit). m.ID must be
// set (at most MaxIDLen bytes) and unique; Append sets m.Size, m.Segment,
// m.Offset and m.Length. A full disk yields an error wrapping ErrNoSpace.
// On error the message is not in the spool.
func (s *Spool) Append(m *Message, body []byte) error {
	if m.ID == "" || len(m.ID) > MaxIDLen {
		return fmt.Errorf("queue: message id %q: empty or longer than %d bytes", m.ID, MaxIDLen)
	}
	if len(body) > maxRawLen {
		return fmt.Errorf("queue: message %s: body of %d bytes exceeds %d", m.ID, len(body), maxRawLen)
	}
	if err := s.checkFree(); err != nil {
		return err
	}
	m.Size = len(body)
	req := s.newAppendReq()
	req.m = m
	req.key = appendIndexKey(req.key[:0], metaPrefix, m.ID)
	req.meta = encodeMeta(req.meta[:0], m)
	if codec := s.codecs.codecFor(body); codec == CompressNone && len(body) >= largeBody {
		req.rec = appendRawHead(s.recs.Get(recordLen(len(m.ID), 0)), m.ID, body)
		req.payload = body
	} else {
		req.rec = s.codecs.appendRecord(s.recs.Get(maxRecordLen(codec, len(m.ID), len(body))), codec, m.ID, body)
	}
	// Counted before the write so that concurrent callers see it in
	// checkFree; the index entry takes about as much again.
	s.written.Add(int64(req.recordLen() + 2*len(req.meta)))
	s.closeMu.RLock()
	defer s.closeMu.RUnlock()
	if s.closed {
		return ErrClosed
	}
	s.appendCh <- req
	err := <-req.done
	s.freeAppendReq(req)
	if err != nil {
		return fmt.Errorf("queue: append %s: %w", m.ID, err)
	}
	return nil
}

// newAppendReq returns an appendReq for Append: one that an earlier Append
// was answered on, with its key and meta buffers and its channel, or a new
// one.
func (s *Spool) newAppendReq() *appendReq {
	if r, ok := s.reqPool.Get().(*appendReq); ok {
		return r
	}
	return &appendReq{done: make(chan error, 1)}
}

// freeAppendReq keeps req for the next Append once its caller has its
// answer: the committer is done with it (it answers each request once,
// last), and Pebble copied its key and meta into the batch.
func (s *Spool) freeAppendReq(req *appendReq) {
	req.m, req.rec, req.payload, req.loc = nil, nil, nil, location{}
	if cap(req.meta) > maxKeptMeta {
		req.meta = nil // a message of many recipients
	}
	s.reqPool.Put(req)
}

// maxKeptMeta bounds the meta buffer a pooled appendReq keeps.
const maxKeptMeta = 4 << 10

// checkFree refuses appends while free space is below MinFreeBytes. It asks
// the filesystem at most once per freeCheckInterval (every 100 ms when
// within twice the floor), and in between subtracts the record bytes
// accepted since the last answer, so that a burst of appends cannot run
// past the floor before the next look: the index (whose Pebble aborts the
// process when it cannot write its manifest) and running deliveries always
// keep MinFreeBytes to write in.
func (s *Spool) checkFree() error {
	if s.opts.MinFreeBytes < 0 {
		return nil
	}
	fsp, ok := s.fs.(FreeSpacer)
	if !ok {
		return nil
	}
	now := s.now().UnixNano()
	next := s.nextFreeChk.Load()
	est := s.freeAt.Load() - s.written.Load()
	interval := int64(freeCheckInterval)
	if est < 2*s.opts.MinFreeBytes {
		interval = int64(freeCheckInterval / 10)
	}
	if now >= next && s.nextFreeChk.CompareAndSwap(next, now+interval) {
		free, err := fsp.FreeBytes(s.opts.Dir)
		if err != nil {
			s.freeAt.Store(-1)
		} else {
			s.written.Store(0)
			s.freeAt.Store(int64(min(free, 1<<62)))
		}
		est = s.freeAt.Load() - s.written.Load()
	}
	if s.freeAt.Load() >= 0 && est < s.opts.MinFreeBytes {
		return fmt.Errorf("%w: less than %d bytes free under %s", ErrNoSpace, s.opts.MinFreeBytes, s.opts.Dir)
	}
	return nil
}

// Healthy reports whether the spool can take new mail: nil, or an error
// wrapping ErrNoSpace when the disk is (nearly) full, ErrClosed after Close,
// or the cause of the last failed group commit. It never blocks on I/O for
// long (one statfs(2) at most once a second) and recovers by itself: the
// free-space check is repeated, and a commit failure is reported only for
// Options.HealthRetry, after which new mail is let in again to probe the
// disk (a success clears the failure, another failure renews it).
func (s *Spool) Healthy() error {
	s.closeMu.RLock()
	closed := s.closed
	s.closeMu.RUnlock()
	if closed {
		return ErrClosed
	}
	if err := s.checkFree(); err != nil {
		return err
	}
	s.healthMu.Lock()
	defer s.healthMu.Unlock()
	if s.lastErr != nil && s.now().Sub(s.lastErrAt) >= s.opts.HealthRetry {
		return nil // time for a probe; lastErr stays until a commit decides
	}
	return s.lastErr
}

func (s *Spool) setHealth(err error) {
	s.healthMu.Lock()
	s.lastErr = err
	if err != nil {
		s.lastErrAt = s.now()
	}
	s.healthMu.Unlock()
}

// committer is the single writer of segment files. It takes every append
// waiting in appendCh (up to MaxGroupBytes), writes their records with one
// write, applies one index batch for all of them, fsyncs the segment while
// Pebble fsyncs its WAL, and answers the callers once both are done
// (commit); meanwhile the next group gathers in appendCh. That synced batch
// also makes durable every delivery outcome (Update, Remove) written to the
// index before it. Outcomes that no group commit carries within
// outcomeSyncDelay get an index sync of their own (syncOutcomes), one for
// all of them: an outcome is durable within a few milliseconds, and costs
// no fsync at all while mail keeps arriving. The groups themselves run in
// series: a group formed while the previous one syncs is larger, so each
// message costs fewer fsyncs (half as many as with the fsyncs of one group
// overlapping those of the previous, at 64 writers: 0.031 instead of
// 0.057–0.070 per message, 10–16% more appends/s). An fsync costs CPU, not
// only waiting (about 150–180 µs of system time on a virtual disk).
func (s *Spool) committer() {
	defer close(s.committed)
	defer s.syncOutcomes() // those written before Close
	// An outcome waits up to outcomeSyncDelay for a group commit to carry
	// it; only then does it get a sync of its own.
	wait := time.NewTimer(time.Hour)
	wait.Stop()
	defer wait.Stop()
	var due <-chan time.Time // armed while outcomes wait
	for {
		var first *appendReq
		select {
		case r, ok := <-s.appendCh:
			if !ok {
				return
			}
			first = r
			select { // a segment that drained meanwhile goes before this group
			case <-s.kick:
				s.dropEmptyCurrent()
			default:
			}
		case <-s.outcomeCh:
			switch {
			case s.outcomeWaiters.Load() > 0:
				s.syncOutcomes() // callers wait for it: now
			case due == nil:
				wait.Reset(outcomeSyncDelay)
				due = wait.C
			}
			continue
		case <-due:
			due = nil
			s.syncOutcomes()
			continue
		case <-s.kick:
			s.dropEmptyCurrent()
			continue
		}
		reqs := []*appendReq{first}
		size := first.recordLen()
	gather:
		for size < s.opts.MaxGroupBytes && len(reqs) < maxGroupCount {
			select {
			case r, ok := <-s.appendCh:
				if !ok {
					break gather
				}
				reqs = append(reqs, r)
				size += r.recordLen()
			default:
				break gather
			}
		}
		s.commit(reqs)
	}
}

// outcomeWritten counts a delivery outcome written to the index without a
// sync and wakes the committer to make it durable (syncOutcomes). Past
// maxUnsyncedOutcomes written and not synced, it waits for the sync.
func (s *Spool) outcomeWritten() {
	n := s.outcomes.Add(1)
	select {
	case s.outcomeCh <- struct{}{}:
	default: // the committer is already woken
	}
	if n <= s.syncedOutcomes.Load()+maxUnsyncedOutcomes { // (synced may be past n)
		return
	}
	s.outcomeWaiters.Add(1)
	select { // so that the committer sees a waiter, and syncs at once
	case s.outcomeCh <- struct{}{}:
	default:
	}
	s.outcomeMu.Lock()
	for n > s.syncedOutcomes.Load()+maxUnsyncedOutcomes {
		s.outcomeSynced.Wait()
	}
	s.outcomeMu.Unlock()
	s.outcomeWaiters.Add(-1)
}

// outcomesSynced records that the first n delivery outcomes are on the
// disk and releases the callers waiting for that.
func (s *Spool) outcomesSynced(n uint64) {
	s.syncedOutcomes.Store(n)
	if s.outcomeWaiters.Load() > 0 {
		s.outcomeMu.Lock()
		s.outcomeSynced.Broadcast()
		s.outcomeMu.Unlock()
	}
}

// syncOutcomes syncs the index (Pebble's WAL) when delivery outcomes were
// written since the last sync the committer knows of; one sync covers all
// of them. It runs on the committer, between groups. A failed sync is
// logged and releases the waiting callers all the same: the outcomes stay
// in the index and reach the disk with the next sync that works, and a
// crash before it only repeats their deliveries.
func (s *Spool) syncOutcomes() {
	n := s.outcomes.Load()
	if n == s.syncedOutcomes.Load() {
		return
	}
	if err := s.db.LogData(nil, pebble.Sync); err != nil {
		if s.opts.Logf != nil {
			s.opts.Logf("queue: sync index for delivery outcomes: %v", err)
		}
	} else {
		s.nOutcomeSyncs.Add(1)
	}
	s.outcomesSynced(n)
}

// commit writes, fsyncs and indexes one group, then answers its callers;
// see committer. The segment's fdatasync and the index batch's WAL fsync
// run at the same time (the batch is applied without waiting for its
// sync, the segment synced, then the batch's sync waited for), so a group
// costs the latency of one fsync, not two in series; nobody is answered
// before both are done. The batch also sets the tail mark (tailKey) to
// the group's first record: a crash may leave the batch durable and the
// records not, and Open verifies every entry at or past the mark
// (dropUnacked) — see "Write order" in doc.go.
func (s *Spool) commit(reqs []*appendReq) {
	tail, err := s.writeRecords(reqs)
	for _, r := range reqs { // written (copied into wbuf) or failed: done with
		s.recs.Put(r.rec)
		r.rec, r.payload = nil, nil
	}
	if err != nil {
		s.fail(reqs, noSpace(err))
		return
	}
	b := s.db.NewBatch()
	defer b.Close()
	for _, r := range reqs {
		if r.m == nil {
			continue // a compaction move; Compact updates the index itself
		}
		putLocation(r.meta, r.loc)
		if err := b.Set(r.key, r.meta, nil); err != nil {
			s.fail(reqs, err)
			return
		}
	}
	indexed := !b.Empty() // else only compaction moves: nothing to index
	var outcomes uint64
	if indexed {
		mark := reqs[0].loc // the lowest position the group wrote to
		if s.tailFloor.Segment != 0 && s.tailFloor.less(mark) {
			mark = s.tailFloor
		}
		if err := b.Set([]byte(tailKey), encodeTail(mark), nil); err != nil {
			s.fail(reqs, err)
			return
		}
		outcomes = s.outcomes.Load() // written before the batch: synced with it
		if err := s.db.ApplyNoSyncWait(b, pebble.Sync); err != nil {
			s.fail(reqs, noSpace(err))
			return
		}
	}
	var segErr, idxErr error
	if tail != nil {
		s.nSyncs.Add(1)
		if segErr = tail.Sync(); segErr != nil {
			s.abandonSegment()
		}
	}
	if indexed {
		idxErr = b.SyncWait()
	}
	if segErr != nil {
		if indexed {
			s.unindex(reqs)
		}
		s.fail(reqs, noSpace(segErr))
		return
	}
	if idxErr != nil {
		s.fail(reqs, noSpace(idxErr))
		return
	}
	if indexed {
		s.outcomesSynced(outcomes)
	}
	s.nGroups.Add(1)
	s.setHealth(nil)
	for _, r := range reqs {
		if r.m != nil {
			s.nAppends.Add(1)
			s.nLive.Add(1)
			r.m.Segment, r.m.Offset, r.m.Length = r.loc.Segment, r.loc.Offset, r.loc.Length
		}
		r.done <- nil
	}
}

// unindex deletes the index entries of a group whose segment fsync failed
// after its batch was applied: they point at bytes of unknown state, and
// none of their callers is answered with success. The delete is synced, so
// that no later tail mark is durable without it; if it fails, tailFloor
// keeps every later mark at or before these records, and the next Open
// verifies them.
func (s *Spool) unindex(reqs []*appendReq) {
	b := s.db.NewBatch()
	defer b.Close()
	for _, r := range reqs {
		if r.m != nil {
			b.Delete(r.key, nil)
		}
	}
	if err := b.Commit(pebble.Sync); err != nil {
		if s.opts.Logf != nil {
			s.opts.Logf("queue: unindex a group whose segment fsync failed: %v", err)
		}
		if s.tailFloor.Segment == 0 || reqs[0].loc.less(s.tailFloor) {
			s.tailFloor = reqs[0].loc
		}
	}
}

// fail answers every caller of a group with err, and uncounts the records
// that writeRecords had counted live.
func (s *Spool) fail(reqs []*appendReq, err error) {
	s.setHealth(err)
	for _, r := range reqs {
		if r.loc.Segment != 0 {
			s.release(r.loc.Segment)
		}
	}
	for _, r := range reqs {
		r.done <- err
	}
}

// writeRecords appends the records of a group to the current segment (rolling
// to new segments as they fill) and counts them live. A segment it leaves
// for a new one is fsynced first; the last one it wrote to is returned
// (tail) unsynced, for commit to fsync alongside the index batch. On any
// error the current segment is abandoned: the next group starts a new one,
// so a record is never written after bytes of unknown state (after a failed
// fsync the kernel may have dropped dirty pages; see "fsyncgate").
func (s *Spool) writeRecords(reqs []*appendReq) (tail File, err error) {
	defer func() {
		if err != nil {
			s.abandonSegment()
		}
	}()
	buf := s.wbuf[:0]
	writeOut := func(b []byte) error {
		if _, err := s.cur.Write(b); err != nil {
			return err
		}
		s.curSize += int64(len(b))
		tail = s.cur
		return nil
	}
	write := func() error {
		if len(buf) == 0 {
			return nil
		}
		err := writeOut(buf)
		buf = buf[:0]
		return err
	}
	for _, r := range reqs {
		r.loc = location{}
	}
	for _, r := range reqs {
		n := int64(r.recordLen())
		end := s.curSize + int64(len(buf))
		if s.cur == nil || end > 0 && end+n > s.opts.SegmentSize {
			if err := write(); err != nil {
				return nil, err
			}
			if tail != nil {
				s.nSyncs.Add(1)
				if err := tail.Sync(); err != nil {
					return nil, err
				}
				tail = nil
			}
			if err := s.rollSegment(); err != nil {
				return nil, err
			}
		}
		// Counted live before it is indexed, so that the segment cannot
		// be deleted under a commit in flight; fail releases it.
		s.liveMu.Lock()
		s.live[s.curW]++
		s.peak[s.curW] = max(s.peak[s.curW], s.live[s.curW])
		s.liveMu.Unlock()
		r.loc = location{Segment: s.curW, Offset: s.curSize + int64(len(buf)), Length: n}
		buf = append(buf, r.rec...)
		if len(r.payload) > 0 {
			// A large body stored as it is goes from the caller's buffer
			// to the file: the records before it, its head, then it.
			if err := write(); err != nil {
				return nil, err
			}
			if err := writeOut(r.payload); err != nil {
				return nil, err
			}
		}
	}
	if err := write(); err != nil {
		return nil, err
	}
	if cap(buf) <= s.opts.MaxGroupBytes*2 {
		s.wbuf = buf[:0]
	}
	return tail, nil
}

// rollSegment closes the current segment (deleting it if it holds nothing
// live) and creates the next one. The directory is fsynced so that the new
// file's name survives a crash before any record in it is acknowledged.
func (s *Spool) rollSegment() error {
	s.abandonSegment()
	seq := s.nextSeq
	path := filepath.Join(s.segDir, segmentName(seq))
	f, err := s.fs.Create(path)
	if err != nil {
		return err
	}
	if err := s.fs.SyncDir(s.segDir); err != nil {
		f.Close()
		s.fs.Remove(path)
		return err
	}
	s.nextSeq++
	s.segMu.Lock()
	s.segs[seq] = f
	s.segMu.Unlock()
	s.cur, s.curW, s.curSize = f, seq, 0
	s.liveMu.Lock()
	s.curSeq = seq
	s.liveMu.Unlock()
	return nil
}

// abandonSegment stops appending to the current segment; it is deleted if
// nothing in it is live.
func (s *Spool) abandonSegment() {
	if s.cur == nil {
		return
	}
	s.cur = nil
	s.liveMu.Lock()
	seq := s.curSeq
	s.curSeq = 0
	empty := s.live[seq] == 0
	if empty {
		delete(s.live, seq)
		delete(s.peak, seq)
	}
	s.liveMu.Unlock()
	if empty {
		s.deleteSegment(seq)
	}
}

// release drops one live message from segment seq, deleting the segment
// when it was the last one and the segment is not being appended to.
func (s *Spool) release(seq uint64) {
	s.liveMu.Lock()
	s.live[seq]--
	drained := s.live[seq] <= 0
	empty := drained && seq != s.curSeq
	if empty {
		delete(s.live, seq)
		delete(s.peak, seq)
		delete(s.movedFrom, seq)
	}
	s.liveMu.Unlock()
	if empty {
		s.deleteSegment(seq)
	}
	if drained && !empty {
		// The segment being appended to has drained: let the committer
		// decide whether to close it, so that its space comes back even
		// when no new mail arrives (as while the disk is full).
		select {
		case s.kick <- struct{}{}:
		default:
		}
	}
}

// dropEmptyCurrent runs on the committer goroutine between groups: a
// current segment that holds nothing live and has grown past an eighth of
// Options.SegmentSize is closed and deleted, so that a spool that filled
// its disk and then drained gets its space back without waiting for the
// next append. Smaller empty segments are kept to avoid creating (and
// fsyncing the directory for) a new file per group when delivery keeps up.
func (s *Spool) dropEmptyCurrent() {
	if s.cur == nil || s.curSize < s.opts.SegmentSize/8 {
		return
	}
	s.liveMu.Lock()
	empty := s.live[s.curW] <= 0
	s.liveMu.Unlock()
	if empty {
		s.abandonSegment()
	}
}

// deleteSegment closes and removes a segment file. A failure leaves a file
// that the next Open removes, since no index entry points into it. The
// index deletes that emptied the segment (unsynced, see Remove) are made
// durable first: otherwise a power loss could bring back an entry pointing
// into the removed file. If that sync fails the file is kept, and the next
// Open deletes it once no durable entry points into it.
func (s *Spool) deleteSegment(seq uint64) {
	if err := s.db.LogData(nil, pebble.Sync); err != nil {
		if s.opts.Logf != nil {
			s.opts.Logf("queue: sync index before removing segment %x: %v", seq, err)
		}
		s.segMu.Lock()
		f := s.segs[seq]
		delete(s.segs, seq)
		s.segMu.Unlock()
		if f != nil {
			f.Close()
		}
		return
	}
	s.segMu.Lock()
	f := s.segs[seq]
	delete(s.segs, seq)
	s.segMu.Unlock()
	if f != nil {
		f.Close()
	}
	if err := s.fs.Remove(filepath.Join(s.segDir, segmentName(seq))); err != nil && s.opts.Logf != nil {
		s.opts.Logf("queue: remove segment %x: %v", seq, err)
	}
}

// Body returns the decompressed body of m, read from the location in m (or,
// if that segment is gone, from the index). A torn or damaged record yields
// an error wrapping ErrCorrupt; the rest of the spool is unaffected.
func (s *Spool) Body(m *Message) ([]byte, error) {
	s.closeMu.RLock()
	defer s.closeMu.RUnlock()
	if s.closed {
		return nil, ErrClosed
	}
	loc := location{m.Segment, m.Offset, m.Length}
	fromIndex := false
	if loc.Segment == 0 {
		var err error
		if loc, err = s.lookupAny(m.ID); err != nil {
			return nil, err
		}
		fromIndex = true
	}
	return s.body(m.ID, loc, fromIndex)
}

// body reads and decompresses the record of id at loc. Unless fromIndex
// says loc came from the index, a segment that is gone sends it to the
// index for the current location (compaction may have moved the record).
func (s *Spool) body(id string, loc location, fromIndex bool) ([]byte, error) {
	for {
		s.segMu.RLock()
		f := s.segs[loc.Segment]
		if f == nil {
			s.segMu.RUnlock()
			if fromIndex {
				return nil, corruptf("message %s: segment %016x is missing", id, loc.Segment)
			}
			// Compaction may have moved the record since m was read:
			// ask the index where it is now.
			var err error
			if loc, err = s.lookupAny(id); err != nil {
				return nil, err
			}
			fromIndex = true
			continue
		}
		// A compressed record is read into a pooled buffer, which goes
		// back once the body is decompressed. An uncompressed one is
		// read into a buffer of its own, whose payload is the body (no
		// copy); a large record's flags byte is read first to tell them
		// apart, so that such bodies do not drain the pool.
		buf := s.recs.Get(int(min(loc.Length, bufpool.MaxSize)))
		if loc.Length >= largeBody && storedAsIs(f, loc.Offset, buf[:1]) {
			s.recs.Put(buf)
			buf = nil
		}
		v, raw, err := readRecord(f, loc.Offset, loc.Length, id, buf)
		s.segMu.RUnlock()
		if err != nil {
			return nil, err
		}
		if v.Codec == CompressNone {
			return v.Payload, nil
		}
		body, err := s.codecs.decompress(v)
		s.recs.Put(raw)
		return body, err
	}
}

// lookup reads the location of id from the index.
func (s *Spool) lookup(id string) (location, error) {
	return s.lookupKey(id, metaKey(id))
}

// lookupAny reads the location of id from the queue or, failing that, the
// dead letters (Body of a dead letter whose record compaction moved).
func (s *Spool) lookupAny(id string) (location, error) {
	loc, err := s.lookup(id)
	if errors.Is(err, ErrNotFound) {
		return s.lookupKey(id, deadKey(id))
	}
	return loc, err
}

func (s *Spool) lookupKey(id string, key []byte) (location, error) {
	v, closer, err := s.db.Get(key)
	if errors.Is(err, pebble.ErrNotFound) {
		return location{}, fmt.Errorf("%w: %s", ErrNotFound, id)
	}
	if err != nil {
		return location{}, err
	}
	defer closer.Close()
	loc, err := decodeLocation(v)
	if err != nil {
		return location{}, fmt.Errorf("message %s: %w", id, err)
	}
	return loc, nil
}

func (s *Spool) stripeIndex(id string) int {
	return int(maphash.String(s.stripeSeed, id) % uint64(len(s.stripes)))
}

func (s *Spool) stripe(id string) *sync.Mutex { return &s.stripes[s.stripeIndex(id)] }

// lockID begins an operation on one message: it holds off Close and locks
// the stripe of id, so that Update, Remove and Quarantine of the same id
// run one at a time. It returns ErrClosed after Close.
func (s *Spool) lockID(id string) (unlock func(), err error) {
	s.closeMu.RLock()
	if s.closed {
		s.closeMu.RUnlock()
		return nil, ErrClosed
	}
	mu := s.stripe(id)
	mu.Lock()
	return func() {
		mu.Unlock()
		s.closeMu.RUnlock()
	}, nil
}

// Update persists m's metadata (recipient states, attempts, next due, …).
// The body location is kept as the spool knows it (and copied into m),
// whatever m says. Updating a message that is not in the spool (never
// appended, or removed) returns ErrNotFound and writes nothing, so an
// Update racing a Remove cannot resurrect an entry.
//
// Like Remove, it is a delivery outcome: written to the index at once, and
// made durable by the committer within a few milliseconds — by the synced
// index batch of a group commit, or, when none comes within
// outcomeSyncDelay (1 ms), by one index sync for all the outcomes written
// meanwhile — so each outcome does not cost an fsync, and the caller waits
// for one only when maxUnsyncedOutcomes (32) are already unsynced. A
// crash before that sync brings back the older state: an attempt is
// repeated (the same as a crash before the Update), none is lost.
func (s *Spool) Update(m *Message) error {
	unlock, err := s.lockID(m.ID)
	if err != nil {
		return err
	}
	defer unlock()
	loc, err := s.lookup(m.ID)
	if err != nil {
		return fmt.Errorf("queue: update: %w", err)
	}
	m.Segment, m.Offset, m.Length = loc.Segment, loc.Offset, loc.Length
	if err := s.db.Set(metaKey(m.ID), encodeMeta(nil, m), pebble.NoSync); err != nil {
		err = noSpace(err)
		return fmt.Errorf("queue: update %s: %w", m.ID, err)
	}
	s.outcomeWritten()
	return nil
}

// Remove drops a message whose recipients are all done: its index entry is
// deleted and its segment loses one live message; a segment left with none,
// other than the one being appended to, is deleted. Removing an id that is
// not in the spool is not an error.
//
// The delete goes to Pebble's WAL without an fsync of its own and is made
// durable by the committer within a few milliseconds, like Update (by a
// group commit's index sync, or one of its own for all the outcomes
// written meanwhile). Until then Pebble may hold it in a buffer of its
// own, so a crash within those few milliseconds brings the message back
// for a second delivery (at least once, as Postfix, which does not fsync
// the unlink of a delivered queue file); before, a Remove waited for the
// next synced write, which with no mail arriving could be seconds and
// hundreds of deliveries away.
// Before a segment file is deleted, the WAL is synced (deleteSegment), so
// a durable index entry never points into a deleted segment.
func (s *Spool) Remove(id string) error {
	unlock, err := s.lockID(id)
	if err != nil {
		return err
	}
	defer unlock()
	return s.removeLocked(id)
}

// removeLocked is Remove with the stripe of id held.
func (s *Spool) removeLocked(id string) error {
	loc, err := s.lookup(id)
	if errors.Is(err, ErrNotFound) {
		return nil
	}
	if err != nil && !errors.Is(err, ErrCorrupt) {
		return fmt.Errorf("queue: remove: %w", err)
	}
	if err := s.db.Delete(metaKey(id), pebble.NoSync); err != nil {
		return fmt.Errorf("queue: remove %s: %w", id, err)
	}
	s.outcomeWritten()
	s.nLive.Add(-1)
	if loc.Segment != 0 {
		s.release(loc.Segment)
	}
	return nil
}

// RemoveLocated is Remove for the one caller that settles message m for
// good (the delivery loop): m is as Append or a scan gave it, so its
// Segment says where its record is, and no Remove, MoveToDead or
// Quarantine of it has run unless the spool knows of it. It then deletes
// the index entry without reading it first — Remove's lookup is a Pebble
// Get that cost 4–9% of the CPU of end-to-end delivery — and counts the
// message out of m.Segment. When the spool cannot vouch for m.Segment
// (Compact moved records out of that segment, the id was quarantined, or
// m has no segment) it does what Remove does, lookup included.
func (s *Spool) RemoveLocated(m *Message) error {
	unlock, err := s.lockID(m.ID)
	if err != nil {
		return err
	}
	defer unlock()
	// Under the stripe lock: Compact marks a segment (movedFrom) before it
	// re-points the entries of its records under their stripes, and
	// quarantine takes its entries out under theirs.
	s.liveMu.Lock()
	known := m.Segment != 0 && s.live[m.Segment] > 0 && !s.movedFrom[m.Segment] &&
		!s.quarantineOverflow && !s.quarantined[m.ID]
	s.liveMu.Unlock()
	if !known {
		return s.removeLocked(m.ID)
	}
	if err := s.db.Delete(metaKey(m.ID), pebble.NoSync); err != nil {
		return fmt.Errorf("queue: remove %s: %w", m.ID, err)
	}
	s.outcomeWritten()
	s.nLive.Add(-1)
	s.release(m.Segment)
	return nil
}

// maxQuarantinedIDs bounds the ids RemoveLocated is told of (quarantined);
// past it, RemoveLocated always looks up.
const maxQuarantinedIDs = 4096

// noteQuarantined tells RemoveLocated that ids left the queue through
// quarantine.
func (s *Spool) noteQuarantined(ids []string) {
	s.liveMu.Lock()
	defer s.liveMu.Unlock()
	for _, id := range ids {
		if len(s.quarantined) >= maxQuarantinedIDs {
			s.quarantineOverflow = true
			return
		}
		if s.quarantined == nil {
			s.quarantined = make(map[string]bool)
		}
		s.quarantined[id] = true
	}
}

// markMovedFrom tells RemoveLocated that Compact moves records out of
// segment seq.
func (s *Spool) markMovedFrom(seq uint64) {
	s.liveMu.Lock()
	if s.movedFrom == nil {
		s.movedFrom = make(map[uint64]bool)
	}
	s.movedFrom[seq] = true
	s.liveMu.Unlock()
}

// scanInternLimit bounds the distinct shared strings one Scan keeps.
const scanInternLimit = 1 << 16

// Scan calls fn for every live message, in id order (which is arrival order
// for ids from IDGenerator), reading the index only. Each message is a new
// allocation that fn may keep. An error from fn stops the scan and is
// returned. An entry that does not decode (or whose id Append would refuse)
// concerns its message only: it is not passed to fn but quarantined
// (quarantine.go) and reported to Options.OnCorrupt, and the scan goes on.
// Scan fails only when the index cannot be read or fn fails.
func (s *Spool) Scan(fn func(*Message) error) error {
	return s.scan(false, fn)
}

// ScanReused is Scan for rebuilding the scheduler at startup: it passes the
// same *Message to every call, overwritten by the next one, so that the
// only allocations per message are its ID and the recipient addresses.
// fn may keep the strings of the message (they are never overwritten), but
// not the Message or its Recipients slice.
func (s *Spool) ScanReused(fn func(*Message) error) error {
	return s.scan(true, fn)
}

func (s *Spool) scan(reuse bool, fn func(*Message) error) error {
	s.closeMu.RLock()
	defer s.closeMu.RUnlock()
	if s.closed {
		return ErrClosed
	}
	var bad []quarantineEntry
	badBytes := 0
	in := newInterner(scanInternLimit)
	var shared Message
	var rcpts []Recipient // the largest Recipients array of shared so far
	err := scanMeta(s.db, func(id, v []byte) error {
		var m *Message
		var spare []Recipient
		if reuse {
			m, spare = &shared, rcpts
		} else {
			// One allocation for the message and its first recipient.
			x := &struct {
				m   Message
				one [1]Recipient
			}{}
			m, spare = &x.m, x.one[:]
		}
		m.ID = string(id)
		err := decodeMetaShared(v, m, in, spare)
		if err == nil && (len(id) == 0 || len(id) > MaxIDLen) {
			err = corruptf("id of %d bytes", len(id))
		}
		if err != nil {
			bad = append(bad, quarantineEntry{id: string(id), value: bytes.Clone(v), kind: CorruptIndex, cause: err, size: int64(len(v))})
			if badBytes += len(v); len(bad) >= quarantineChunk || badBytes >= quarantineChunkBytes {
				s.quarantineAll(bad)
				bad, badBytes = bad[:0], 0
			}
			return nil
		}
		if reuse && len(m.Recipients) > len(rcpts) {
			rcpts = m.Recipients
		}
		return fn(m)
	})
	if len(bad) > 0 {
		s.quarantineAll(bad)
	}
	return err
}

// Stats returns the spool's counters.
func (s *Spool) Stats() Stats {
	s.segMu.RLock()
	n := len(s.segs)
	s.segMu.RUnlock()
	s.qMu.Lock()
	quarantined := s.nQuarantined
	s.qMu.Unlock()
	return Stats{
		Appends:       s.nAppends.Load(),
		Groups:        s.nGroups.Load(),
		SegmentSyncs:  s.nSyncs.Load(),
		OutcomeSyncs:  s.nOutcomeSyncs.Load(),
		Segments:      n,
		Live:          s.nLive.Load(),
		Dead:          s.nDead.Load(),
		Quarantined:   quarantined,
		DroppedAtOpen: s.nUnacked,
	}
}

// Done returns a channel that is closed when Close begins, for background
// tasks (periodic compaction) that must end with the spool.
func (s *Spool) Done() <-chan struct{} { return s.done }

// Close waits for operations in flight, then closes the segments and the
// index. Every later call returns ErrClosed.
func (s *Spool) Close() error {
	s.closing.Store(true)
	s.closeMu.Lock()
	if s.closed {
		s.closeMu.Unlock()
		return ErrClosed
	}
	s.closed = true
	close(s.appendCh)
	close(s.done)
	s.closeMu.Unlock()
	<-s.committed
	s.closeFiles()
	err := s.db.Close()
	s.codecs.close()
	s.lock.Close() // releases the flock
	return err
}

func (s *Spool) closeFiles() {
	s.segMu.Lock()
	defer s.segMu.Unlock()
	for seq, f := range s.segs {
		f.Close()
		delete(s.segs, seq)
	}
}
