// Package events ships Gannet's log records (engine/logrec) to the
// operator's own systems: signed webhooks and AMQP 0-9-1 exchanges
// (RabbitMQ), one [[event_sink]] each (docs/contract.md, "Event sinks").
//
// # Durable, at least once, never in the way of mail
//
// The engine hands every record to Shipper.AddEncoded on the goroutine
// that writes it to the log (logrec.Options.OnEncoded, the one place all
// records pass), with the JSON line the log writer encoded: the journal
// holds the very bytes of the log file, encoded once. (Add encodes a
// record itself.) The record gets a uuid before it is encoded (written
// to the log file too). Add never waits: it appends the record, once, to
// a pending buffer with the set of sinks that take it (types, tenant);
// when the writer is Options.Pending records behind it drops the record
// and counts it (result "dropped") for each of them, as logrec does when
// the disk falls behind. A record no sink takes is not kept.
//
// # One journal, a cursor per sink
//
// The journal is a durable queue on disk, in the spool's events/
// directory, shared by the sinks: one writer goroutine appends the pending
// records in one write(2) per batch (letting records gather for 5 ms
// after a write; synced every second, at rotation and at Close); each
// sink has a shipping goroutine that sends the records it takes from its
// own cursor:
//
//	SPOOL/events/0000000000000000.seg   records 0 … (8 MiB segments)
//	SPOOL/events/00000000000a1f3c.seg   records 663356 …
//	SPOOL/events/hooks.cursor           "663400 663500 2736189211" (64 bytes)
//	SPOOL/events/amqp.cursor            "663120 0 1893302255"
//
// A record's number (seq) is its segment's first number (hex in the name)
// plus its line. A journal line is the record's JSON behind a small header
// (entry.go). An index in memory (journal.go) gives each record's place
// in its segment and the sinks that take it, so that a sink reads a batch
// as one byte range (one pread(2), from the page cache when it keeps up)
// and skips the records of other sinks without reading them. A cursor
// file holds next, the
// first record not yet done for the sink, batch_end, the end of the batch
// being shipped, and a checksum; it is rewritten in place (cursor.go).
// batch_end is saved before the batch's first attempt, so that after a
// restart the same records go out again, under the same Idempotency-Key;
// next is saved every 100 ms, so a crash ships up to that much again. A
// record is done for a sink when the sink took it (2xx; the broker's
// confirm), refused it for good (a 4xx other than 408 and 429: dropped,
// counted "rejected", logged), when it was still failing max_retry_age
// after it was written ("expired"), or when the sink's backlog passed
// max_backlog (its oldest are dropped, "dropped"). Segments whose records
// are done for every sink are deleted. A sink added to the configuration
// starts at the journal's end; a removed sink's cursor is deleted.
//
// An earlier version kept one journal per sink (SPOOL/events/NAME/, the
// same segment format, its cursor in NAME/cursor): after an upgrade each
// sink ships its old journal to the end first, then removes it and goes
// on with the shared one (legacy.go).
//
// The journal, rather than the log files, is the source because the log
// writer drops records when the disk falls behind, rotates, compresses and
// deletes its files on its own schedule; the journal keeps exactly the
// records a sink still owes, and a dead sink costs disk (bounded by
// max_backlog), not mail throughput. The cursors are files of their own,
// not keys in the spool's Pebble index, so that shipping adds no write to
// the spool's commit path.
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
