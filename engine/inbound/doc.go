// Package inbound is Gannet's SMTP listener: the protocol state machine of
// package smtpwire running inside gnet event loops.
//
// # Shape
//
// Each ListenerConfig gets its own gnet engine (gnet.Run with multicore,
// SO_REUSEADDR and the ticker on), so every callback knows its listener's
// configuration without looking at addresses. gnet reports the configured
// address even for "host:0", so Start asks the kernel: it duplicates the
// listening descriptor (Engine.Dup) and calls getsockname; Server.Addrs
// returns the result.
//
// A connection's state (conn) lives in the gnet.Conn context and is touched
// only on its event loop. OnTraffic peeks at the buffered bytes, feeds them
// to the smtpwire.Session in a loop (64 KiB at a time) and answers the
// events the session raises; the replies of one batch go out in one write
// (RFC 2920 pipelining). Bytes the session has not consumed stay in gnet's
// inbound buffer.
//
// # Hostile clients: what a connection may hold
//
// Replies: the session yields (EventFlush) whenever 32 KiB of replies wait,
// and the connection writes them before it feeds more; once more than
// maxOutbound (256 KiB) wait in gnet's buffer — the kernel's socket buffers
// are full, so the client is not reading — the client is dropped. So 4 MiB
// of pipelined "EHLO a" (about 100 MB of replies) costs the server a few
// hundred kilobytes, not 100 MB (TestUnreadRepliesBounded).
//
// Input while a worker holds the session: behind an AUTH only command lines
// may follow (a client following RFC 2920 §3.1 sends nothing behind it), so
// 256 KiB (extraInbound) is allowed; behind a message the next one may
// follow whole in BDAT chunks (RFC 3030), so MaxMessageSize more is. Past
// that the client is dropped.
//
// FuzzConnection drives a real listener over loopback with the session,
// the workers and the reply path together: fuzzed input, repeated up to 32
// times, written in pieces cut at random points, its replies read only
// once the client has sent everything; they must be well-formed SMTP and
// the server must forget the connection.
//
// # Hand-off
//
// The loop never blocks. When the session raises EventMessage (the final
// "." or the last BDAT chunk), the connection is marked busy, parsing stops
// and the message goes to the server's ants pool (non-blocking: a full pool
// answers 451 4.3.2; importing gnet releases ants' default pool, so the
// server makes its own). The worker calls Acceptor.Accept, which returns when
// the message is durable, then queues a closure on the connection's loop with
// EventLoop.Execute. On the loop the closure gives the reply to the session
// (Session.Respond), clears busy and parses whatever the client pipelined
// meanwhile; the reply and the answers to that batch leave in one write, so
// ordering holds by construction. (Execute rather than AsyncWrite plus its
// callback: the reply must pass through Session.Respond, which is not safe
// off the loop, so the write happens in the closure anyway.) AUTH checks take
// the same path, since a password hash costs milliseconds.
//
// # Timeouts
//
// gnet has no deadlines. Each connection keeps an atomic deadline, a
// deadline per line like Postfix's per-record deadline: it is armed when the
// session completes a line (Session.Lines: a command line, a SASL response,
// a line of message data or 1000 octets of one, a BDAT chunk) and when a
// worker's answer or a TLS handshake is done — never by the bytes of an
// unfinished line, so a client trickling a byte at a time is cut off
// (issue #15). Its length follows what the session waits for
// (Session.InData, InTransaction, InAuth; RFC 5321 §4.5.3.2): DataTimeout
// inside a DATA body or a BDAT chunk, CommandTimeout inside a transaction or
// a SASL exchange, IdleTimeout otherwise (after the greeting, RSET, a
// message); SessionTimeout caps every deadline, so a client busy with slow
// but complete lines ends there too. None runs while a worker holds the
// session. The listener's OnTick (on gnet's ticker goroutine) sweeps the
// registry of live connections and queues a check on the loop of each one
// past its deadline; the check writes "421 4.4.2" (Session.Timeout) and
// closes.
//
// # TLS
//
// gnet has no TLS. STARTTLS (RFC 3207) and implicit TLS (RFC 8314) keep the
// connection on its loop (design (a) of the library notes), rather than
// duplicating the socket onto a goroutine per TLS session (design (b)):
// one lifecycle, one registry, one set of limits and timeouts for every
// connection, and no goroutine per idle TLS client. A cipherPipe is the
// net.Conn under tls.Server: the loop pushes the ciphertext gnet read into it.
// The handshake runs on a short-lived goroutine bounded by CommandTimeout;
// its writes go out with AsyncWrite. Its result comes back to the loop with
// Execute; from then on the loop decrypts on demand, pulling records from the
// tls.Conn until the pipe answers "would block" — a temporary net.Error,
// after which crypto/tls keeps the connection and the partial record
// (TestTLSRecordsSplitAcrossReads guards that behaviour across Go upgrades).
// After the 220 to STARTTLS every byte already buffered is discarded unread
// (RFC 3207 §4.2; the CVE-2011-0411 command injection), and the session
// forgets EHLO, AUTH and the transaction (Session.TLSStarted). TLS 1.2 is the
// minimum unless the configuration says otherwise. The 16 KiB buffer the loop
// decrypts into is borrowed from a pool for each read, so an idle TLS
// connection costs about 10 KB (crypto/tls's own state) instead of 26 KB;
// a plaintext one about 2 KB (TestIdleConnectionMemory).
//
// # Relay control and AUTH
//
// A client whose address is inside RelayHosts may relay anywhere. Otherwise,
// when AUTH is offered it must authenticate before MAIL (530 5.7.0); when it
// is not, its recipients are refused with 554 5.7.1. AUTH is offered only when
// the server has an Authenticator and, with AuthRequireTLS, only under TLS.
//
// Password guessing is answered per client address, not per connection (an
// authGuard per listener; IPv6 per /64): failures are counted within
// AuthFailWindow; from AuthFailDelayAfter on, every AUTH answer to that
// address waits AuthFailDelay — on a time.AfterFunc that then queues the
// answer on the loop, so neither the loop nor a worker is held — and at
// AuthFailBlockAfter the address gets "421 4.7.0" at AUTH (and at connect,
// unless it is a relay host, which may still send without AUTH) until the
// window has passed. An attempt is counted on the loop, under the guard's
// lock, before its password goes to a worker: a check in flight counts as a
// failure until its outcome is known (a success gives its place back), and
// an address has at most 4 checks running (maxAuthInFlight); further AUTH
// wait, without a timeout, until one ends. So however many AUTH one address
// sends in parallel, at most AuthFailBlockAfter of its passwords are
// checked in a window (TestAuthParallelConnections; issue #15 saw 300
// parallel guesses get 42 checks and a right 16th one accepted). The table
// is bounded and pruned from OnTick.
//
// # Rejections and traces
//
// Each session has an smtpwire.Observer, the connection itself: outside
// traces the session calls it only for its 4xx/5xx replies, which go to
// Options.OnRejection with the verb they answer and a per-connection
// sequence number (the engine caps and logs them as Rejection records);
// refusals at connect are reported by the listener. A session that goes
// well calls nothing. When Options.Trace has subscribers, a session
// notices at its next batch of input (one atomic load of the hub's
// generation per batch) and, if a subscriber's filter matches it, turns
// the observer's trace mode on and publishes its commands, replies, body
// sizes and TLS handshakes to the hub; untraced sessions build no text.
//
// # Behind a proxy: the PROXY protocol
//
// With ProxyProtocol a connection starts as a proxyWait, not a conn
// (proxy.go): nothing is written and no session exists until its PROXY
// header (package proxyproto, v1 or v2) has been parsed; proxy-protocol.txt
// §2 forbids processing the connection before. The header is peeked at on
// the loop, at most proxyproto.MaxLength bytes, and dropped once parsed;
// the connection is then opened by listener.open exactly as a direct one,
// with the header's source as its peer — so RelayHosts, the AUTH guard,
// MaxConnectionsPerIP, Received, Rejections, traces and the Greeter all see
// the client. Bytes that came with the header (an implicit-TLS ClientHello)
// are handled at once. A LOCAL (v2) or UNKNOWN (v1) header keeps the
// proxy's address. The waiting connections count against MaxConnections
// and are swept for ProxyHeaderTimeout like the others' deadlines.
//
// Refusals are a 421 (not a 554: a client behind a misconfigured proxy
// should retry, not bounce), or silence on an implicit-TLS listener, then
// close: at once for a peer outside TrustedProxies (after reading and
// dropping what it sent within a second, so that it gets the 421 and a FIN
// rather than a reset), on the first bytes that cannot start a header, at
// the timeout. Each is counted (Metrics.ProxyRefused) and reported as a
// Rejection with Command "PROXY" and the TCP peer's address.
//
// # Draining
//
// Stop answers new connections 421 4.3.2, tells sessions between
// transactions the same, lets transactions in progress finish (their final
// reply is sent, then the 421), waits for the workers, and then stops the
// engines; gnet's Stop is a hard close of whatever is left when the context
// ends.
package inbound
