// Package feedback reads the mail that comes back to a sender after
// delivery — asynchronous delivery status notifications (DSNs, RFC 3464)
// and abuse feedback reports (ARF, RFC 5965) — and makes and checks the
// signed references that tie such a report to the message it is about.
// It does no I/O: the engine hands it a received message and gets back
// the report's fields, or why the message is not a report.
//
// Both kinds of report are a multipart/report (RFC 6522 §3) whose second
// part says what happened and whose third part returns the original
// message or its header section:
//
//	multipart/report; report-type=delivery-status      (RFC 3464 §2)
//	├ text/plain                 human-readable explanation
//	├ message/delivery-status    per-message fields, then per-recipient groups
//	└ text/rfc822-headers        the original header section (or message/rfc822)
//
//	multipart/report; report-type=feedback-report      (RFC 5965 §2)
//	├ text/plain                 human-readable explanation
//	├ message/feedback-report    Feedback-Type, User-Agent, Version, …
//	└ message/rfc822             the reported message (or text/rfc822-headers)
//
// Parse is lenient where real reporters are sloppy — the report may be
// nested in a multipart/mixed, parts may be base64 or quoted-printable,
// the report-type parameter may be missing, field groups may be separated
// by extra blank lines — and strict about bounds: at most MaxParts parts,
// MaxDepth levels of nesting and MaxRecipients recipient groups are read,
// so memory stays proportional to the message.
//
// A reference (ref.go) names the original message — its id, tenant and
// campaign, and for a VERP return path its recipient — in a token signed
// with HMAC-SHA256 under the operator's secret: Gannet puts it in the
// X-Gannet-Ref header field of each message it sends and, when asked, in
// the local part of the envelope sender (bounce+TOKEN@bounces.example).
// Reports quote the original header section, and DSNs go to the envelope
// sender, so either way the report can be matched to what was sent; a
// token that does not verify is reported as forged, never trusted.
package feedback
