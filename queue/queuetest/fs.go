package queuetest

import (
	"errors"
	"fmt"
	"io"
	"os"
	"sync"

	"gannet/internal/vfs"
)

// FaultFS wraps another vfs.FS (queue.FS) and injects failures into the
// files it opens: a failed write, a failed fsync, a short write, or a full
// disk (ENOSPC), each either for every call or for the next n calls. The zero
// value is not usable; build it with NewFaultFS.
type FaultFS struct {
	inner vfs.FS

	mu         sync.Mutex
	writeErr   error
	writeLeft  int // calls left to fail; < 0: all
	syncErr    error
	syncLeft   int
	shortLeft  int
	free       uint64
	freeSet    bool
	writes     int
	syncs      int
	createErr  error
	createLeft int
}

var (
	_ vfs.FS         = (*FaultFS)(nil)
	_ vfs.FreeSpacer = (*FaultFS)(nil)
)

// NewFaultFS returns a FaultFS over inner (vfs.OS, which is queue.OSFS,
// when nil) that injects nothing.
func NewFaultFS(inner vfs.FS) *FaultFS {
	if inner == nil {
		inner = vfs.OS{}
	}
	return &FaultFS{inner: inner}
}

// FailWrites makes the next n writes (every write when n < 0) fail with err
// without writing anything. Use syscall.ENOSPC to simulate a full disk.
// A nil err stops injecting.
func (f *FaultFS) FailWrites(err error, n int) {
	f.mu.Lock()
	f.writeErr, f.writeLeft = err, n
	f.mu.Unlock()
}

// FailSyncs makes the next n fsyncs (every fsync when n < 0) fail with err.
func (f *FaultFS) FailSyncs(err error, n int) {
	f.mu.Lock()
	f.syncErr, f.syncLeft = err, n
	f.mu.Unlock()
}

// FailCreates makes the next n file creations fail with err.
func (f *FaultFS) FailCreates(err error, n int) {
	f.mu.Lock()
	f.createErr, f.createLeft = err, n
	f.mu.Unlock()
}

// ShortWrites makes the next n writes write only half of their bytes and
// return io.ErrShortWrite, as a write interrupted by a full disk does.
func (f *FaultFS) ShortWrites(n int) {
	f.mu.Lock()
	f.shortLeft = n
	f.mu.Unlock()
}

// SetFreeBytes makes FreeBytes report n.
func (f *FaultFS) SetFreeBytes(n uint64) {
	f.mu.Lock()
	f.free, f.freeSet = n, true
	f.mu.Unlock()
}

// Counts reports how many writes and fsyncs reached the FaultFS so far.
func (f *FaultFS) Counts() (writes, syncs int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.writes, f.syncs
}

// take consumes one injection of a counted fault.
func take(err error, left *int) error {
	if err == nil || *left == 0 {
		return nil
	}
	if *left > 0 {
		*left--
	}
	return err
}

// OpenFile implements FS.
func (f *FaultFS) OpenFile(name string, flag int, perm os.FileMode) (vfs.File, error) {
	if flag&os.O_CREATE != 0 {
		f.mu.Lock()
		err := take(f.createErr, &f.createLeft)
		f.mu.Unlock()
		if err != nil {
			return nil, &os.PathError{Op: "open", Path: name, Err: err}
		}
	}
	inner, err := f.inner.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return &faultFile{File: inner, fs: f, name: name}, nil
}

// Create implements FS.
func (f *FaultFS) Create(name string) (vfs.File, error) {
	return f.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
}

// Remove implements FS.
func (f *FaultFS) Remove(name string) error {
	return f.inner.Remove(name)
}

// Rename implements FS.
func (f *FaultFS) Rename(oldname, newname string) error { return f.inner.Rename(oldname, newname) }

// ReadDir implements FS.
func (f *FaultFS) ReadDir(name string) ([]os.DirEntry, error) { return f.inner.ReadDir(name) }

// MkdirAll implements FS.
func (f *FaultFS) MkdirAll(name string, perm os.FileMode) error { return f.inner.MkdirAll(name, perm) }

// SyncDir implements FS.
func (f *FaultFS) SyncDir(name string) error { return f.inner.SyncDir(name) }

// FreeBytes implements FreeSpacer: the value set with SetFreeBytes, or else
// the inner FS's answer.
func (f *FaultFS) FreeBytes(dir string) (uint64, error) {
	f.mu.Lock()
	free, set := f.free, f.freeSet
	f.mu.Unlock()
	if set {
		return free, nil
	}
	if fs, ok := f.inner.(vfs.FreeSpacer); ok {
		return fs.FreeBytes(dir)
	}
	return 0, errors.ErrUnsupported
}

type faultFile struct {
	vfs.File
	fs   *FaultFS
	name string
}

func (w *faultFile) Write(p []byte) (int, error) {
	f := w.fs
	f.mu.Lock()
	f.writes++
	err := take(f.writeErr, &f.writeLeft)
	short := false
	if err == nil && f.shortLeft != 0 {
		short = true
		if f.shortLeft > 0 {
			f.shortLeft--
		}
	}
	f.mu.Unlock()
	if err != nil {
		return 0, &os.PathError{Op: "write", Path: w.name, Err: err}
	}
	if short {
		n, err := w.File.Write(p[:len(p)/2])
		if err == nil {
			err = io.ErrShortWrite
		}
		return n, err
	}
	return w.File.Write(p)
}

func (w *faultFile) Sync() error {
	f := w.fs
	f.mu.Lock()
	f.syncs++
	err := take(f.syncErr, &f.syncLeft)
	f.mu.Unlock()
	if err != nil {
		return &os.PathError{Op: "fsync", Path: w.name, Err: err}
	}
	return w.File.Sync()
}

func (w *faultFile) String() string { return fmt.Sprintf("faultFile(%s)", w.name) }
