// Command smtpsink is a fast SMTP receiver for benchmarks and tests, with
// fault injection so that it can stand in for a real provider.
//
// It accepts mail on one or more loopback addresses, counts connections,
// messages, recipients, bytes and replies by code, and optionally stores each
// message (-dump) or its X-Blast-Id / Message-ID (-ids). Faults are given per
// protocol stage:
//
//	-fail "rcpt:550:0.1"                 10% of recipients get 550
//	-fail "mail:451:0.2:4.7.0 Try later" custom text
//	-fail "dot:421:0.05"                 421 also closes the connection
//	-fail "rcpt~@slow.test:421:#30"      scripted: the first 30 matching RCPTs, then never
//	-fail "rcpt~bad:550:1" -fail "dot~spam:554:1" -drop "dot~cut:1"
//	                                     only addresses (mail, rcpt) or
//	                                     senders (data, dot) that contain it
//	-delay "dot:200ms" -drop "data:0.01" -throttle 1000/m -max-conns 20
//
// With -persona FILE each listen address plays a mailbox provider (see
// sink.Persona): TOML [[persona]] tables with listen, a hidden rate
// (messages/s, token bucket) and connection limit, the replies used when
// they are exceeded (rate_reply "421 4.7.28 …" at MAIL, or "451 4.7.0 …"
// at rcpt or dot; a refusing 421 greeting past max_conns), deferral bursts
// (defer_every, defer_for), greylisting (greylist = "30s") and a share of
// unknown users (unknown_users, 550 5.1.1, the same addresses every time);
// -dns then serves the personas' domains (MX) and MX hosts (A) on
// 127.0.0.1 at a free port, told on stderr and at /dns of -http. Each
// persona's counters (accepted, deferred by reason, unknown, breaches: the
// pushbacks of its hidden rate and connection limit) are in /stats under
// personas, in the summary line's totals and, at exit, a line each.
//
// A one-line summary goes to stdout every -stats-interval and on SIGINT or
// SIGTERM; -http ADDR serves the counters as JSON at /stats (with the
// STARTTLS handshakes, tls_handshakes, and how many resumed a session,
// tls_resumed). For a client
// that goes away without QUIT (a relay killed under load) the counters say
// what it left on the wire: cut_after_reply, the messages of its last two
// transactions accepted with a 250 it may not have read (a pipelining
// client writes ahead of the replies), and cut_in_data, a message it was
// still sending — bench/crashtest's bound on duplicates. The work is done
// by package gannet/bench/smtpsink/sink, which tests start in-process.
package main
