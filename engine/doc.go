// Package engine wires Gannet together: it opens the spool, starts the
// delivery loop over the resolver and the outbound connection pools, starts
// the SMTP listeners (engine/inbound) and the HTTP API, and implements what
// the listeners and the API need of the rest — making a message durable.
//
// The path of one message — one store path for SMTP and HTTP (store.go):
//
//	inbound (gnet loop) ─ final "." ─▶ worker: Engine.Accept ─┐
//	HTTP API handler ─ one request's messages ─▶ Engine.Inject ─┤
//	                                                            ▼
//	Engine.take (a batch: one SMTP message, or every message of an
//	HTTP request; all of it durable or none of it)
//	    ▶ admission: max_queue_depth, spool health
//	    ▶ per message: id; the message policy decides (engine/policy,
//	      behind the messagePolicy interface: tenant, campaign, priority,
//	      header edits, DKIM signing domains); the final message is built
//	      in one pooled buffer — edits applied, DKIM signatures, the
//	      Received field on top; Spool.Append (group commit; durable when
//	      it returns); the buffer back to the pool
//	    ▶ a failure: the messages appended already are removed again; the
//	      error becomes the answer in replies.go (spoolReply, injectError)
//	    ▶ per message: received counter, Reception records,
//	      delivery.Loop.Enqueue
//	    ▶ "250 2.0.0 OK id=<ID>" / the ids for the HTTP answer
//
// What the engine keeps of the message policy is what touches keys and
// reloads: the DKIM keys (sign.go) and the live policy, rebuilt from the
// configuration and swapped whole on SIGHUP (reload.go).
//
// The engine keeps no package-level state; each Engine owns everything it
// starts and Stop releases it in reverse order: listeners first (no new
// mail), then delivery (in-flight transactions finish), then the spool.
package engine
