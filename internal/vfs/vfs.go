// Package vfs is the small slice of a filesystem that the spool's segment
// files need (FS, File, FreeSpacer) and OS, its implementation by the
// operating system.
//
// The interfaces exist so that tests can inject the failures a real disk
// produces (a failed write, a failed fsync, a short write, a full disk)
// without a real faulty disk: queue/queuetest.FaultFS wraps an FS and does
// that. The package is a leaf so that both queue (which knows these types
// as queue.FS, queue.File, queue.FreeSpacer and queue.OSFS) and queuetest
// can import it without importing each other. The Pebble index uses its
// own filesystem layer and is not routed through FS.
package vfs

import (
	"io"
	"os"
	"syscall"
)

// FS is the filesystem the spool's segment files live in.
type FS interface {
	// OpenFile opens name with the os.OpenFile flags and permissions.
	OpenFile(name string, flag int, perm os.FileMode) (File, error)
	// Create creates or truncates name for reading and writing.
	Create(name string) (File, error)
	// Remove deletes a file or an empty directory.
	Remove(name string) error
	// Rename renames oldname to newname atomically (POSIX rename(2)).
	Rename(oldname, newname string) error
	// ReadDir lists a directory, sorted by file name.
	ReadDir(name string) ([]os.DirEntry, error)
	// MkdirAll creates a directory and any missing parents.
	MkdirAll(name string, perm os.FileMode) error
	// SyncDir fsyncs a directory so that file creations, renames and
	// removals inside it survive a crash.
	SyncDir(name string) error
}

// File is an open file of an FS.
type File interface {
	io.Writer
	io.ReaderAt
	io.Closer
	// Sync flushes the file's data (and the metadata needed to read it
	// back, such as its size) to stable storage.
	Sync() error
	Stat() (os.FileInfo, error)
	Truncate(size int64) error
}

// FreeSpacer is implemented by an FS that can tell how many bytes are still
// available to an unprivileged writer on the filesystem holding dir. The
// spool uses it to refuse new mail before the disk is completely full.
type FreeSpacer interface {
	FreeBytes(dir string) (uint64, error)
}

// OS is the FS of the operating system.
type OS struct{}

var _ FS = OS{}
var _ FreeSpacer = OS{}

// OpenFile implements FS.
func (OS) OpenFile(name string, flag int, perm os.FileMode) (File, error) {
	f, err := os.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return osFile{f}, nil
}

// Create implements FS.
func (o OS) Create(name string) (File, error) {
	return o.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
}

// Remove implements FS.
func (OS) Remove(name string) error { return os.Remove(name) }

// Rename implements FS.
func (OS) Rename(oldname, newname string) error { return os.Rename(oldname, newname) }

// ReadDir implements FS.
func (OS) ReadDir(name string) ([]os.DirEntry, error) { return os.ReadDir(name) }

// MkdirAll implements FS.
func (OS) MkdirAll(name string, perm os.FileMode) error { return os.MkdirAll(name, perm) }

// SyncDir implements FS.
func (OS) SyncDir(name string) error {
	d, err := os.Open(name)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// FreeBytes implements FreeSpacer with statfs(2).
func (OS) FreeBytes(dir string) (uint64, error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return 0, err
	}
	return st.Bavail * uint64(st.Bsize), nil
}

// osFile syncs with fdatasync(2): a segment's data and its size reach the
// disk, while timestamps, which the spool never reads, need not.
type osFile struct{ *os.File }

func (f osFile) Sync() error {
	for {
		err := syscall.Fdatasync(int(f.File.Fd()))
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return &os.PathError{Op: "fdatasync", Path: f.File.Name(), Err: err}
		}
		return nil
	}
}
