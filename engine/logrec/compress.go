package logrec

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"gannet/internal/vfs"

	"github.com/klauspost/compress/zstd"
)

// Suffixes of the files under the log directory.
const (
	plainSuffix      = ".jsonl"         // a file being written, or closed and not yet compressed
	compressedSuffix = ".jsonl.zst"     // a closed file, compressed (one zstd stream)
	tempSuffix       = ".jsonl.zst.tmp" // a compression in progress; removed at start
)

// errStopped ends a compression cut short by Close.
var errStopped = errors.New("logrec: compression stopped")

// compressor turns closed log files into .jsonl.zst files on one
// background goroutine, so that neither delivery nor the writer goroutine
// waits for it.
//
// Each file is made crash-safe in this order: compress into NAME.jsonl.zst.tmp,
// fsync it, rename it to NAME.jsonl.zst, fsync the directory, and only then
// remove NAME.jsonl. A crash at any point leaves every record in at least
// one complete file: before the rename the original is intact (the
// temporary file is removed at the next start and the original compressed
// again); after it, the compressed file is complete, and a leftover
// original is removed at the next start. Readers that see both names for a
// moment read only the compressed one (ReadDir).
type compressor struct {
	dir     string
	onError func(error)
	onDone  func(path string)

	mu    sync.Mutex
	queue []string
	wake  chan struct{} // capacity 1
	stop  chan struct{}
	done  chan struct{}
}

// newCompressor recovers what a crash left behind and queues every closed
// plain file in dir. It must run before the writer opens its first file,
// so that every plain file it sees is closed.
func newCompressor(dir string, onError func(error), onDone func(string)) *compressor {
	c := &compressor{dir: dir, onError: onError, onDone: onDone,
		wake: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
	ents, err := os.ReadDir(dir)
	if err != nil {
		c.fail(err)
		return c
	}
	have := map[string]bool{}
	for _, e := range ents {
		have[e.Name()] = true
	}
	for _, e := range ents {
		name := e.Name()
		switch {
		case !e.Type().IsRegular():
		case strings.HasSuffix(name, tempSuffix):
			c.fail(os.Remove(filepath.Join(dir, name)))
		case strings.HasSuffix(name, plainSuffix):
			if have[name+".zst"] {
				// Compressed and renamed; the crash came before the removal.
				c.fail(os.Remove(filepath.Join(dir, name)))
			} else {
				c.queue = append(c.queue, filepath.Join(dir, name))
			}
		}
	}
	return c
}

func (c *compressor) fail(err error) {
	if err != nil && c.onError != nil {
		c.onError(err)
	}
}

// add queues a closed file.
func (c *compressor) add(path string) {
	c.mu.Lock()
	c.queue = append(c.queue, path)
	c.mu.Unlock()
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// close stops the goroutine, cutting short the file being compressed (it
// stays plain and is compressed at the next start), and waits for it.
func (c *compressor) close() {
	close(c.stop)
	<-c.done
}

func (c *compressor) run() {
	defer close(c.done)
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedDefault), zstd.WithEncoderConcurrency(1))
	if err != nil {
		c.fail(err)
		return
	}
	defer enc.Close()
	buf := make([]byte, 256<<10)
	for {
		c.mu.Lock()
		var path string
		if len(c.queue) > 0 {
			path = c.queue[0]
			c.queue = c.queue[1:]
		}
		c.mu.Unlock()
		if path == "" {
			select {
			case <-c.wake:
				continue
			case <-c.stop:
				return
			}
		}
		switch err := c.compress(enc, buf, path); {
		case errors.Is(err, errStopped):
			return
		case err != nil:
			c.fail(fmt.Errorf("logrec: compressing %s: %w", path, err))
		case c.onDone != nil:
			c.onDone(path + ".zst")
		}
	}
}

// compress writes path+".zst" and removes path, in the crash-safe order.
func (c *compressor) compress(enc *zstd.Encoder, buf []byte, path string) (err error) {
	dst := path + ".zst"
	if _, err := os.Lstat(dst); err == nil {
		return fmt.Errorf("%s exists already", dst)
	}
	src, err := os.Open(path)
	if err != nil {
		return err
	}
	defer src.Close()
	tmp := path + ".zst.tmp"
	out, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			out.Close()
			os.Remove(tmp)
		}
	}()
	enc.Reset(out)
	for {
		select {
		case <-c.stop:
			return errStopped
		default:
		}
		n, rerr := src.Read(buf)
		if n > 0 {
			if _, err := enc.Write(buf[:n]); err != nil {
				return err
			}
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			return rerr
		}
	}
	if err := enc.Close(); err != nil {
		return err
	}
	if err := out.Sync(); err != nil {
		return err
	}
	if err := out.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, dst); err != nil {
		return err
	}
	if err := (vfs.OS{}).SyncDir(filepath.Dir(path)); err != nil { // make the rename durable
		return err
	}
	return os.Remove(path)
}
