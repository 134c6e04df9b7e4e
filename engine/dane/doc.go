// Package dane checks a TLS server's certificate chain against the TLSA
// records of its SMTP service (DANE for SMTP, RFC 7672; TLSA, RFC 6698).
//
// It has one job and does no I/O: which TLSA records are usable for SMTP
// (Usable, RFC 7672 §3.1), and whether a certificate chain matches one of
// them (Verify). Finding the records, and knowing that they are DNSSEC
// secure, is the resolver's job; deciding that DANE applies to an MX host
// and refusing to deliver when the check fails is outbound's.
package dane
