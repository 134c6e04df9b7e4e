// Package dkim signs outgoing mail with DKIM (RFC 6376), using RSA-SHA256 or
// Ed25519-SHA256 (RFC 8463) keys, and generates key pairs with the DNS TXT
// record to publish for them.
//
// # Design
//
// The signatures are Gannet's own code (signer.go, canon.go): the relaxed
// body canonicalization and its SHA-256 (RFC 6376 §3.4.4, §3.4.5), the
// relaxed header canonicalization of the signed fields and of the
// DKIM-Signature field itself with an empty "b=" (§3.4.2, §3.7), and the
// signature with the key's crypto.Signer: RSASSA-PKCS1-v1_5 over SHA-256
// for rsa-sha256 (§3.3.1), Ed25519 over the SHA-256 digest for
// ed25519-sha256 (RFC 8463 §3). The fields are formatted as
// github.com/emersion/go-msgauth v0.7.0 formatted them when Gannet signed
// with it (tags in its order, its folding); the tests check, for the same
// key, time and header list, that every field is byte for byte
// go-msgauth's, that its body hash equals go-msgauth's for any body
// (FuzzBodyHash), and that go-msgauth's and dkimpy's verifiers accept it.
// go-msgauth is a test dependency only.
//
// The body is canonicalized in one pass and hashed in place: a scan finds
// the few bytes that change (a run of white space, a tab, white space
// before a line end, an LF without CR) — 32 bytes at a time with AVX2 on
// amd64 (scan_amd64.s), eight at a time in Go elsewhere or with the build
// tag purego — and the spans between them go to SHA-256 as slices of the
// message, so a plain-text body is hashed as one span, with no copy and no
// allocation per line; short spans are gathered into one buffer first.
// Line ends are repaired as go-msgauth repairs them (a bare LF counts as
// CRLF), so that its hash and Gannet's agree on any body. The body hash is
// computed once per message and shared by every key that signs it.
//
// Signatures always use relaxed/relaxed canonicalization (RFC 6376 §3.4.2,
// §3.4.4), which survives the header refolding and trailing-space trimming
// that relays commonly do. The signed header list ("h=") is computed per
// message from the configured list: each name is listed as many times as
// the message has that field, and From, To and Subject once more
// (over-signing, RFC 6376 §8.15), so a second From or Subject added in
// transit breaks the signature. A configured name the message lacks is left
// out of "h=" unless over-signed, and From is always signed (RFC 6376
// §5.4). Repeated fields are signed from the bottom up (§5.4.2).
//
// "t=" is the system clock at signing; "x=" (WithExpiry) is t= plus the
// configured lifetime.
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
// through an atomic pointer. It is CPU work — about 1 ms per RSA-2048
// signature with Go's crypto (less with a BoringCrypto build, see the
// README), well under 0.1 ms per Ed25519 one, plus about 0.1 ms to hash a
// 100 KB body — so it must not run on a gnet event loop. Run it on the
// goroutines that already spool the message (the inbound Acceptor's
// workers, the HTTP handlers); the Go scheduler spreads them over
// GOMAXPROCS cores. No separate pool is needed. RSA keys are used with
// their precomputed CRT values (rsa.PrivateKey.Precompute). With the
// build tag openssl (and cgo) an RSA key signs through OpenSSL's libcrypto
// instead (rsa_openssl.go, package opensslrsa), about three times faster
// with the same signature bytes; RSABackend says which.
package dkim
