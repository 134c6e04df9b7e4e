// Package tlsrpt is SMTP TLS Reporting (RFC 8460) for Gannet's outbound
// delivery: what happened to the TLS sessions Gannet opened with each
// destination's MX hosts, counted per policy domain and UTC day, and
// reported once a day to the addresses the domain publishes.
//
// # Parts
//
//   - record.go: the "_smtp._tls.DOMAIN" TXT record (§3), parsed by
//     ParseRecord and chosen among a name's TXT records by SelectRecord.
//   - report.go: the report (§4) as Go types, Build (pure: counts in,
//     report out), its gzip and the file name of §5.1.
//   - store.go: the Store that outbound delivery tells about every TLS
//     session (Store.Observe): counts per (day, domain, policy), with the
//     failure details of §4.4, bounded, and kept in a file written
//     atomically in the spool directory so that a restart loses nothing
//     but the last few seconds.
//   - mail.go: the report as a message for a "mailto:" address (§5.3).
//   - send.go: the Sender, which once a day (at a random time in the hours
//     after the UTC day ends, §4.1) builds each domain's report and sends
//     it to the "https:" (§5.4) and "mailto:" (§5.3) addresses of its TXT
//     record, retrying failed deliveries a bounded number of times.
//
// The TXT parser does no I/O and is fuzzed (FuzzTLSRPTRecord).
//
// # What is counted
//
// A session is one TLS negotiation with one MX address: a success when the
// handshake completed (and, under a policy, validated as the policy asks),
// a failure with a result type (§4.3) otherwise. Connections reused from a
// pool are not new sessions. Under an MTA-STS policy the MX host that does
// not match the policy counts as a "validation-failure". A session to a
// domain whose MTA-STS policy could not be fetched is a failure of its
// "sts" policy ("sts-policy-fetch-error", "sts-policy-invalid" or
// "sts-webpki-invalid"), whatever TLS did. A session with an MX host under
// DANE (RFC 7672) counts under policy type "tlsa", one policy per MX host:
// policy-string its usable TLSA records in presentation form ("3 1 1 …"),
// mx-host the host, policy-domain the destination domain; its failures have
// the DANE result types ("tlsa-invalid", "dnssec-invalid" for a failed TLSA
// lookup, "dane-required") or "starttls-not-supported".
package tlsrpt
