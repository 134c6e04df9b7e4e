// Package engine wires Gannet together: it opens the spool, starts the
// delivery loop over the resolver and the outbound connection pools, starts
// the SMTP listeners (engine/inbound) and the HTTP API, and implements what
// the listeners and the API need of the rest — making a message durable.
//
// The path of one message:
//
//	inbound (gnet loop) ─ final "." ─▶ worker: Engine.Accept
//	    ▶ id; Engine.prepare (shared with HTTP Inject): meta headers read
//	      and stripped, tenant/campaign/priority, Date/Message-ID and
//	      List-Unsubscribe added, DKIM signed; then the Received header
//	    ▶ Spool.Append (group commit; durable when it returns)
//	    ▶ Reception record, delivery.Loop.Enqueue
//	    ▶ "250 2.0.0 OK id=<ID>"
//
// The engine keeps no package-level state; each Engine owns everything it
// starts and Stop releases it in reverse order: listeners first (no new
// mail), then delivery (in-flight transactions finish), then the spool.
package engine
