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
//	               state, attempts, next due, tenant, campaign, priority, created;
//	               then, only for a message with DSN parameters (RFC 3461: RET,
//	               ENVID, NOTIFY, ORCPT), a tagged DSN section (dsnSection), so
//	               that values written without it load unchanged
//	    d/<id>   → a dead letter (dead.go): the m/ value of a message that
//	               can no longer be delivered, kept with its body until purged
//	    q/<id>   → quarantine record (quarantine.go): a message taken out
//	               because it is corrupt — kind, reason, size, time, and its
//	               m/ value as it was (at most 64 KiB)
//	    a/<key>  → admin state (adminstate.go): the engine's rules that
//	               outlive a restart (suspensions, bounces, holds), opaque here
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
// record can be read with one pread at the offset the index gives. The
// codec is chosen per body (codecFor in segment.go): the configured one,
// except that from 16 KiB on a body is stored as it is with s2, and
// with zstd when it does not compress (attachments); Body then returns the
// record's payload without a copy. Records of every codec read back
// whatever the setting, also those written before the choice existed. A record
// that is cut short, fails its CRC, or does not decompress is reported as
// ErrCorrupt for that message only — never a panic, and never a reason to
// stop reading the others (see "Corrupt messages" below). Live counts per
// segment are not stored: Open
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
//	Append callers ──▶ appendCh ──▶ committer goroutine
//	 (compress and                  1. write all records (1 write) to the current segment
//	  frame the record              2. apply one Pebble batch with all m/<id> entries and
//	  on their own                     the tail mark x/tail = position of the group's first
//	  goroutine)                       record, asking for its WAL sync (ApplyNoSyncWait)
//	                                3. fdatasync the segment — while Pebble's WAL fsync of
//	                                   step 2 runs — then wait for that WAL fsync (SyncWait);
//	                                   it also makes durable every delivery outcome before it
//	                                4. answer every caller: nil = durable
//
//	Update, Remove ──▶ index write, unsynced ──▶ outcomeCh ──▶ committer: if no group
//	 (delivery outcomes)                                       commit has carried them within
//	                                                           1 ms, one WAL sync for all
//
// The committer takes every append waiting in the channel (up to 8 MiB), so
// N concurrent callers share one segment fsync and one index commit. Groups
// run in series: the next group gathers while this one syncs, so under load
// a group is larger and each message costs fewer fsyncs. (An earlier version
// overlapped the segment fsync of group k+1 with the index fsync of group
// k; it made twice as many, smaller groups for the same latency per caller,
// and an fsync costs CPU as well as time — 150–180 µs of system time each on
// this project's virtual disks — so in series is 10–16% faster at 64
// writers, with 0.031 instead of 0.057–0.070 fsyncs per message.) Within a
// group the two fsyncs overlap: a group costs the latency of one fsync, not
// two in series, with the same number of fsyncs. Acceptance with many
// clients is bound by that latency, not by CPU (make bench (a) had Gannet at
// about 55% of one core). Append returns only after step 4.
//
// Overlapping them means a crash can leave the index entries of a group
// durable and its records not (the WAL fsync done, the segment's not; or
// any other synced index write — an outcome sync, a dead letter — carrying
// the batch to the disk first). No caller of that group was answered, so
// those messages were never acknowledged, and recovery must drop those
// entries rather than report them corrupt. The tail mark says which
// entries can be in that state: groups run in series, so when a group's
// batch is applied every earlier group has completed its segment fsync (or
// failed, and had its entries deleted by a synced batch first, unindex),
// and every record before the group's first record is durable. Records
// only ever go to higher positions (offset, then segment number). Pebble's
// WAL recovers a prefix of the batches, each whole, so the recovered mark
// is that of the last recovered group, and every recovered entry past it
// belongs to that group or was moved there later by Compact (after its
// copy's fsync). Open (dropUnacked) reads the record of every m/ entry at
// or past the mark: an intact record (length, CRC32C, id) is kept and its
// segment fsynced (after a kill -9 it may be in the page cache only); a
// missing, short, zeroed or garbled one means that group's segment fsync
// never completed, and its entry is deleted with one synced batch — counted
// in Stats.DroppedAtOpen and logged, not quarantined. Entries before the
// mark are never second-guessed: a bad record there is real corruption and
// goes to the quarantine as before. (The price: a record past the mark
// that the disk itself damaged after its group completed is dropped, and
// logged, rather than quarantined — it cannot be told from a cut tail; at
// most one group's records are past the mark, plus what Compact moved
// there.) A spool without the mark (written before the overlap) has every
// entry behind a completed fsync.
//
// Option B of issue #21 — sync only the segment per group, with unsynced
// index writes rebuilt from the segments at startup — was not taken: a
// record holds only the id and the body, so the envelope would have to move
// into the segment format, and telling a record whose entry was never
// written from one whose message was delivered and removed would need
// tombstones or a replay checkpoint, with compaction's moves in the mix.
// The overlap needs one key and one verification pass over a group's worth
// of records.
//
// A crash can stop a group at any point:
//
//   - before or during 1: the records may be partly on disk, but no index
//     entry points to them and no caller was answered. Open deletes segments
//     with no live record; a torn tail in a segment that has live records is
//     never read (offsets come from the index) and never appended to (a new
//     process always starts a new segment).
//   - during 2–3, in any order of the two fsyncs: the batch is in the
//     recovered index or not, and each record is on the disk intact or not.
//     An entry with an intact record is kept: a message that will be
//     delivered although its client saw a broken connection (a duplicate,
//     which SMTP allows — RFC 5321 §6.1 makes the receiver responsible only
//     for what it acknowledged). An entry without one is dropped (above). A
//     record without an entry is dead space.
//   - after 3: both fsyncs are done before any caller is answered, so every
//     acknowledged message's entry and record are durable.
//
// TestCrashAtEveryPointOfAGroupCommit stops a group with neither fsync,
// only the segment's, only the index's, and both done (Pebble on its
// crashable in-memory filesystem, segment fsyncs held by a wrapper), takes
// crash images with the unsynced segment bytes gone, torn, zeroed or whole
// and the index with none or all of its unsynced WAL, and checks each.
//
// A new segment's directory entry is fsynced before any record in it is
// acknowledged. A failed write or fsync fails every caller in the group and
// abandons the segment: after a failed fsync the kernel may have dropped the
// dirty pages (the 2018 "fsyncgate"), so nothing is ever written after bytes
// of unknown state. Before a segment file is deleted the WAL is synced, so
// no durable index entry ever points into a deleted segment. The
// crash-image test (TestCrashImageWhileWriting) copies a live spool while
// 16 writers append and checks that every message acknowledged before the
// copy is in it with an intact body.
//
// # Delivery outcomes
//
// What became of a delivered message — Remove once every recipient is
// final, Update when some are still pending — is written to the index at
// once but without a sync of its own, and made durable by the committer
// within a few milliseconds: by the synced batch of the next group commit
// (Pebble's WAL is one sequence, so that sync covers every write before
// it), or, when no group comes within 1 ms (outcomeSyncDelay), by one WAL
// sync (LogData) for all the outcomes written meanwhile. No outcome costs
// an fsync of its own: while mail arrives the group commits carry them for
// nothing, and a delivery-only drain costs one WAL fsync per millisecond
// at most. Callers do not wait for the sync unless 32 outcomes
// (maxUnsyncedOutcomes) are already unsynced: then Update and Remove wait,
// and the committer syncs at once. (512 was tried: make bench (b), 20,000
// messages over 50 connections, three runs each alternating on a quiet
// machine, gave 5,565, 5,408 and 7,299 msgs/s at 32 and 3,866, 5,888 and
// 6,542 at 512 — no gain, so the tighter bound stays.) That bound is what
// keeps a crash on a loaded machine from repeating hundreds of deliveries — the committer's
// timer and sync were measured 30–45 ms late at load 10, long enough for
// 190 deliveries of a drain at 5,000/s to go by unsynced before a kill —
// at the cost of slowing delivery to the pace of the disk when it falls
// behind. A crash before the sync
// brings the older state back: the message is delivered a second time (at
// least once, like Postfix, which does not fsync the unlink of a delivered
// queue file), never lost, since the outcome only ever removes or advances
// what an acknowledged append made durable.
//
// The window matters because Pebble keeps an unsynced write in a buffer of
// its own (a 32 KiB WAL block) until some sync or a full block pushes it
// to the file, and a SIGKILL loses that buffer. Removes used to wait there
// for the next synced write of any kind: with no mail arriving (a queue
// draining after a restart) that was seconds and up to a block of deletes
// — hundreds of deliveries — away, all of them repeated after a kill
// (TestOutcomesDurableWithoutAppends: 200 of 200). Now what a kill can
// repeat is what was on the wire — the messages whose 250 the relay had not
// read, or not yet settled — and the deliveries of the last millisecond or
// two (bench/crashtest reports the duplicates against the receiver's count
// of messages in DATA on the connections the kill cut).
//
// Measured (2-core shared VM, load 4–15, 2026-12-07). A backlog of 4,000
// messages queued with the receiver down, then delivered with no mail
// arriving and gannet killed 1.2 s into the drain (a script around
// bin/gannet, smtpblast and smtpsink, no sink faults): 108–570 duplicates
// before (six runs: 570, 421, 108, 137, 329, 444), 0, 0 and 22 after,
// against 8–10 messages in DATA at the kill. bench/crashtest -kills 3
// (unlimited rate, every second round a drain): 10, 17 and 83 duplicates
// before (bounds 24, 24, 21), 2, 18 and 13 after (bounds 27–28); -kills
// 12: 26 duplicates, bound 105; -kills 50 (make crashtest): 348,063
// acknowledged, none lost, 262 duplicates, bound 433. Cost (go test -bench -benchmem, before and
// after in the same minute; fsyncs counted with strace -c): BenchmarkUpdate
// 272–302 µs (one WAL fsync each) before, 15 µs after; BenchmarkRemove
// 3.5–6.5 µs before, 8.6 µs after (0.04 outcome syncs each when one
// caller removes as fast as it can); BenchmarkAppendRemove64 (64 writers,
// append then remove, 20,000 messages) 15 allocations and ~1,035 B per
// message, 0.033–0.042 group commits per message and 1,322–1,694
// fdatasyncs in all before, the same and 1,394–1,672 after, with
// 0.003–0.005 outcome syncs per message (one for every ten groups).
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
//
// # Corrupt messages
//
// What is corrupt concerns one message, and the spool takes that message
// out and goes on (quarantine.go); Postfix does the same with its
// "corrupt" queue. Two kinds are found:
//
//   - index: an m/<id> value that does not decode (or an id Append would
//     refuse). Scan — which the engine runs once at startup to load the
//     queue — quarantines it and passes every other message on; it never
//     fails for it.
//   - record: a body record that is torn, fails its CRC, does not
//     decompress, or whose segment is missing. Body reports ErrCorrupt;
//     the caller (delivery, at the message's next attempt) calls
//     Quarantine, which reads the record again and takes the message out
//     only if it is still unreadable (ErrNotCorrupt otherwise).
//
// Quarantining moves m/<id> to q/<id> in one synced batch, with the kind,
// the reason, the size of the bad value or record and the time, and tells
// Options.OnCorrupt (the engine logs it and counts
// gannet_spool_corrupt_total{kind}). Quarantined and QuarantinedIDs read
// the quarantine (the admin API's inspect and summary). A quarantined
// message stops counting in its segment, so the segment goes once its other
// messages are delivered: the body is not kept, only the envelope (for a
// record) or the bad bytes (for an index value). Nothing else reads q/, so
// the message cannot come back: Update finds no m/ entry and writes nothing,
// Remove has nothing to remove, Compact never sees it. A corrupt record
// found by Compact before delivery reaches it is left where it is (and
// keeps its segment) until that attempt. The quarantine is bounded: 64 KiB
// of value and 1 KiB of reason per record, Options.MaxQuarantined records
// (10,000), the lowest ids going first.
//
// x/format is no message: a value other than "gannet-spool-1" means an
// index this version does not know, and Open refuses it whole rather than
// read its entries wrongly. A Pebble error while reading the index (a
// damaged sstable block fails Pebble's own checksum) stops Scan too: it
// cannot say which messages are affected.
//
// # Admin state
//
// The engine's admin rules that must outlive a restart (suspensions,
// bounces and holds in force) are kept in this index under a/, as opaque
// values (PutAdminState, DeleteAdminState, AdminStates; adminstate.go),
// rather than in a separate file or Pebble beside the spool: they are few,
// small and rarely written, Pebble already gives atomic, checksummed,
// synced writes, and the rules then travel with the queue they act on — one
// directory to back up, copy or delete, one fsync path, no second store to
// keep consistent with the first. Nothing else reads a/: Scan, Compact and
// the live counts see only m/, the quarantine only q/. Puts are synced;
// deletes ride on the next synced write, and a rule that comes back after a
// crash has its expiry checked again by the engine.
//
// # Scheduler, ids, retries
//
// Scheduler is a 4-ary min-heap keyed by (due, arrival), one mutex, no
// goroutine or timer per item, with an injected Clock (queuetest.FakeClock
// in tests); ScheduleBatch loads many items under one lock (rebuilding the
// heap in O(n) when the batch outnumbers it). Packer keeps the metadata of
// waiting messages compact in memory (packed.go).
// IDGenerator makes 20-character [0-9a-z] ids: Unix milliseconds, a counter
// and a random per-process part, so ids sort by arrival and never collide
// across restarts. RetryPolicy doubles the delay from Initial up to Max and
// expires messages older than MaxAge.
//
// # Test doubles
//
// Two seams let tests replace the outside world: Options.FS, the
// filesystem of the segment files (OSFS in production), and the Clock of a
// Scheduler (SystemClock). The fakes for them, queuetest.FaultFS (failed
// writes, fsyncs and creations, short writes, a chosen free space) and
// queuetest.FakeClock (time that moves only when told), live in package
// queue/queuetest, so that production binaries do not carry them. The
// interfaces are declared in the leaf packages internal/vfs and
// internal/clock, and FS, File, FreeSpacer, OSFS, Clock and Timer here are
// aliases of them: queuetest imports those packages and not queue, so
// queue's own tests can import queuetest without an import cycle.
//
// # Measured (2-core shared VM, Go 1.26, go test -bench, t.TempDir on ext4)
//
// The machine was shared by about nine builds (load average 8–14), so the
// absolute numbers are low and vary between runs (ranges of two runs); the
// ratios hold.
//
//	BenchmarkAppend1   (1 writer, 4 KB mail)     310–500 msgs/s, 1.00 segment fsync/msg
//	                                             (then two fsyncs in series: segment, index)
//	BenchmarkAppend64  (64 writers, 4 KB mail)   3,000–13,400 msgs/s (8,200 at load 8),
//	                                             0.04–0.05 segment fsyncs/msg
//	                                             (20–25 messages per group commit)
//	BenchmarkBody      (4 KB, zstd)              40–80 µs
//	BenchmarkScan      (index only)              1.9–7.6 µs per message (3.5 µs, 6 allocs
//	                                             after sharing strings, see below)
//	BenchmarkScheduler (1M items waiting)        0.6–3.4 µs per schedule+pop, 0 allocs
//	BenchmarkSchedulerLoad (1M in batches)       30 ns per item
//	BenchmarkPack / BenchmarkUnpack              130–330 ns, 59 bytes / 90 ns, 0 allocs
//
// The two fsyncs of a group overlapped (2026-12-07, load 13–18 on the
// shared VM, so wide ranges; before and after alternated, five runs each;
// BenchmarkCommitLatency, 2 KB mail, p50 of one Append, median of the runs
// and range): 1 appender 640 µs (493–1,010) → 485 µs (439–1,362); 16
// appenders 3,836 µs (1,042–5,245) → 868 µs (758–1,393); 64 appenders
// 10,455 µs (4,663–20,622) → 2,915 µs (2,241–4,595), 2,950–9,508 → 8,032–
// 19,818 appends/s; 200 appenders 12,088 µs (9,302–15,389) → 7,511 µs
// (6,716–26,855). Groups per message unchanged (0.03 at 64). End to end,
// bench/quick.sh (a) only, before and after alternated at load 11–16:
// smtpblast 20 connections 3,100–6,400 → 5,400–9,000 msgs/s, smtp-source
// 2,700–3,400 → 3,600–7,200; 50 connections × 200, smtpblast 6,500–8,300
// → 7,200–10,300, smtp-source 3,900–4,100 → 5,800–6,800. At 200
// connections on that load the machine's CPU, not the commit, was the
// limit: no difference within the noise.
//
// Re-measured at load 10–13 (go test -run X -bench 'Append|Scan'
// -benchtime 3s): Append1 141 msgs/s (1.00 fsync/msg), Append64 8,292
// msgs/s (0.044 fsyncs/msg); filling a spool with 256 appenders
// (bench/crashtest -mode restart) ran at 19,800 msgs/s, 0.010 fsyncs/msg.
//
// Restart with 1,000,000 deferred messages (go run ./bench/crashtest
// -mode restart -n 1000000: queue.Open, then delivery.Loop.Load, in a fresh
// process; one recipient each, load 3–8 on the shared VM):
//
//	                  wall          CPU          RSS per queued message
//	before (Scan +    5.4–8.6 s     5.6–7.5 s    668–683 bytes
//	  Enqueue each)   (15–19 s at load 11–13; 8–8.6 s CPU)
//	after (Load)      1.95–3.2 s    2.2–2.4 s    241–260 bytes
//
// of which Open (the live-count pass over the index) takes 0.35–0.55 s.
// What changed: ScanReused decodes into one reused Message (strings shared
// through the per-scan table); a waiting message is kept as a Packed value
// (~60 pointer-free bytes, strings that repeat stored once in the
// Packer's table) with no work item, the scheduler holding the message
// itself; the loaded messages sit in an id-sorted slice instead of a map
// (8 instead of ~56 bytes each, no rehashing); and ScheduleBatch loads the
// heap in batches under one lock each, into a heap grown once. What remains
// per message: its state (80 bytes), packed metadata (64), id (24),
// scheduler entry (32), slice slot (8). The garbage collector is now ~5%
// of the load (it was a third), so GOGC is left alone.
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
//
// Measured end to end (gannet serve relaying to bin/smtpsink, bin/smtpblast
// -connections 50 -per-conn 100 -pipelining on the same 2 cores, load 4–7,
// 2026-11-27): with 2 KB mail the group commit gathered about 12 messages
// per segment fsync (0.08 segment and 0.17 Pebble WAL fdatasyncs per
// message; half of the WAL ones were the deliveries' Removes, which are no
// longer synced; groups now also run in series, see above), and
// zstd took 14% of Gannet's CPU (compress 9%, decompress at delivery 5%).
// Gannet's CPU per 1000 messages, received and delivered: zstd 0.32–0.43 s,
// s2 0.28–0.32 s (about 12–20% less), none 0.34–0.37 s (more bytes to
// write and fsync). With 100 KB mail and RSA-2048 DKIM zstd is about 15%
// of the CPU and s2 saves about 5% per message, against RSA and go-msgauth's
// relaxed body canonicalization at about 50%. Since then a body of 16 KiB or
// more is stored as it is with s2 (codecFor): on that (c) load without
// DKIM, Gannet's CPU per 1000 messages went from 0.91–1.11 s to 0.65 s
// (S2 compress had been 31% of the profile, decompress 11%), for about
// 3.3× the segment bytes of such mail. zstd stays the default
// (the contract's example config); "s2" is the setting for a relay that is
// CPU-bound on small mail and has disk to spare.
//
// Such a record (16 KiB or more, stored as it is) is written from the
// caller's buffer — its head, then the body, two writes in the group —
// instead of being copied into a record buffer and again into the group's
// write buffer (appendRawHead): in (c) those two copies of each 100 KB
// body were about 5% of Gannet's CPU (BenchmarkAppend100K's cpu-µs/msg,
// medians of 5 interleaved runs: "none" 77 → 66, "s2" 68 → 66).
package queue
