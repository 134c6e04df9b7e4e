// Package queuetest holds test doubles for the queue package's Clock and FS
// seams: FakeClock, a clock that moves only when a test says so, for
// queue.Scheduler and engine/delivery's Loop; and FaultFS, a filesystem
// that makes the spool's segment writes, fsyncs and creations fail (EIO, a
// full disk, a short write) and reports a chosen free space, for
// queue.Options.FS and engine.Options.SpoolFS.
//
// It lives outside queue so that production binaries do not carry the
// fakes. It imports only the leaf packages that declare the interfaces
// (internal/clock, internal/vfs; queue's Clock, Timer, FS, File and
// FreeSpacer are aliases of them), not queue itself, so queue's own
// internal tests can use it without an import cycle.
package queuetest
