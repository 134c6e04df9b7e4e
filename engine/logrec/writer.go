package logrec

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"
)

// Options configure a Writer. Only Dir is required.
type Options struct {
	Dir           string        // [log] path; created if missing
	Buffer        int           // records that may wait for the writer goroutine; default 16384
	MaxFileSize   int64         // start a new file past this many bytes; default 256 MiB
	MaxFileAge    time.Duration // start a new file after this long; default 1h
	FlushInterval time.Duration // longest a record waits in memory; default 1s
	// Retain: compressed files whose last write is older than this are
	// deleted, at start and every PruneInterval (retain.go); 0 keeps all.
	Retain        time.Duration
	PruneInterval time.Duration    // default 10m
	Now           func() time.Time // clock for file names and ages; default time.Now
	OnDrop        func()           // called once per record dropped because the buffer was full (e.g. a metrics counter's Inc)
	OnError       func(error)      // called when a file cannot be opened, written or compressed; default: ignored

	// DisableCompression keeps closed files as they are. By default each
	// closed file is compressed with zstd in the background into
	// NAME.jsonl.zst (compress.go), and plain files left by an earlier run
	// are compressed after New.
	DisableCompression bool
	// OnCompressed, when set, is called with the path of each compressed
	// file once it is complete and the plain file removed.
	OnCompressed func(path string)
	// OnRecord, when set, is called by Write with each record before it is
	// encoded, on the caller's goroutine. It may fill in fields (the engine
	// adds a missing bounce classification) and count it; it must be quick
	// and must not block.
	OnRecord func(*Record)
	// OnEncoded, when set, is called by Write with each record and its
	// encoding (AppendJSON's line, with its newline), on the caller's
	// goroutine, also when the record is dropped; line is valid only
	// during the call. It lets another consumer (engine/events) reuse the
	// bytes instead of encoding the record again; it must be quick and
	// must not block.
	OnEncoded func(r *Record, line []byte)
}

// Writer appends log records to JSON-lines files under a directory, named
// gannet-YYYYMMDD-HHMMSS.jsonl after the (UTC) time each file was started.
//
// Callers never wait for the disk: Write encodes the record on the caller's
// goroutine at the end of the pending records; one goroutine takes them in
// batches into a bufio.Writer, flushed at least every FlushInterval and on
// Close. It is woken when records arrive and then lets them gather for
// batchWindow before it takes more, so that a busy relay wakes it a few
// hundred times a second, not once per record. When Buffer records are
// pending (the disk cannot keep up), a record is dropped and counted
// (Dropped, OnDrop) rather than slowing delivery down: log records are for
// observation, the spool is the source of truth. A file is synced to disk
// when it is closed, at rotation and on Close.
type Writer struct {
	opts    Options
	rot     chan Rotation   // SetRotation → the writer goroutine
	flushes chan chan error // Flush → the writer goroutine
	wake    chan struct{}   // one token: records are pending, or Close
	dropped atomic.Uint64
	written atomic.Uint64
	done    chan struct{}
	comp    *compressor // nil when DisableCompression
	mu      sync.Mutex  // guards pending, npending and closed
	// pending holds the encoded records the writer goroutine has not taken
	// yet, npending of them.
	pending  []byte
	npending int
	closed   bool
	err      error // set by the writer goroutine before done is closed
}

// batchWindow is how long the writer goroutine lets records gather after a
// batch before it takes the next one.
const batchWindow = 5 * time.Millisecond

// Rotation is what SetRotation changes: Options.MaxFileSize, MaxFileAge
// and Retain (zero or negative: the default, as in New; Retain 0 keeps
// every file).
type Rotation struct {
	MaxFileSize int64
	MaxFileAge  time.Duration
	Retain      time.Duration
}

func (r Rotation) apply(o *Options) {
	o.MaxFileSize, o.MaxFileAge, o.Retain = r.MaxFileSize, r.MaxFileAge, r.Retain
	if o.MaxFileSize <= 0 {
		o.MaxFileSize = 256 << 20
	}
	if o.MaxFileAge <= 0 {
		o.MaxFileAge = time.Hour
	}
}

// SetRotation changes when files are rotated and how long closed ones are
// kept (a configuration reload). The current file is rotated by the new
// limits from its next record on; a shorter Retain prunes at once. It
// returns once the writer goroutine has taken the change, or at once when
// the Writer is closed.
func (w *Writer) SetRotation(r Rotation) {
	select {
	case w.rot <- r:
	case <-w.done:
	}
}

// New starts a Writer. It creates Dir but opens no file until the first
// record arrives.
func New(opts Options) (*Writer, error) {
	w, err := newWriter(opts)
	if err != nil {
		return nil, err
	}
	go w.run()
	return w, nil
}

// newWriter prepares a Writer without starting its goroutine.
func newWriter(opts Options) (*Writer, error) {
	if opts.Dir == "" {
		return nil, errors.New("logrec: no directory")
	}
	if opts.Buffer <= 0 {
		opts.Buffer = 16384
	}
	if opts.MaxFileSize <= 0 {
		opts.MaxFileSize = 256 << 20
	}
	if opts.MaxFileAge <= 0 {
		opts.MaxFileAge = time.Hour
	}
	if opts.FlushInterval <= 0 {
		opts.FlushInterval = time.Second
	}
	if opts.PruneInterval <= 0 {
		opts.PruneInterval = 10 * time.Minute
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if err := os.MkdirAll(opts.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("logrec: %w", err)
	}
	w := &Writer{
		opts:    opts,
		rot:     make(chan Rotation),
		flushes: make(chan chan error),
		wake:    make(chan struct{}, 1),
		done:    make(chan struct{}),
	}
	if !opts.DisableCompression {
		w.comp = newCompressor(opts.Dir, opts.OnError, opts.OnCompressed)
	}
	return w, nil
}

// Write queues r and returns at once. It returns false when the record was
// dropped: the buffer is full, or the Writer is closed.
func (w *Writer) Write(r *Record) bool {
	if w.opts.OnRecord != nil {
		w.opts.OnRecord(r)
	}
	w.mu.Lock()
	if w.closed || w.npending >= w.opts.Buffer {
		w.mu.Unlock()
		w.drop()
		if w.opts.OnEncoded != nil {
			w.opts.OnEncoded(r, r.AppendJSON(nil))
		}
		return false
	}
	start := len(w.pending)
	w.pending = r.AppendJSON(w.pending)
	if w.opts.OnEncoded != nil {
		w.opts.OnEncoded(r, w.pending[start:])
	}
	w.npending++
	first := w.npending == 1
	w.mu.Unlock()
	if first {
		w.signal()
	}
	return true
}

// signal wakes the writer goroutine, unless a wake-up is pending already.
func (w *Writer) signal() {
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// take swaps the pending records for spare (emptied) and returns them, how
// many they are, and whether the Writer is closed.
func (w *Writer) take(spare []byte) (batch []byte, n int, closed bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	batch, n = w.pending, w.npending
	w.pending, w.npending = spare[:0], 0
	return batch, n, w.closed
}

func (w *Writer) drop() {
	w.dropped.Add(1)
	if w.opts.OnDrop != nil {
		w.opts.OnDrop()
	}
}

// Dropped returns how many records were dropped so far.
func (w *Writer) Dropped() uint64 { return w.dropped.Load() }

// Written returns how many records were handed to a file (perhaps still in
// its buffer).
func (w *Writer) Written() uint64 { return w.written.Load() }

// Close writes every queued record, syncs and closes the current file, and
// stops the background compression (a file it had not finished stays plain
// and is compressed after the next New). It returns the first error the
// writer met, if any.
func (w *Writer) Close() error {
	w.mu.Lock()
	first := !w.closed
	w.closed = true
	w.mu.Unlock()
	if first {
		w.signal()
	}
	<-w.done
	if first && w.comp != nil {
		w.comp.close()
	}
	return w.err
}

// run is the writer goroutine.
func (w *Writer) run() {
	defer close(w.done)
	f := &rotatingFile{opts: &w.opts}
	if w.comp != nil {
		go w.comp.run()
		f.onClosed = w.comp.add
	}
	tick := time.NewTicker(w.opts.FlushInterval)
	defer tick.Stop()
	// The prune ticker runs even with Retain 0: SetRotation may set it.
	pt := time.NewTicker(w.opts.PruneInterval)
	defer pt.Stop()
	if w.opts.Retain > 0 {
		w.prune()
	}
	fail := func(err error) {
		if err == nil {
			return
		}
		if w.err == nil {
			w.err = err
		}
		if w.opts.OnError != nil {
			w.opts.OnError(err)
		}
	}
	var batch []byte
	for {
		select {
		case <-w.wake:
			var n int
			var closed bool
			batch, n, closed = w.take(batch)
			w.writeBatch(f, batch, fail)
			if cap(batch) > maxSpare {
				batch = nil // after a burst: not kept for good
			}
			if closed {
				// The last file is left plain: Close does not wait for a
				// compression, and the next New compresses it.
				f.onClosed = nil
				fail(f.close())
				return
			}
			if n > 0 && n < w.opts.Buffer/8 {
				// Let the next records gather; a writer that falls behind
				// goes on at once.
				time.Sleep(batchWindow)
			}
		case <-pt.C:
			if w.opts.Retain > 0 {
				w.prune()
			}
		case ch := <-w.flushes:
			var n int
			batch, n, _ = w.take(batch)
			if n > 0 {
				w.writeBatch(f, batch, fail)
			}
			ch <- f.flush()
		case r := <-w.rot:
			r.apply(&w.opts)
			if w.opts.Retain > 0 {
				w.prune()
			}
		case <-tick.C:
			// Records still gathering go into this flush.
			var n int
			batch, n, _ = w.take(batch)
			if n > 0 {
				w.writeBatch(f, batch, fail)
			}
			// A quiet file is closed on time too, so that it is compressed.
			if err := f.expire(); err != nil {
				fail(err)
			}
			if err := f.flush(); err != nil {
				fail(err)
				f.abandon()
			}
		}
	}
}

// Flush writes the records written so far to the current file (flushed
// to the operating system, not synced) and returns when it has, so that a
// search of the files (FilesMentioning) sees them. After Close it does
// nothing.
func (w *Writer) Flush() error {
	ch := make(chan error, 1)
	select {
	case w.flushes <- ch:
	case <-w.done:
		return nil
	}
	select {
	case err := <-ch:
		return err
	case <-w.done:
		return nil
	}
}

// maxSpare is the largest batch buffer the writer goroutine keeps for the
// next batch.
const maxSpare = 4 << 20

// writeBatch writes the records of batch (each a line) to f, one at a time
// so that a file is rotated between records.
func (w *Writer) writeBatch(f *rotatingFile, batch []byte, fail func(error)) {
	if len(batch) == 0 {
		return
	}
	now := w.opts.Now()
	for len(batch) > 0 {
		end := bytes.IndexByte(batch, '\n') + 1
		if end == 0 {
			end = len(batch)
		}
		if err := f.write(batch[:end], now); err != nil {
			// A failed file (disk full, removed directory) is given up;
			// the next record tries a new one.
			fail(err)
			f.abandon()
			w.drop()
		} else {
			w.written.Add(1)
		}
		batch = batch[end:]
	}
}

// rotatingFile is the current log file; used by the writer goroutine only.
type rotatingFile struct {
	opts     *Options
	onClosed func(path string) // a file was closed (for compression)
	name     string
	f        *os.File
	bw       *bufio.Writer
	size     int64
	started  time.Time
}

func (rf *rotatingFile) write(b []byte, now time.Time) error {
	if rf.f != nil && (rf.size+int64(len(b)) > rf.opts.MaxFileSize || now.Sub(rf.started) >= rf.opts.MaxFileAge) {
		if err := rf.close(); err != nil {
			return err
		}
	}
	if rf.f == nil {
		if err := rf.open(now); err != nil {
			return err
		}
	}
	n, err := rf.bw.Write(b)
	rf.size += int64(n)
	return err
}

func (rf *rotatingFile) open(now time.Time) error {
	base := "gannet-" + now.UTC().Format("20060102-150405")
	name := filepath.Join(rf.opts.Dir, base+".jsonl")
	for i := 1; ; i++ {
		// A compressed file of that name from an earlier run counts as taken.
		_, zerr := os.Lstat(name + ".zst")
		f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
		if err == nil && zerr == nil {
			f.Close()
			os.Remove(name)
			err = os.ErrExist
		}
		if err == nil {
			rf.f, rf.size, rf.started, rf.name = f, 0, now, name
			if rf.bw == nil {
				rf.bw = bufio.NewWriterSize(f, 64<<10)
			} else {
				rf.bw.Reset(f)
			}
			return nil
		}
		if !errors.Is(err, os.ErrExist) || i > 1000 {
			return fmt.Errorf("logrec: %w", err)
		}
		// Two files started in the same second: number the later ones.
		name = filepath.Join(rf.opts.Dir, fmt.Sprintf("%s-%d.jsonl", base, i))
	}
}

// expire closes the file when it is older than MaxFileAge.
func (rf *rotatingFile) expire() error {
	if rf.f == nil || rf.opts.Now().Sub(rf.started) < rf.opts.MaxFileAge {
		return nil
	}
	return rf.close()
}

func (rf *rotatingFile) flush() error {
	if rf.f == nil {
		return nil
	}
	return rf.bw.Flush()
}

// abandon closes the file without caring about buffered bytes.
func (rf *rotatingFile) abandon() {
	if rf.f != nil {
		rf.f.Close()
		rf.f = nil
		rf.bw.Reset(nil)
	}
}

func (rf *rotatingFile) close() error {
	if rf.f == nil {
		return nil
	}
	err := rf.bw.Flush()
	if e := rf.f.Sync(); err == nil {
		err = e
	}
	if e := rf.f.Close(); err == nil {
		err = e
	}
	rf.f = nil
	if err != nil {
		return fmt.Errorf("logrec: %w", err)
	}
	if rf.onClosed != nil {
		rf.onClosed(rf.name)
	}
	return nil
}
