// Package logrec writes Gannet's log records: one JSON object per line for
// every event in a message's life (Reception, Delivery, TransientFailure,
// Bounce, Expiration, AdminBounce, AdminDelete, DeadLetter, XferOut), with KumoMTA's field names so that tools
// written for KumoMTA logs read them (shared/docs/contract.md, "Log
// records").
//
// Record.AppendJSON encodes a record by hand — no reflection, no allocation
// beyond the caller's buffer — because a busy relay writes several records
// per message. Writer moves the bytes to disk off the delivery path: callers
// append the encoded record to a pending buffer (Options.Buffer records at
// most) and never wait for the disk; a single goroutine takes the pending
// records in batches — woken when the first arrives, then letting more
// gather for a few milliseconds, so that it is not woken once per record —
// writes them through a bufio.Writer, flushes at least once a second, and starts a new
// file (gannet-YYYYMMDD-HHMMSS.jsonl) every hour — a quiet file is closed
// on time too — or past a size limit. When the disk cannot keep up and the
// buffer is full, records are dropped and counted
// (gannet_log_records_dropped_total) instead of slowing delivery: the
// spool, not the log, is the record of what must be delivered.
// Options.OnRecord sees every record before it is encoded (the engine
// counts labelled metrics there and fills in a missing classification),
// Options.OnEncoded every record with its encoding (the event sinks take
// the same bytes).
//
// # Files on disk
//
//	gannet-20260301-100000.jsonl.zst   closed, compressed (one zstd stream)
//	gannet-20260301-110000.jsonl.zst
//	gannet-20260301-120000-1.jsonl     a second file started in the same second
//	gannet-20260301-120000-1.jsonl.zst.tmp   compression in progress
//	gannet-20260301-130000.jsonl       the file being written
//
// Closed files are compressed with zstd on one background goroutine
// (compress.go), crash-safe: compress to NAME.jsonl.zst.tmp, fsync, rename
// to NAME.jsonl.zst, fsync the directory, then remove NAME.jsonl. At start,
// New removes temporary files, removes plain files whose .zst exists (the
// crash came between rename and removal) and queues the other plain files
// (closed by a crash or a stop). Close does not wait for a compression: it
// cuts it short and the next start does it again.
//
// ReadFile, ReadDir and ParseRecord read the records back (plain or
// compressed, in file order, a plain file hidden by its .zst twin), so that
// tests and tools can replay a run: the per-recipient outcome follows from
// the records alone.
package logrec
