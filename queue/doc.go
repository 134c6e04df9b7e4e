// Package queue is Gannet's durable spool and scheduler.
//
// A message that got "250" must survive any crash, and accepting mail must
// cost as few fsyncs as possible. The spool therefore keeps bodies in
// append-only segment files and metadata in a Pebble index, and makes many
// concurrent appends share one segment fsync and one index fsync (group
// commit). The scheduler holds delivery work items until they are due.
//
// # On-disk layout
//
//	<Dir>/
//	  segments/
//	    0000000000000001.seg   append-only, rolled at Options.SegmentSize (64 MiB)
//	    0000000000000002.seg
//	  index/                   Pebble v2 (FormatMajorVersion pinned)
//	    m/<id>   → metadata (index.go): body location, envelope, per-recipient
//	               state, attempts, next due, tenant, campaign, priority, created
//	    x/format → "gannet-spool-1"
//
// A segment is a sequence of records, each self-describing and checksummed
// (little-endian integers):
//
//	0       4    5     6      7     8          12        16       20      20+idlen
//	┌───────┬────┬─────┬──────┬─────┬──────────┬─────────┬────────┬───────┬──────────────┐
//	│ "GnRc"│ver │flags│idlen │  0  │ body len │ raw len │ CRC32C │  id   │ payload      │
//	└───────┴────┴─────┴──────┴─────┴──────────┴─────────┴────────┴───────┴──────────────┘
//	flags: codec in bits 0–1 (0 none, 1 zstd, 2 s2); body len: stored payload
//	bytes; raw len: body bytes after decompression; the CRC32C (Castagnoli)
//	covers bytes 0–15, the id and the payload.
//
// Each body is compressed alone (one zstd frame or one S2 block), so any
// record can be read with one pread at the offset the index gives. A record
// that is cut short, fails its CRC, or does not decompress is reported as
// ErrCorrupt for that message only — never a panic, and never a reason to
// stop reading the others. Live counts per segment are not stored: Open
// computes them from the index, and deletes segment files nothing points to.
// Remove deletes a segment as soon as its last live message goes. The
// segment being appended to is not deleted under the committer: when it
// drains, Remove kicks the committer, which closes and deletes it between
// two groups if it has grown past an eighth of SegmentSize (smaller ones
// are kept, so that fast delivery does not cost a new file and a directory
// fsync per group). So a spool that filled its disk gets the space back as
// soon as its mail is delivered, without waiting for a new append.
// Compact empties sparse segments: it copies their live records through
// the group committer (fsynced first), then re-points each index entry
// that still points at the old copy, so the old segment's count drops to
// zero and it is deleted. It only scans the index when some segment's live
// count fell below the ratio of its peak (kept in memory), does nothing
// below the free-space floor, and stops between chunks when Close begins.
//
// # Write order and why no acknowledged message is lost
//
//	Append callers ──▶ appendCh ──▶ committer goroutine ───────────▶ syncer goroutine
//	 (compress and                  1. write all records (1 write)   4. wait for Pebble's
//	  frame the record                 to the current segment           WAL fsync (SyncWait)
//	  on their own                  2. fdatasync the segment         5. answer every caller:
//	  goroutine)                    3. one Pebble batch with all        nil = durable
//	                                   m/<id> entries, applied with
//	                                   Sync (ApplyNoSyncWait)
//
// The committer takes every append waiting in the channel (up to 8 MiB), so
// N concurrent callers share one segment fsync and one index commit, and
// while the syncer waits for group k's index fsync the committer already
// writes and fsyncs group k+1. Append returns only after step 5.
//
// A crash can stop this at any point:
//
//   - before or during 1–2: the records may be partly on disk, but no index
//     entry points to them and no caller was answered. Open deletes segments
//     with no live record; a torn tail in a segment that has live records is
//     never read (offsets come from the index) and never appended to (a new
//     process always starts a new segment).
//   - between 2 and 4: the records are durable; the index batch is in
//     Pebble's WAL or not. Either way no caller was answered: a recovered
//     entry is a message that will be delivered although its client saw a
//     broken connection (a duplicate, which SMTP allows — RFC 5321 §6.1
//     makes the receiver responsible only for what it acknowledged).
//   - after 4: the index entry is durable and points to a record that was
//     fsynced before the entry was written (step 2 precedes step 3), so
//     every index entry always points to a durable record.
//
// A new segment's directory entry is fsynced before any record in it is
// acknowledged. A failed write or fsync fails every caller in the group and
// abandons the segment: after a failed fsync the kernel may have dropped the
// dirty pages (the 2018 "fsyncgate"), so nothing is ever written after bytes
// of unknown state. Update and Remove are single synced Pebble writes
// (Pebble groups concurrent ones into one WAL fsync); Remove deletes the
// segment file only after the index no longer points into it. The
// crash-image test (TestCrashImageWhileWriting) copies a live spool while
// 16 writers append and checks that every message acknowledged before the
// copy is in it with an intact body.
//
// # Full disk
//
// ENOSPC or EDQUOT from a write is reported as ErrNoSpace, which callers
// answer with "452 4.3.1" (ReplyCode). Before it comes to that, Append
// refuses with ErrNoSpace while the filesystem has less than
// Options.MinFreeBytes (16 MiB) free. The free space is read with statfs(2)
// at most once a second (every 100 ms within twice the floor), and between
// two reads the bytes of every accepted append (record plus twice its index
// value) are subtracted from the last answer, so a burst of appends cannot
// run past the floor before the next read. The floor is what keeps Pebble
// alive: it aborts the process (its Fatalf) when it cannot write its
// manifest, and its WAL, flushes and compactions, the Update and Remove
// writes of running deliveries, and a restart's WAL replay all need room
// after new mail is refused. Measured on a 64 MiB tmpfs with 64 KB mail
// (bench/crashtest -mode diskfull): the first 452 comes with about 12 MB
// still free.
//
// Healthy reports the same free-space verdict, and the error of the last
// failed group commit for Options.HealthRetry (2 s); after that it lets new
// mail in again, and the next append is the probe (success clears the
// error, failure renews it). Both therefore recover by themselves: the
// engine refuses MAIL FROM with 452 4.3.1 while Healthy fails and takes mail
// again, with no restart, once deliveries have freed the space.

// # Scheduler, ids, retries
//
// Scheduler is a 4-ary min-heap keyed by (due, arrival), one mutex, no
// goroutine or timer per item, with an injected Clock (FakeClock in tests).
// IDGenerator makes 20-character [0-9a-z] ids: Unix milliseconds, a counter
// and a random per-process part, so ids sort by arrival and never collide
// across restarts. RetryPolicy doubles the delay from Initial up to Max and
// expires messages older than MaxAge.
//
// # Measured (2-core shared VM, Go 1.26, go test -bench, t.TempDir on ext4)
//
// The machine was shared by about nine builds (load average 8–14), so the
// absolute numbers are low and vary between runs (ranges of two runs); the
// ratios hold.
//
//	BenchmarkAppend1   (1 writer, 4 KB mail)     310–500 msgs/s, 1.00 segment fsync/msg
//	                                             (two fsyncs in series: segment, index)
//	BenchmarkAppend64  (64 writers, 4 KB mail)   3,000–13,400 msgs/s (8,200 at load 8),
//	                                             0.04–0.05 segment fsyncs/msg
//	                                             (20–25 messages per group commit)
//	BenchmarkBody      (4 KB, zstd)              40–80 µs
//	BenchmarkScan      (index only)              1.9–7.6 µs per message (3.5 µs, 6 allocs
//	                                             after sharing strings, see below)
//	BenchmarkScheduler (1M items waiting)        0.6–3.4 µs per schedule+pop, 0 allocs
//
// Re-measured at load 10–13 (go test -run X -bench 'Append|Scan'
// -benchtime 3s): Append1 141 msgs/s (1.00 fsync/msg), Append64 8,292
// msgs/s (0.044 fsyncs/msg); filling a spool with 256 appenders
// (bench/crashtest -mode restart) ran at 19,800 msgs/s, 0.010 fsyncs/msg.
//
// Restart with 1,000,000 deferred messages (go run ./bench/crashtest
// -mode restart -n 1000000: queue.Open, Scan, delivery.Loop.Enqueue each,
// in a fresh process): Open 0.8–1.4 s (one pass over the index locations),
// Scan+Enqueue 8–8.6 s of CPU (15–18 s wall at load 11–13), 668–699 bytes
// of RSS per queued message. Scan decodes each value once, allocates a
// message together with its first recipient, and shares the strings that
// repeat (sender, tenant, campaign, last reply) through a per-Scan table;
// that took the footprint from 765 to 668 bytes per message. About a third
// of the CPU is the garbage collector marking the growing heap.
//
// With 64 writers the spool is CPU-bound here (zstd is half the profile),
// not fsync-bound: each group commit still costs one segment fsync and one
// index fsync, shared by all its messages.
//
// Compression, on generated HTML+text mail of 2–50 KB, one frame per message
// (BenchmarkCompression, same loaded machine):
//
//	codec         ratio   compress MB/s   decompress MB/s
//	zstd fastest  4.54     69             117
//	s2            3.65    105             105
//	none          1.00     —              251 (copy + CRC)
//
// Generated mail repeats a small vocabulary, so its ratios are higher than
// real mail's (shared/docs/libraries.md measured 3.05 for zstd and 2.27 for
// s2 on a more varied corpus, and 250/566 MB/s compress on an idle core).
// zstd SpeedFastest is the default: it stores a third less than s2 at a CPU
// cost that is small next to DKIM signing.
package queue
