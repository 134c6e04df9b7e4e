// Package resolver finds where mail for a domain goes: its MX hosts, their
// addresses, and the site key that groups domains served by the same hosts.
// It speaks DNS itself with github.com/miekg/dns to recursive nameservers
// (from the configuration or /etc/resolv.conf), so that it controls
// transports, timeouts, caching and error classes, which the standard
// library's resolver hides.
//
// # Resolution
//
// Resolve(domain) follows RFC 5321 §5.1:
//
//  1. The domain is lower-cased, its trailing dot removed and, when it is an
//     internationalized name, converted to A-labels (RFC 5890). An address
//     literal "[192.0.2.1]" or "[IPv6:…]" (RFC 5321 §4.1.3) needs no DNS.
//  2. MX records are looked up. NXDOMAIN means the domain does not exist:
//     a permanent 550 5.1.2. A lone "MX 0 ." is a null MX (RFC 7505 §3): the
//     domain takes no mail, a permanent 556 5.1.10, and its addresses are
//     not used.
//  3. Without MX records (NODATA) the domain itself is the implicit MX with
//     preference 0, and its own A and AAAA records are used (RFC 5321 §5.1).
//     If it has none either, the failure is permanent (550 5.1.2).
//  4. Otherwise the hosts are sorted by preference, lowest first; hosts of
//     equal preference are shuffled for every call (RFC 5321 §5.1 asks for
//     random selection among them) with an injectable random source. At
//     most Config.MaxMXHosts are used.
//  5. Each host's A and AAAA records are asked for concurrently, both
//     families always (additional-section glue is not trusted: answers are
//     only taken for the name that was asked). Addresses are listed IPv4
//     first. Hosts without addresses are left out; if none is left, the
//     failure is permanent when every host is known not to exist (NXDOMAIN,
//     550 5.4.4) and transient otherwise.
//
// CNAME chains are followed, inside one answer and with further queries
// when a server left the chain unfinished, up to MaxCNAMEChain records;
// longer chains and loops are transient failures (a misconfiguration that
// its owner may fix). Every other failure, SERVFAIL, REFUSED, timeouts,
// network errors, malformed answers, is transient, 451 4.4.3: "temporary
// unless known permanent".
//
// Failures are *smtpwire.Error values (Gannet's one error model) carrying the SMTP code, the enhanced status
// code (RFC 3463), generic text for peers and the cause for logs; the
// causes are sentinel errors (ErrNullMX, ErrNoSuchDomain, …) for errors.Is.
//
// # Transport
//
// Queries go over UDP with EDNS0 and a 1232-byte payload size (RFC 6891,
// the DNS Flag Day 2020 value that avoids IP fragmentation). A truncated
// answer (TC bit) is asked again over TCP (RFC 7766 §5). Nameservers are
// tried in order; SERVFAIL, REFUSED, a timeout or a network error moves on
// to the next one. Each query to one server waits at most Config.Timeout.
//
// # Caching
//
// Two bounded caches with random eviction keep answers per (name, type) and
// built routes per domain. An answer is kept for the smallest TTL along its
// CNAME chain; a negative answer (NXDOMAIN or NODATA) for the smaller of its
// SOA record's TTL and SOA MINIMUM field (RFC 2308 §5), and not at all when
// it carries no SOA. TTLs are clamped to [MinTTL, MaxTTL] (5s and 1h by
// default; RFC 2308 §5 suggests 1–3 hours as the cap for negative answers).
// A route is kept until the first answer it was built from expires, and
// only when every answer in it was cacheable. Failures (transport errors,
// SERVFAIL, REFUSED) are never cached, so the next attempt asks again.
// Concurrent lookups of the same question or domain share one query through
// golang.org/x/sync/singleflight; a caller whose context ends returns at
// once while the shared lookup runs on, bounded by the query timeouts.
//
// # Sites
//
// Route.Site is the SiteKey of the MX host names (MXSite): sorted,
// lower-cased, joined by ",". Domains hosted on the same MX set share a
// site, and delivery keeps one ready queue, connection pool and set of
// limits per site. The key names every MX host, with or without addresses,
// so it does not change when one host's address lookup fails for a while.
// For an implicit MX the key is the domain itself. A SiteKey is a type, not
// a string: the relay_to smarthost is a site of its own (RelaySite), whose
// "host:port" is never taken for an MX host name (MXHosts is empty), and
// String gives either form for logs, metrics and the admin API.
//
// Sub-package dnstest has the DNS servers the tests use: an in-process
// miekg/dns server serving zone text, and a dnsmasq launcher.
package resolver
