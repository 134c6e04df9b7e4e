// Package crash checks Gannet's promise that no message acknowledged with
// "250" is ever lost, by doing to a real bin/gannet what a bad day does.
//
// Run (the kill test) drives bin/gannet with bin/smtpblast and lets it
// deliver to bin/smtpsink, and kills gannet with SIGKILL at random moments:
//
//	round 1..K:  start gannet ─ smtpblast -ids blast-rN.ids -run-id rN ─▶ gannet ─▶ smtpsink -ids -dump
//	             … random 1–6 s …  SIGKILL gannet, SIGTERM smtpblast (it flushes its ids);
//	             even rounds suspend delivery to crash.test (admin API) while
//	             smtpblast runs for 50–75% of the lifetime, then stop it and
//	             resume, so that the kill falls into a drain with no mail arriving
//	final:       start gannet with no load; wait until the queue is empty and
//	             every acknowledged id has arrived; stop everything
//
// smtpblast records every message the relay answered with 250 (one ids file
// per round, since its connections fail while gannet is down); the sink
// records every message it accepted and dumps it. The verdict compares the
// two records:
//
//   - lost: acknowledged but never delivered — must be 0;
//   - corrupted: delivered with a body whose SHA-256 differs from the
//     X-Blast-Sum header smtpblast put in, or with a header that no longer
//     names its X-Blast-Id — must be 0;
//   - duplicates: delivered more than once — allowed (a crash between the
//     receiver's 250 and the spool update repeats a delivery; RFC 5321 §6.1
//     accepts duplicates, never losses), reported beside their bound: what
//     was on the wire at the kills, counted by smtpsink (served with -http;
//     read after each kill once the killed gannet's connections are all
//     gone) for the connections that ended without QUIT — a message
//     accepted with no command after its 250 (gannet may not have read it)
//     or one still in DATA. The spool makes a delivery outcome durable
//     within a few milliseconds (queue: "Delivery outcomes"), so only the
//     deliveries of that last moment may come again beyond the bound;
//     crashtest -dup-slack N fails a run whose duplicates exceed the bound
//     by more than N (0 for make crashtest);
//   - unacknowledged deliveries: spooled, but the client lost the
//     connection before the 250 — allowed, reported.
//
// A gannet that exits on its own, or prints "panic", is a crash of its own
// and fails the run.
//
// RunDiskFull puts the spool on a small tmpfs (root only), lets gannet fill
// it while the receiver is down until new mail gets "452 4.3.1", restarts
// gannet on the full disk, then starts the receiver and checks that every
// acknowledged message is delivered intact and that acceptance resumes by
// itself once the drained segments are deleted.
//
// The programs are found by path (Binaries), so the same code serves
// `go run ./bench/crashtest` (make crashtest, long runs) and the short run in
// e2e/crash_test.go (make test).
package crash
