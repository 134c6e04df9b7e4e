// Package smtpwire is Gannet's SMTP protocol with no I/O: the command and
// path parsers, replies and their parser, the DATA dot codec, the server
// session state machine and the client transaction state machine. It
// imports the standard library and mailaddr (domains) only, never blocks and
// never reads a clock, so it runs inside gnet event loops and is tested by
// feeding bytes.
//
// # Server session: bytes in, events and reply bytes out
//
// The host (engine/inbound) owns the socket. It writes Greeting, then feeds
// what it reads to Session.Feed, which consumes as much as it can and returns
// an Event. Replies accumulate in Output; the host writes them and calls
// ConsumeOutput. Most commands (EHLO, RSET, NOOP, syntax errors, bad
// sequences, line limits, SIZE, recipient limits, the DATA and BDAT bodies)
// are answered by the session itself. Decisions that need policy or storage
// become events the host answers with Respond: EventMail, EventRcpt,
// EventMessage and EventAuth. Until Respond is called, Feed consumes nothing,
// so unread pipelined bytes simply stay in the host's input buffer while a
// worker goroutine makes the message durable; no goroutine runs inside the
// session and nothing in it is shared.
//
// Pipelining (RFC 2920) falls out of this shape: commands are processed
// strictly in order, one event at a time, and their replies are appended to
// Output in the same order; the host flushes Output whenever it likes (at
// the latest when Feed returns EventNone, i.e. when the input is used up).
// The replies to one Feed call are bounded: once ServerConfig.MaxOutput
// bytes (32 KiB by default) wait in Output, Feed stops before the next
// command and returns EventFlush. A client that pipelines megabytes of
// "EHLO a" (answered with about 24 times its size) therefore makes the host
// write replies a bounded piece at a time, and the host can see that they
// are not read before it makes more (RFC 2920 §3.1 leaves it to the client
// to avoid that deadlock).
//
// Lines counts the input lines the session has completed — command lines,
// SASL responses, lines of message data (or every DataLineMax octets of a
// line without an end, and the end of each BDAT chunk). A host times each
// line out from it (RFC 5321 §4.5.3.2), re-arming its timer only when the
// count moves, so that a client trickling a byte at a time cannot hold a
// connection by keeping it busy.
//
// Costs: a command line that arrives whole is parsed in place, with no copy
// and no allocation for NOOP, RSET, RCPT refusals and the like; only values
// the host keeps (addresses, the HELO name, the envelope, the body) are
// allocated. A line split across reads is copied into a small buffer, capped
// at MaxCommandLine (MaxAuthLine for AUTH).
//
// # The DATA body and SMTP smuggling
//
// DotDecoder decodes the body as a byte-at-a-time state machine with a
// fast path that copies runs of whole CRLF lines, up to the next line that
// starts with ".", in one piece (one bytes.IndexByte per line, one
// vectorised count of the CRs per run). The body buffer starts as large as
// SIZE= or, without it, the session's previous body says (the host's
// BodyBuffer may lend a larger one) and grows by doubling. Only
// <CR><LF>.<CR><LF>, with real CRLF pairs on both sides of the dot, ends a
// message: "\n.\n", "\r\n.\n", "\n.\r\n" and "\r.\r\n" are content (a "."
// line, which is stuffed again when relayed), so a crafted message can never
// be split into two by Gannet or by the next hop (the 2023 SMTP smuggling
// attacks). Bare LF and bare CR line endings are turned into CRLF
// (BareLFNormalize) or make the session refuse the message with 550 5.6.0
// after reading it to its end (BareLFReject). The size limit is enforced on
// the decoded bytes: past it nothing more is stored, the body is read to its
// end and refused with 552 5.3.4. There is no per-line length limit (RFC 5321
// §4.5.3.1.6 asks for 1000 octets; refusing real mail over it helps nobody,
// and memory is bounded by the size limit anyway). BDAT chunks (RFC 3030)
// are taken raw, without dot-unstuffing or line-ending changes.
//
// # STARTTLS
//
// On STARTTLS the session writes 220 and returns EventStartTLS with n just
// past the command: the host flushes Output, discards everything else it has
// buffered (RFC 3207 §5, CVE-2011-0411), handshakes and calls TLSStarted,
// which forgets EHLO, AUTH and the transaction.
//
// With ServerConfig.RequireTLS the EHLO reply of a TLS session offers
// REQUIRETLS (RFC 8689 §3) and MAIL … REQUIRETLS is accepted there and
// recorded in Envelope.RequireTLS; without TLS it is not offered and the
// parameter gets 530 5.7.10 (ReplyRequireTLSNeeded).
//
// # DSN
//
// The session advertises DSN (RFC 3461) and parses its parameters: RET and
// ENVID of MAIL into MailCmd and the Envelope, NOTIFY and ORCPT of RCPT
// into the recipient's Path (Notify, ORcpt), xtext decoded (§4); a
// malformed or repeated one is refused with 501 5.5.4. Acting on them
// (keeping them, sending the DSNs owed) is the host's business. The client
// side passes them on to a server that offers DSN (§6.2.1) and drops them
// otherwise.
//
// # Observer
//
// A host that wants to log refusals or trace sessions sets an Observer
// (SetObserver): outside trace mode it hears only the 4xx/5xx replies,
// each with the verb it answers; in trace mode every command line (AUTH
// initial responses and SASL responses as "***"), the size of each body
// and every reply.
//
// # Client side: envelope in, commands out; replies in, outcomes out
//
// ParseEHLO reads a server's extensions. ClientTxn is the client half of
// one mail transaction (RFC 5321 §3.3), shaped like the server session: the
// host (engine/outbound) owns the socket and the clock, the transaction owns
// the protocol. Begin takes the message (ClientMessage: the envelope, the
// size and what the content needs) and the server's Extensions, and
// chooses: the MAIL parameters the server offers (SIZE, BODY=8BITMIME,
// SMTPUTF8, and with DSN the message's RET and ENVID and each recipient's
// NOTIFY and ORCPT); with PIPELINING the whole envelope in one write (RFC 2920
// §3.1), and with CHUNKING as well the message as one BDAT LAST chunk in
// that write (RFC 3030 §2, §4.2) when the body is CRLF-clean and the host's
// policy allows; RSET first when the host says its connection needs it.
// It refuses, before anything is sent, a message whose envelope needs
// SMTPUTF8 from a server without it (RFC 6531 §3.4), that is larger than
// the server's SIZE (RFC 1870 §6), or that needs REQUIRETLS from a server
// without it (RFC 8689 §4.2.1; MAIL then carries REQUIRETLS).
//
// Send returns what to write next: command bytes, followed by the body
// dot-stuffed (after a 354) or as it is (after BDAT LAST), or a lone "."
// for a server that answered DATA with 354 when no recipient was left
// (RFC 2920 §3.1). Feed takes the server's bytes and reads one reply per
// call as the answer to the oldest command not yet answered (RFC 2920
// §3.2); a 421 means the server is closing (RFC 5321 §3.8), and pipelined
// replies still outstanding count as that 421. Once Settled, Outcome gives
// each recipient the reply that decided it and the command that reply
// answered (its RCPT refusal, the MAIL or DATA refusal, the reply to the
// message, a 421 to the opening RSET, or nothing when the server closed
// before its RCPT was sent); Closing, NeedsRSET and Replayable say what the
// connection is good for next. The transcripts in testdata/client play
// every kind of transaction with the server's bytes cut at every position.
//
// # Client AUTH
//
// ClientAuth is the client side of AUTH (RFC 4954) for a relay that logs
// in to a smarthost: PLAIN with its initial response (RFC 4616), or LOGIN
// when that is all the server offers (ChooseAuthMechanism). Next gives the
// line to write, Feed takes the reply; a refusal is an *AuthError carrying
// the server's reply. Transcripts are in testdata/clientauth.
package smtpwire
