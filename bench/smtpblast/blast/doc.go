// Package blast is the engine of the smtpblast load generator: it sends
// generated messages to an SMTP server (or an HTTP inject API) over many
// concurrent connections and measures throughput, latency and replies.
//
// Design. Run starts Config.Connections workers. Each worker owns one
// connection and claims message sequence numbers from a shared atomic
// counter, so the total is exact (Config.Messages) without a central
// dispatcher; a rate limit is a schedule rather than a token bucket: message
// n may start at start + (n-1)/rate. A worker pipelines MAIL, every RCPT and
// DATA in one write when the server offers PIPELINING (RFC 2920 §3.1), sends
// the body after 354, and records the latency from MAIL to the final reply,
// and from the end of the data to that reply (what a client waits for the
// server to make the message durable), in per-worker log-linear histograms
// (about 1.6% precision), merged at the end, so the hot path shares nothing
// but three atomic counters.
//
// Messages. Every message has a unique "X-Blast-Id: <run>-<seq>" and
// Message-ID, and a body of the requested size made of text lines of at most
// 78 characters, some starting with "." so that dot-stuffing (RFC 5321
// §4.5.2) is exercised. Bodies are generated once per size and stored
// dot-stuffed; only the header block is built per message.
//
// Every acknowledged message is reported to Config.IDs as
// "<queue id>\t<X-Blast-Id>\n", the queue id parsed from "250 ... id=<ID>"
// ("-" when the reply has none), for crash tests that compare what the server
// acknowledged with what arrived downstream.
//
// A run always ends: at Config.Messages, at Config.Duration (ten minutes when
// unset), or when its context ends; a transaction in flight is bounded by
// Config.Timeout per command.
package blast
