// Package mtasts is SMTP MTA Strict Transport Security (RFC 8461) for
// Gannet's outbound delivery: which MX hosts of a destination domain may
// take its mail, and whether TLS with a valid certificate is a must.
//
// # Parts
//
//   - record.go: the "_mta-sts.DOMAIN" TXT record (§3.1), parsed by
//     ParseRecord and chosen among a name's TXT records by SelectRecord.
//   - policy.go: the policy file (§3.2), parsed by ParsePolicy, and the
//     match of an MX host name against its mx patterns (§4.1).
//   - fetch.go: the HTTPS fetch of
//     https://mta-sts.DOMAIN/.well-known/mta-sts.txt (§3.3): the name is
//     resolved through the Resolver given (Gannet's own DNS client, never
//     the system's) and only those addresses are dialled; the certificate
//     must be valid for mta-sts.DOMAIN (WebPKI plus the extra roots given);
//     redirects are refused; the answer must be 200 with Content-Type
//     text/plain and at most 64 KiB; the whole fetch is bounded by a
//     short timeout.
//   - cache.go: the Cache that the delivery path asks (Cache.Lookup): the
//     policies in force, kept in memory and in a file written atomically
//     in the spool directory, so that a restart does not refetch them.
//
// The parsers do no I/O and are fuzzed (FuzzSTSRecord, FuzzSTSPolicy).
//
// # When a policy is (re)fetched (§5.1)
//
// Every Lookup asks for the TXT record (the resolver caches it by its TTL).
// A policy is fetched when there is none in the cache, when the TXT
// record's id differs from the cached policy's, or when the cached policy
// has outlived its max_age. A fetch that fails leaves the cached policy in
// force until it expires; without one, the domain is treated as having no
// policy, and the fetch is not tried again for that domain before
// Options.RetryAfterFailure. A domain whose TXT record has gone keeps its
// cached policy until it expires (§3.1, §5.1: removing the record does not
// end a policy; a policy of mode none does). A cached policy older than
// half its max_age (at most a day) is fetched again in the background, the
// delivery going on under the cached one (§10.1: refresh before expiry);
// Cache.Close stops those fetches.
package mtasts
