// Package admin is Gannet's HTTP admin API: the handler that
// engine/httpapi mounts under /api/admin/ (contract.md, "HTTP"), and the
// JSON shapes that the admin CLI (cmd/gannet: queue, bounce, suspend,
// resume) reads back.
//
// Endpoints, every answer JSON, field names as KumoMTA's where it has the
// same endpoint:
//
//	GET    /api/admin/queue-summary/v1           totals; per scheduled queue, domain, tenant, campaign and site:
//	                                             scheduled, ready, in flight, held, effective rate, suspended;
//	                                             the corrupt messages quarantined (totals.corrupt, corrupt_ids)
//	GET    /api/admin/inspect-message/v1?id=ID   state ("queued"), envelope, recipients with state/attempts/last
//	       [&want_body=true]                     reply, attempts, due, created, size, tenant, campaign, priority,
//	                                             sites; the message ("data") and its header section ("headers")
//	                                             from the spool. A quarantined message: state "corrupt", corrupt
//	                                             {kind, reason, raw_size, quarantined}, the envelope if known
//	POST   /api/admin/bounce/v1                  {domain, campaign, tenant, site, reason, duration|expires}
//	                                             → {id, bounced{queue: n}, total_bounced}
//	GET    /api/admin/bounce/v1                  the bounces in force
//	DELETE /api/admin/bounce/v1                  {id} → the cancelled entry
//	POST   /api/admin/suspend/v1                 {domain, campaign, tenant, site, reason, duration|expires} → {id}
//	GET    /api/admin/suspend/v1                 the suspensions in force
//	DELETE /api/admin/suspend/v1                 {id}, or a selector {domain, …}: resume → {resumed: [ids]}
//	POST   /api/admin/retry/v1                   {domain, campaign, tenant, site} or {ids: [ID…]}: "retry now", the
//	                                             deferred mail due at once, retry counters kept
//	                                             → {retried: messages, recipients}; an id not queued is 404
//	POST   /api/admin/hold/v1                    {domain, campaign, tenant, site, reason} or {ids: [ID…], reason}: not
//	                                             delivered until released → {id}; an id not queued is 404
//	GET    /api/admin/hold/v1                    the holds in force (ids: the messages a hold by id names)
//	DELETE /api/admin/hold/v1                    {id}, {ids: [hold or message ids]}, or the selector a hold was made
//	                                             with: release → {released: [ids]}
//	GET    /api/admin/tls-reports/v1             TLS reporting (RFC 8460): per UTC day kept, each policy domain's
//	                                             successful and failed TLS sessions and its report's state
//	                                             (pending, sent, partial, failed, no-record; per rua address:
//	                                             attempts, sent, error); operators only (403 for a tenant's key)
//	       ?domain=D[&day=YYYY-MM-DD]            one domain's counts per policy with the failure details, and the
//	                                             report JSON (§4) as built from them
//	POST   /api/admin/tls-reports/v1             {day}: send that day's reports now (a day not over yet: its
//	                                             counts so far, and the day is not reported again)
//
// (GET /api/check-liveness/v1 is answered by httpapi itself.)
//
// Selectors: domain, tenant, campaign and site (an extension: KumoMTA
// suspends ready queues through a separate endpoint) narrow what an action
// applies to; every field given must match. A request with none is
// refused with 422 — KumoMTA would bounce everything, which is one typo
// away from a disaster. Unknown fields are refused with 400 for the same
// reason ("domian" must not widen a bounce to a whole tenant); KumoMTA's
// queue_names, routing_domain and suppress_logging are not supported.
//
// Durations are Go durations ("90s", "20m", "72h") or a number of days
// ("2d"); "expires" (RFC 3339) may be given instead. A bounce without
// either lasts 5 minutes (KumoMTA's default), a suspension 1 hour; a
// duration of "0" means, for a bounce, the sweep of the queue only and,
// for a suspension, until resumed.
//
// Every rule listed carries its origin ("api": this API or the CLI;
// "policy": a policy script's kumo.suspend or kumo.bounce; "rule": a
// shaping rule's automatic suspension of a site, listed with the
// suspensions for callers without a tenant, ending by itself) and its
// expiry. Suspensions, bounces and holds in force outlive a restart: the delivery
// loop stores them in the spool's Pebble index (queue's a/ keyspace) and
// the engine restores those not expired before the queue loads.
//
// What the actions do to mail is engine/delivery's (admin.go there): a
// bounce turns every matching queued recipient into an AdminBounce record
// at once and, while in force, bounces matching mail as it comes due; a
// suspension holds matching mail unattempted until it ends, and resuming
// makes the held mail due at once.
//
// Corrupt messages: the spool takes out a message whose index entry does
// not decode (kind "index", found when the queue loads) or whose body
// record does not read back (kind "record", found when delivery reads it),
// and keeps a record of it (queue/quarantine.go). Inspect answers for such
// an id from that record: state "corrupt", why, the size of what is bad,
// and — for a record — the envelope as the index had it (never a body,
// which is lost; want_body is ignored). The summary counts them and lists
// the first MaxCorruptIDs ids. They are the operator's: a tenant's key sees
// its own "record" messages in inspect, no "index" ones (their tenant is
// not known), and no count in the summary.
//
// Authority: requests have passed httpapi's gate (trusted host or API
// key). A caller whose API key is bound to a tenant is an operator of that
// tenant only: bounce and suspend requests are scoped to it (the tenant
// field is filled in; another tenant is 403), it lists and cancels only
// its own rules (others' ids are 404), the summary counts only its mail
// and leaves out the sites, and inspecting another tenant's message is 404.
// Trusted hosts and keys without a tenant see everything.
//
// Every action (bounce, cancel, suspend, resume, retry, hold, release) is logged by the
// engine's logger ("admin …" messages) with "by": who asked — "trusted
// host ADDR", "api key from ADDR", or "api key of tenant T from ADDR".
//
// Refusals are {"error": "…"}: 400 bad JSON or unknown field, 403 another
// tenant, 404 unknown id or path, 405 wrong method (with Allow), 413 body
// over 1 MiB, 422 missing selector or id, bad duration.
package admin
