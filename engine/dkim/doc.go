// Package dkim signs outgoing mail with DKIM (RFC 6376), using RSA-SHA256 or
// Ed25519-SHA256 (RFC 8463) keys, and generates key pairs with the DNS TXT
// record to publish for them.
//
// # Design
//
// The cryptography and canonicalization are github.com/emersion/go-msgauth's
// (v0.7.0): for each signature this package fills a dkim.SignOptions, writes
// the message to a dkim.Signer, closes it and takes Signature(), the header
// field to prepend. What this package adds is policy: which keys sign a
// message, which header fields they cover, key loading and rotation, and
// key generation.
//
// Signatures always use relaxed/relaxed canonicalization (RFC 6376 §3.4.2,
// §3.4.4), which survives the header refolding and trailing-space trimming
// that relays commonly do (go-msgauth's default is simple/simple). The
// signed header list ("h=") is computed per message from the configured
// list (go-msgauth would otherwise sign every field, Received included):
// each name is listed as many times as the message has that field, and
// From, To and Subject once more (over-signing, RFC 6376 §8.15), so a second
// From or Subject added in transit breaks the signature. A configured name
// the message lacks is left out of "h=" unless over-signed, and From is
// always signed (RFC 6376 §5.4).
//
// The "t=" tag is go-msgauth's: it reads the system clock through an
// unexported variable, so the signing time cannot be injected and tests
// check "t=" against a window around the real time instead.
//
// # Keys and domains
//
// [New] loads one key per [[dkim]] entry ([KeyConfig] converts from
// config.DKIM). Several entries may share a domain (for example an RSA and an
// Ed25519 key, as RFC 8463 §4 suggests); the message then gets one signature
// per key. [Signers.Sign] signs for the domains it is given, with every key
// of each; which domains a message is signed for is the message policy's
// choice (engine/policy: the From domain's key only on exactly that domain,
// never a parent's, and for a tenant's mail only when the domain is one of
// the tenant's own, plus the tenant's dkim_domain). [Signers.Reload]
// re-reads the key files (SIGHUP) and keeps the previous key of any file
// that no longer loads.
//
// # Concurrency and cost
//
// Sign is safe for concurrent use and takes no lock: the key set is read
// through an atomic pointer, and each signature has its own go-msgauth
// Signer (which hashes on a goroutine of its own behind an io.Pipe). It is
// CPU work — about 1 ms per RSA-2048 signature, well under 0.1 ms per
// Ed25519 one for a small message — so it must not run on a gnet event
// loop. Run it on the goroutines that already spool the message (the
// inbound Acceptor's workers, the HTTP handlers); the Go scheduler spreads
// them over GOMAXPROCS cores. No separate pool is needed.
package dkim
