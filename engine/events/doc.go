// Package events ships Gannet's log records (engine/logrec) to the
// operator's own systems: signed webhooks and AMQP 0-9-1 exchanges
// (RabbitMQ), one [[event_sink]] each (docs/contract.md, "Event sinks").
//
// # Durable, at least once, never in the way of mail
//
// The engine hands every record to Shipper.Add on the goroutine that
// writes it (logrec.Options.OnRecord), the one place all records pass.
// Add stamps the record with a uuid (written to the log file too), encodes
// it once, and appends it to the pending buffer of each sink that takes it
// (types, tenant). It never waits: a sink whose writer is Options.Pending
// records behind drops the record and counts it (result "dropped"), as
// logrec does when the disk falls behind.
//
// Each sink has its own journal — a durable queue on disk, under the
// spool's events/NAME/ directory — and two goroutines: a writer that
// appends the pending records to the journal (written to the operating
// system at once, synced every second, at rotation and at Close) and a
// shipper that sends the journal from the sink's cursor:
//
//	SPOOL/events/hooks/0000000000000000.seg   records 0 … (8 MiB segments)
//	SPOOL/events/hooks/00000000000a1f3c.seg   records 663356 …
//	SPOOL/events/hooks/cursor                 "663400 663500 2736189211" (64 bytes)
//
// A record's number (seq) is its segment's first number (hex in the name)
// plus its line. A journal line is the record's JSON behind a small header
// (entry.go). The cursor file holds next, the first record not yet done,
// batch_end, the end of the batch being shipped, and a checksum; it is
// rewritten in place (journal.go). batch_end is saved before the batch's
// first attempt, so that after a restart the same records go out again,
// under the same Idempotency-Key; next is saved every 100 ms, so a crash
// ships up to that much again. A record is done when its sink took it
// (2xx; the broker's confirm), refused it for good (a 4xx other than 408
// and 429: dropped, counted "rejected", logged), when it was still failing
// max_retry_age after it was written ("expired"), or when the backlog
// passed max_backlog (the oldest are dropped, "dropped"). Segments whose
// records are all done are deleted.
//
// The journal, rather than the log files, is the source because the log
// writer drops records when the disk falls behind, rotates, compresses and
// deletes its files on its own schedule; the journal keeps exactly the
// records a sink still owes, and a dead sink costs disk (bounded by
// max_backlog), not mail throughput. The cursor is a file of its own, not
// a key in the spool's Pebble index, so that shipping adds no write to the
// spool's commit path.
//
// What a crash can lose: the records Add took in the last moment before
// the writer handed them to the operating system (milliseconds), as for
// the log files. A clean stop (SIGTERM) writes them. A power loss can also
// lose the last second of unsynced records, and can bring back an older
// cursor, which ships some records twice.
//
// # Sinks
//
// A webhook gets one POST per record (or a JSON array with batch = true),
// signed: X-Gannet-Signature is "v1=" and the hex HMAC-SHA256, keyed with
// the sink's secret, of X-Gannet-Timestamp's value, ".", and the body.
// Failed attempts are retried with exponential back-off (Options.RetryMin
// doubling to RetryMax, with jitter).
//
// An AMQP sink publishes each record as a persistent message (delivery
// mode 2; message id the uuid, type the record type) to exchange with the
// routing key template filled in ({type}, {tenant}, {campaign}), on a
// channel in confirm mode, and counts a batch shipped when every message
// is confirmed. A broken connection is dialled again by the next attempt.
package events
