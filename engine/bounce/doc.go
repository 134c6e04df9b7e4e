// Package bounce classifies failed SMTP deliveries: from a remote server's
// reply (code, enhanced status code, text) it names the reason, in
// KumoMTA's vocabulary (InvalidRecipient, QuotaIssues, SpamBlock,
// AuthenticationFailed, …, Uncategorized). The class goes into the
// "bounce_classification" of Bounce and TransientFailure log records and
// labels bounce metrics, so that an operator can tell dead addresses from
// full mailboxes from block listings without reading every reply.
//
// # Classification
//
// Classify(code, enhanced, text) builds the subject line
//
//	CODE ENHANCED text          e.g. "550 5.1.1 <a@example.com>: User unknown"
//
// as KumoMTA does: the code as three digits ("000" when there was no
// reply), the enhanced code (RFC 3463) only when it is well-formed, and the
// text with control characters turned into spaces (so multi-line replies
// read as one line) and cut at MaxText bytes. Then, in order:
//
//  1. Rules: regular expressions, tried in order; the first that matches
//     the subject line decides. A rule can look at the code and enhanced
//     code ("^55[0-4] 5\.7\.1 ") or at words anywhere in the text.
//  2. Reply codes 521 and 556, which RFC 7504 reserves for hosts and
//     domains that take no mail: BadDomain.
//  3. The enhanced status code, where RFC 3463 and later registrations
//     (RFC 4954, 7293, 7372, 7505, 8617) give its subject and detail a
//     clear meaning: X.1.1 InvalidRecipient, X.1.2 BadDomain, X.2.2
//     QuotaIssues, X.4.1 NoAnswerFromHost, X.4.7 MessageExpired, X.5.3
//     TooManyRecipients, X.7.26 AuthenticationFailed, X.7.1 and other
//     X.7.x PolicyRelated, and so on (fallback.go). The class digit is not
//     trusted to agree with the reply code: "552 4.2.2" is a full mailbox.
//  4. The reply code: any other 4xx is TransientFailure ("try again
//     later", RFC 5321 §4.2.1), 552 is QuotaIssues ("exceeded storage
//     allocation", RFC 5321 §4.2.2).
//  5. Otherwise Uncategorized, as KumoMTA does for an unmatched reply.
//
// Positive and intermediate replies (1xx–3xx) are not failures and are
// always Uncategorized.
//
// # Rules files
//
// Rules are TOML. Gannet's layout keeps the order explicit and lets one
// class appear several times, so that specific rules can come before
// general ones:
//
//	[[rule]]
//	class = "QuotaIssues"                       # a KumoMTA class name
//	patterns = ['\bover ?quota\b', 'mailbox (is )?full']
//
// KumoMTA's layout, one [rules] table of class = [patterns], is read too,
// in file order, so KumoMTA rules files can be used as they are. Patterns
// are Go regular expressions (RE2 syntax, linear time whatever the input)
// and match case-insensitively unless a pattern says "(?-i)". Unknown keys
// and class names are errors.
//
// The default rules (default.toml, embedded; DefaultRulesTOML prints it)
// were written for Gannet from the SMTP and enhanced status code RFCs and
// the wording of common receivers, and checked against 583 real remote
// diagnostics from sisimai's test set (see realworld_test.go, which logs
// the accuracy per class). They are grouped from specific to general:
// sender status codes, message format, malware, spam content, sender
// authentication, reverse DNS, quota, recipient limits, inactive
// mailboxes, invalid senders, relaying, DNS and domain failures, unknown
// recipients, block lists and reputation, other policy, remote system
// errors, expiry, throttling, connection failures, routing and protocol
// errors. LoadFile puts an operator's rules ([bounce] rules_file) before
// them.
//
// # Speed
//
// Go's regexp runs in time proportional to program size times input
// length, and has no literal prefilter for case-insensitive patterns, so
// trying 160 rules in order costs milliseconds on a long reply. New
// therefore extracts from each pattern's syntax tree the literals any match
// must contain (a list of sets: at least one literal of each set, as in
// RE2's FilteredRE2) and compiles all of them into one Aho-Corasick
// automaton over ASCII-folded text. Classify makes one pass of the
// automaton over the subject line and only runs the regular expressions of
// rules whose required literals all occur; on the real replies that is
// about two per reply instead of up to 160, and Classify does not
// allocate. Tests and fuzz targets check that this picks the same rule as
// trying every rule in order.
//
// A Classifier is immutable and safe for concurrent use; Default compiles
// the embedded rules anew on each call, so callers keep the result.
package bounce
