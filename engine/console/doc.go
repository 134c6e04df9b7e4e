// Package console is Gannet's operator console: HTML pages served by the
// relay itself at /console/ on every [[http_listener]] that lists
// "console" in its services (contract.md, "HTTP").
//
// Pages:
//
//	/console/                overview: charts of the last hour (messages in and out per
//	                         second, queue depth, delivery latency p50/p95, failure rates,
//	                         TLS failures, connections) from History, and the busiest sites
//	/console/destinations    one row per site (egress path) and per domain: depth, rate now
//	                         and limit, connections, deferral rate, back-off or suspension
//	                         with the reply that caused it, the last errors; ?sort=, ?dir=,
//	                         ?q= (filter), ?state= (suspended, backoff, errors)
//	/console/messages        search the queue (and the recent log records) by id, sender,
//	                         recipient, tenant or campaign
//	/console/message?id=     envelope, headers, recipients, attempts and replies, log records
//	/console/tenants         tenants and campaigns: volume, delivered, bounced by class, queue
//	/console/confirm?…       the confirmation step of an action (suspend, resume, bounce,
//	                         requeue); POST /console/action does it
//
// Every action goes through the admin API's handler (engine/admin), called
// in process with the console's user as the caller, so that it is checked,
// done and logged ("admin suspend", "by": "console admin …") exactly as the
// same request to /api/admin/… would be.
//
// Access: a client in trusted_hosts needs no login (it is an admin); others
// log in with an [[api_key]] that has role = "admin" or "viewer". A viewer
// sees every page and cannot act. The session is a random token in a
// cookie (HttpOnly, SameSite=Strict, Secure under TLS) that names a
// server-side session; every POST carries the session's CSRF token in a
// form field (login: a double-submit token), bodies are bounded, and pages
// are html/template output under a Content-Security-Policy that allows no
// inline script or style. Charts are SVG drawn by the server; the one
// script (static/console.js) only refreshes the page's live parts.
//
// Data: History keeps 360 points (an hour at 10 s) per series in fixed
// memory, sampled by Run from a Meter; Recent keeps the last log records
// (for a message's page) and, per site and domain, recent outcomes (rate
// now, deferral rate) and the last errors. The overview reads only these,
// Live's counters and per-path state, never the messages of the queue, so
// it renders in constant time whatever the queue holds.
package console
