package queue

import "gannet/internal/vfs"

// FS is the small slice of a filesystem that the spool's segment files need.
// It exists so that tests can inject the failures a real disk produces (a
// failed write, a failed fsync, a short write, a full disk) without a real
// faulty disk (queuetest.FaultFS). The Pebble index uses its own filesystem
// layer and is not routed through FS. These types are declared in
// internal/vfs, which the fake imports instead of queue.
type FS = vfs.FS

// File is an open file of an FS.
type File = vfs.File

// FreeSpacer is implemented by an FS that can tell how many bytes are still
// available to an unprivileged writer on the filesystem holding dir. The
// spool uses it to refuse new mail before the disk is completely full.
type FreeSpacer = vfs.FreeSpacer

// OSFS is the FS of the operating system. Its segment files sync with
// fdatasync(2).
type OSFS = vfs.OS
