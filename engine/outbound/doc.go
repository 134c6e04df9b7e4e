// Package outbound is Gannet's SMTP client side: sessions with MX hosts
// and per-site connection pools that run one mail transaction per Deliver
// call.
//
// # Sessions
//
// A Client is one connection to one server address. Opening it connects
// (optionally from an egress source address), reads the greeting, says
// EHLO (HELO when EHLO is refused with 5xx, RFC 5321 §3.2) and, per the
// TLS policy, upgrades with STARTTLS (RFC 3207) and says EHLO again:
//
//   - opportunistic: STARTTLS when offered, certificate verified; when the
//     handshake fails and TLSPolicy.FallbackPlaintext is set ([tls]
//     fallback_plaintext, on by default) the address is dialled again and
//     the transaction goes in the clear, and the Outcome's Note says so;
//     without it the failure is a 451 4.7.10 for that host;
//   - opportunistic-insecure: the same without certificate verification;
//   - required: no STARTTLS or a failed handshake is a transient 451 4.7.10
//     for that host (the next MX is tried);
//   - disabled: never.
//
// A Manager keeps the TLS sessions of its handshakes (one LRU cache of
// sessionCacheSize, keyed by the host name, port and kind of certificate
// check) so that a new connection to the same host resumes one (TLS 1.3
// tickets, RFC 8446 §2.2) instead of a full handshake; a resumed session
// still passes the checks of the policy in force (sessionView).
//
// # Smarthosts
//
// Mail goes to a smarthost instead of the MX hosts when Options.RelayTo is
// set, or when the route's site is one (resolver.RelaySite: a [[tenant]] or
// [relay."DOMAIN"] relay_to chosen by engine/delivery). Options.RelayAuth
// gives its TLS — STARTTLS, implicit TLS from the first byte (RFC 8314
// §3.3) or none — and its login, sent with smtpwire.ClientAuth (AUTH PLAIN,
// or LOGIN when that is all the smarthost offers; RFC 4954) after EHLO,
// and only over TLS whose certificate was verified unless
// RelayAuth.AllowInsecureAuth (with a login, STARTTLS is required and never
// falls back to the clear). A refused login is a transient 451 whose text
// names the user and quotes the refusal, reported once per connection to
// Options.OnAuthFailure; traces show the AUTH command without credentials.
// Pools are kept per login (relayauth.go).
//
// # MTA-STS
//
// Options.STS gives the MTA-STS policy (RFC 8461) of the destination domain
// on every delivery to MX hosts (not to relay_to, not to an address
// literal). Under a policy in enforce mode only the MX hosts that match its
// mx patterns (§4.1) are tried, with STARTTLS required, TLS 1.2 at least
// and a certificate verified for the MX name (§4.2), whatever [tls] says
// and with no fallback to the clear; a host that does not match, offers
// no STARTTLS or fails the handshake is a transient 451 4.7.5 whose text
// says why ("MTA-STS: mx.example.test does not match the policy of
// example.test"). In testing mode delivery is as without a policy and the
// failures are only reported (Options.OnTLSFailure with policy "sts") and
// noted. Pools are kept per policy (domain and id) so that a connection
// checked under one policy carries only that policy's mail.
// Outcome.TLSPolicy names the policy the delivery ran under: sts-enforce,
// sts-testing, opportunistic, required or none.
//
// # REQUIRETLS
//
// A message with Envelope.RequireTLS (RFC 8689) goes only to MX hosts
// validated by DANE (usable TLSA records) or by the MTA-STS policy (enforce
// or testing), over verified TLS 1.2+, to servers that offer REQUIRETLS,
// and MAIL carries the parameter; otherwise a transient 451 4.7.10 says why
// (RequireTLSFailure tells the delivery loop to bounce it with 5.7.10 when
// it expires). A message with "TLS-Required: No" and without REQUIRETLS is
// delivered with neither MTA-STS nor DANE (§5). Both have pools of their
// own (requiretls.go).
//
// TLS reporting (RFC 8460, tlsreport.go): Options.TLSObserver is told of
// every STARTTLS negotiation on a new connection to an MX host, with the
// policy in force, the addresses and, for a failure, its RFC 8460 result
// type (starttls-not-supported, certificate-host-mismatch,
// certificate-expired, certificate-not-trusted, validation-failure); an
// MX host outside an MTA-STS policy is a validation-failure. The DANE
// check, when it comes, reports through the same TLSSession (a field for
// its policy, and the result types tlsa-invalid, dnssec-invalid and
// dane-required that engine/tlsrpt already names).
//
// A transaction (RFC 5321 §3.3) is run by smtpwire.ClientTxn, which holds
// the protocol: MAIL, the RCPTs and DATA in one write when the server
// offers PIPELINING (RFC 2920 §3.1), otherwise one command per reply; the
// message in that same write as one "BDAT <size> LAST" chunk when the
// server offers CHUNKING too and the body is CRLF-clean (RFC 3030;
// Options.NoChunking keeps to DATA); RSET first on a connection whose last
// transaction was abandoned; and what each reply decides. The Client only
// moves bytes: it writes what the transaction asks for, feeds it the reply
// bytes its replyReader reads, keeps the deadlines (the command timeout
// after commands, the data timeout after a body) and turns each
// recipient's outcome into a Result with statusOf: a refused RCPT, MAIL or
// DATA reply (5xx bounced, 4xx transient), or the reply to the message. A
// 2xx that did not answer the message delivers nothing. With no recipient
// accepted the body is not sent; a server that answered DATA with 354
// anyway gets a lone "." (RFC 2920 §3.1). A recipient the server closed
// before reaching (a 421 without PIPELINING) gets a local 451 4.4.2, and a
// connection lost before the outcomes are settled makes every recipient of
// the transaction transient (451 4.4.2). A 421 anywhere ends the session.
// Every 4xx/5xx reply received goes once to Options.OnErrorReply. The body
// goes out dot-stuffed (RFC 5321 §4.5.2): a CRLF-clean body — what the
// spool holds — is written as slices of itself with the extra dots in
// between, so large bodies are not copied; others go through
// smtpwire.AppendDotStuffed. On a plain TCP connection a body larger than
// the write buffer goes with its commands in one writev (Client.vector):
// as it is after BDAT, as those slices after DATA. SMTPUTF8 (RFC 6531) and BODY=8BITMIME
// (RFC 6152) are declared when the message needs them and the server
// offers them; a message whose envelope needs SMTPUTF8 bounces with 5.6.7
// at a server without it, and one larger than the server's SIZE with
// 552 5.3.4 (RFC 1870): smtpwire refuses them, the Client words the local
// reply.
//
// With DeliverChain (chain.go), a caller that has more mail for the same
// destination — the delivery loop's worker with its ready queue — lets
// the next message ride behind a DATA body: its MAIL, RCPTs and DATA go in
// the body's write (RFC 2920 §3.1), the reply to the "." comes first, and
// a message costs one round trip instead of two. Only a message ready at
// that moment follows (nothing waits for one), for the same pool, within
// MaxDeliveriesPerConn and with a message-rate slot free; a message the
// server never answered (it closed, or said 421, after the ".") is given
// back unattempted. A BDAT transaction already takes one round trip: the
// next one (RSET first, since this one's fate is not known yet) is written
// as soon as it is, so that two are in flight on the connection.
//
// # Pools
//
// A Manager keeps one pool per path: egress source (Envelope.Source: a
// local address and EHLO name, [[egress_source]]) × site (the sorted MX
// host set, or the smarthost named by Options.RelayTo) × TLS policy
// (Options.TLSFor: [tls_policy."DOMAIN"], so that a connection opened
// under one policy never carries mail that needs another). A pool never has more than
// Limits.Connections connections — counting those being dialled, in use
// and idle, and freeing a slot only after the socket is closed — reuses
// each for up to Limits.MaxDeliveriesPerConn transactions (newest idle
// first), sends RSET only before a transaction that follows an abandoned
// one, and closes connections idle for Options.IdleTimeout with QUIT. A
// pooled connection the server has closed meanwhile fails before any
// reply; the transaction then runs again on another connection. Limits
// come from a lookup function called on every delivery, so a config reload
// and the shaper's adaptive back-off apply at once. A GCRA rate limiter
// per pool paces transactions to Limits.MessageRate, and another paces new
// connections to Limits.ConnectionRate (max_connection_rate). With
// Options.SharedConns (a cluster's count, engine/cluster) a slot also
// needs one of the path's leases of the cluster; a slot the cluster
// refuses is given back and asked for again after a short wait.
//
// New sessions try the route's MX hosts in preference order and each
// host's addresses in order (at most Options.MaxAddresses). A refused or
// timed-out connection, a refused greeting or EHLO moves on to the next
// address; an address that failed twice in a row is passed over for
// Options.HostBackoff (doubling per further failure, capped at
// Options.HostBackoffMax). Back-off only reorders: when every address of a
// route is in back-off, the one whose back-off ends first is tried, so a
// single-MX destination is retried at each message's retry time.
//
// Deliver never returns an error: every failure becomes a per-recipient
// Result with a reply — the server's, or one Gannet made (4.4.1 no answer,
// 4.4.2 connection lost, 4.7.10 TLS required, 4.3.2 shutting down; marked
// Result.Local so that shaping never reads them as throttling) — and the
// Outcome records the host, peer address, egress source, TLS version and
// cipher, and the server's refusal of the session (SessionReply: a 421
// greeting) when no host gave one.
package outbound
