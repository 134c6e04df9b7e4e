// Package sink is a fast SMTP receiver for benchmarks and tests: it accepts
// mail, counts it, optionally stores it, and can play a misbehaving provider
// through fault injection.
//
// Design. One goroutine serves each connection with a bufio.Reader and a
// bufio.Writer. Replies are buffered and flushed only before a read that would
// block (the read buffer is empty), which is what RFC 2920 §3.2 asks of a
// server that offers PIPELINING and also makes a pipelined client's batch cost
// one write. Command lines are read with ReadSlice, so a command allocates
// nothing unless the message is being kept (dump directory, ids file,
// in-memory keep or an OnMessage callback).
//
// The message body is the byte stream after the DATA command with the
// transparency dots removed (RFC 5321 §4.5.2) and without the terminating
// "<CRLF>.<CRLF>"; only that exact sequence ends the data, so "<LF>.<LF>"
// never does. With CHUNKING (RFC 3030) the body is the concatenation of the
// BDAT chunks, byte for byte.
//
// Faults. Each protocol stage (connect, ehlo, mail, rcpt, data, dot) can be
// given a delay, a probability of answering with a chosen code (421 also
// closes the connection, RFC 5321 §3.8) or a script of the first N
// answers with it (a provider that defers for a while, then recovers),
// and a probability of dropping the
// connection without a reply. A throttle answers "421 4.7.0" at MAIL once the
// sink has taken N messages in the current window, and a connection limit
// answers "421 4.7.0" to connections past it. Faults can be swapped while
// the sink runs (SetFaults), so a test can make a destination recover.
// Randomness comes from a per-connection PCG seeded from Config.Seed, and time
// from Config.Now, so tests are repeatable.
//
// Personas. A listen address can play a provider (Persona): a hidden
// message rate (a token bucket, taken at MAIL, the first accepted RCPT or
// the end of data) and connection limit, deferral bursts, greylisting of
// (client IP, sender, recipient) triples seen for the first time, and a
// share of unknown users chosen by a hash of the address. The pushbacks of
// the hidden limits are counted as breaches, per persona.
//
// Statistics (connections current and most concurrent, messages, recipients,
// bytes, replies by code) are lock-free counters; Stats returns a snapshot
// and Handler serves it as JSON at /stats. A connection the client ends
// without QUIT (a read or write error, not a close of the sink's own) is
// counted for what it left: CutAfterReply when its last message was
// accepted and no command followed the 250 (a client that waits for the
// reply to the data before its next command, as Gannet does, may not have
// read it), CutInData when
// it ended inside DATA or BDAT. Their sum bounds what a killed relay may
// deliver again (bench/crashtest).
package sink
