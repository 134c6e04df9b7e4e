// Package delivery is Gannet's delivery loop: it takes spooled messages
// and drives them to their destinations, records every outcome and keeps
// the spool up to date.
//
//	Enqueue(msg) ─▶ work items, one per (message, destination domain)
//	    ─▶ scheduled (queue.Scheduler per lane — high, bulk: due now, or at
//	       the retry time)
//	    ─▶ due: Router.Resolve(domain) (bounded concurrency per lane;
//	       skipped for a smarthost: routed on the scheduler goroutine)
//	    ─▶ ready queue of the path (outbound.Path: Egress(tenant) source ×
//	       site, a resolver.SiteKey — the MX hosts, or the relay_to
//	       smarthost; high priority first, bulk never starved)
//	    ─▶ path workers, at most the path's effective Connections (a
//	       worker goroutine that ran its queue dry waits a moment for
//	       another, so that bursts reuse goroutines with grown stacks)
//	    ─▶ hold? (Shaper.Gate: suspended → back to the scheduled queue until
//	       the end, bounced → Bounce; tenant over its rate → back to the
//	       scheduled queue until its booked slot; no token of the
//	       tenant's or the path's rate shared by a cluster,
//	       SharedTenantRate, SharedRate → back until one may be)
//	    ─▶ Store.Body, Transport.Deliver (one transaction for all the
//	       message's recipients at that domain) ─▶ Shaper.Observe
//	    ─▶ a verdict per recipient ─▶ settle: state, Store.Update /
//	       Store.Remove, metrics and log records (and an RFC 3464 DSN to
//	       the sender: a bounce with SendBounce; what its NOTIFY asked
//	       for, RFC 3461, with SendDSN — dsn.go, outcome.go dsnFor)
//	    ─▶ deferred recipients scheduled again per the RetryPolicy
//
// Priority: each lane has its own scheduler goroutine and DNS lookups, so
// transactional mail never waits behind bulk mail that is due by the
// thousand; in a path's ready queue it goes first, with one bulk item let
// through after every highBurst high ones.
//
// Nothing waits in a worker: a held item costs a worker only the time to
// put it back, so one noisy tenant or one suspended site never slows the
// others. Waiting for a suspension or a tenant slot is not an attempt.
//
// A work item holds indexes of the message's recipients, not the body: the
// body is read from the Store once per transaction and dropped after it
// (handed back to a Store that takes it back, bodyReleaser),
// so waiting messages cost only their metadata — and only in packed form
// (queue.Packed, about 60 bytes) while nothing of the message is due:
// messages loaded at startup and messages waiting for the retry of their
// last domain have no work item; the scheduler holds the message itself
// and splits it into work items when it comes due (message.go). The items of one message
// (one per domain) run concurrently and share the message's metadata under
// a per-message lock; the spool update for an outcome is made under it.
//
// Outcomes: a 2xx to the final "." makes the recipient Delivered (Delivery
// record, latency to the Metrics hook), a 5xx Bounced (Bounce record with a
// classification), anything else is deferred (TransientFailure record) and
// retried after RetryPolicy.Delay(attempts) — retry_interval doubling up to
// max_retry_interval. When the next retry would come after max_retry_age
// since reception, the recipient expires instead (Expiration record, RFC
// 5321 §4.5.4.1). DNS failures count as attempts too: a permanent
// *smtpwire.Error bounces with its code (null MX 556 5.1.10, NXDOMAIN 550
// 5.1.2), any other error defers with it (451 4.4.3). When every recipient
// of a message is final, the message is removed from the spool — or, with
// Options.DeadLetters, kept as a dead letter when a recipient expired (or,
// with KeepBounced, bounced): the spool moves it out of the queue
// (queue.Spool.MoveToDead) and a DeadLetter record follows for each
// recipient not delivered. A dead letter costs the loop nothing: the admin
// API reads, requeues (Enqueue) and purges it in the spool.
//
// Settling: whatever becomes of a recipient — delivered, bounced,
// deferred, expired, or bounced by an operator (admin.go) — is made to
// stand in one place, Loop.settle (settle.go): the recipients' states,
// then the spool write (Remove when no recipient is pending any more, else
// Update), then, once the message lock is released (Loop.publish),
// the metrics and the log records. That is the seam for anything that
// must happen when a recipient is final: keeping a finished message
// instead of removing it, shipping its records elsewhere.
//
// Records are written after the spool update, so a crash in between can
// repeat an attempt (at-least-once delivery) but never lose one. A
// transaction's outcome is settled as soon as its reply is read: Deliver
// runs one transaction and returns with it, never waiting for other
// messages of the connection. The spool writes Update and Remove at once
// and makes them durable within a few milliseconds, carried by its group
// commit or one index sync for all outcomes (queue: "Delivery outcomes"),
// so settling costs no fsync and a kill repeats only what was on the wire
// or delivered in the last millisecond or two.
//
// A message whose body the spool cannot read back (Store.Body fails with
// queue.ErrCorrupt: a torn or damaged record) is not retried: the spool
// quarantines it (Store.Quarantine) and the loop forgets it, with no
// record and no bounce (Loop.quarantine); the engine logs and counts it
// and the admin API shows it as corrupt. Other read errors are transient.
//
// The operator's controls (admin.go, hold.go, retry.go, rulestore.go):
// bounces, suspensions and holds chosen by Selector (or, for holds, by
// message id), met when an item comes due and when a worker takes it;
// "retry now", which makes deferred mail due at once with its attempt
// counts kept (the scheduler's old entries are recognised as stale when
// they come out); and, with Options.Rules, durable copies of the rules in
// force, which RestoreRules puts back in force at the next start. Each rule
// carries its origin (api, policy). With Options.Shared (a cluster), every
// rule stored and deleted is shared too, and the rules of the other nodes
// come in through ApplySharedRule and DropSharedRule (SharedRules lists
// this node's for a reconcile). The same way go the rates a cluster
// shares: a path's adaptive cut (cut.go, not kept in the spool), what a
// site's tuning learned (tune.go) and the tenant rates policy scripts set
// (scriptrate.go).
//
// The queryable queue (list.go): List walks a snapshot of the message table
// (each message under its own lock, unpacked into scratch space), filters
// by domain, site, tenant, campaign, sender, recipient substring, attempts,
// age and state, and answers a page by id (a bounded heap) or counts by
// group; BounceMessages and DeleteMessages (AdminDelete records, no bounce)
// act on ids, which MatchIDs finds for a filter.
//
// Xfer rules (xfer.go; gannet xfer) hand the matching pending mail to
// another node as to a smarthost; its 2xx settles a recipient as XferOut.
//
// Stop stops taking work, lets the transactions in flight finish (or
// aborts them when its context ends: their recipients stay pending), and
// closes the Transport. Everything not delivered is in the spool; at the
// next start the engine hands it over with Load (load.go), which reads the
// spool in id order into a sorted slice (msgtable.go) and the schedulers in
// batches: a million queued messages load in about 2 s of CPU and hold
// about 250 bytes of RSS each (numbers in queue's package doc). Load may
// run while new mail is enqueued; the admin views wait for it to end.
package delivery
