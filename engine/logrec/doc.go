// Package logrec writes Gannet's log records: one JSON object per line for
// every event in a message's life (Reception, Delivery, TransientFailure,
// Bounce, Expiration, AdminBounce), with KumoMTA's field names so that tools
// written for KumoMTA logs read them (shared/docs/contract.md, "Log
// records").
//
// Record.AppendJSON encodes a record by hand — no reflection, no allocation
// beyond the caller's buffer — because a busy relay writes several records
// per message. Writer moves the bytes to disk off the delivery path: callers
// enqueue on a buffered channel and never block; a single goroutine writes
// through a bufio.Writer, flushes at least once a second, and starts a new
// file (gannet-YYYYMMDD-HHMMSS.jsonl) every hour or past a size limit. When
// the disk cannot keep up and the channel is full, records are dropped and
// counted (gannet_log_records_dropped_total) instead of slowing delivery: the
// spool, not the log, is the record of what must be delivered.
package logrec
