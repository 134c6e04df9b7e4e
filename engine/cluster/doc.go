// Package cluster is one node's view of a Gannet cluster, kept in Redis
// ([cluster] redis): which nodes are alive, and the limits the nodes share.
//
// Nodes: every node writes its entry (node id, admin API address, start,
// last beat, queue depth, messages in and out per second) under
// PREFIXnode:ID with an expiry of node_ttl, and renews it every heartbeat;
// the set PREFIXnodes names the entries to read. A node whose entry expired
// is gone. Each heartbeat also counts the live nodes (Live), which the
// limiters use when Redis cannot be reached.
//
// Shared message rates (RateLimiter) are a GCRA (the generic cell rate
// algorithm: one "theoretical arrival time" per limit) kept in Redis and
// advanced by a Lua script run with EVALSHA against the server's clock, so
// that one round trip grants a batch of tokens (a lease) that the node
// then spends locally: a high rate does not mean one Redis call per
// message. A batch is granted whole or not at all, and lapses if it is
// not spent within two batch times (no late burst past the limit). The
// engine keeps one per path for its max_message_rate (PREFIXrate:PATH),
// one per path for its max_connection_rate (PREFIXrate:conn:PATH) and one
// per tenant for its max_message_rate (PREFIXrate:tenant:NAME). Shared
// connection counts (ConnLimiter) are leases in a sorted
// set scored by their expiry; a node renews the leases it holds every
// heartbeat, so a dead node's connections come back once its leases expire.
//
// Shared admin rules (Rules, rules.go): the suspensions, bounces and
// holds of every node's delivery loop (engine/delivery's RuleSharer and
// the RuleStore declared here). A rule made on a node is written to the
// hash PREFIXrules (field: the rule's key, value: the node's id, the
// rule's stored form and its expiry) and published on the channel
// PREFIXrules in one MULTI; a rule that ended is written and published the
// same way without its form: a tombstone, kept until the rule would have
// expired (a week for a rule without an expiry). Every node subscribes and
// applies what the others publish to its own loop; applying does not
// publish again (the keys being applied are quiet). Put and Delete only
// note the change (they run under the loop's lock); a writer goroutine
// sends it at once and again every second until Redis takes it. At every
// (re)subscription and every heartbeat without a message, a node
// reconciles: with its own changes all written, it reads the hash, drops
// the entries past their expiry, applies the rules it lacks, ends those
// the hash has a tombstone for (ended while it did not hear), and shares
// those the hash does not know (Redis restarted empty, or the node joined
// with rules of its own). Changes made here while a reconcile runs are
// left alone by it. The suspensions of the shaping rules' automation
// travel as rules too (the engine's store sends them to its shaper).
//
// The shared suppression list (Suppressions, suppress.go): every entry
// added or removed on a node is written to the hash PREFIXsuppress (field:
// tenant, NUL, address; value: the entry, or a tombstone with the time of
// its removal, kept tombstoneTTL) and published on the channel
// PREFIXsuppress, up to 500 changes per MULTI and per message. Every node
// subscribes and applies the others' changes (its store keeps the newer
// by creation time; applying does not share again). The list may hold
// millions of entries, so the hash is read only at every (re)subscription,
// a page at a time (HSCAN): the node applies what it lacks and shares what
// the hash lacks, and deletes tombstones past their time. The RCPT lookup
// never calls Redis.
//
// The same Rules carry the rates the nodes share, as rules of their own
// kinds (engine/delivery decides what they mean): the adaptive back-off
// cut of a path ("cut/PATH", kept a minute), what self-tuning learned of a
// site ("tune/SITE") and the tenant rates policy scripts set
// ("rate/TENANT").
//
// Warm-up (Warmup, warmup.go): a warming egress source's start date
// (PREFIXwarmup:SOURCE:start, the earliest offered) and its counts of a
// day by provider (the hash PREFIXwarmup:SOURCE:YYYY-MM-DD, kept two
// days), both in one Lua script per batch, so that the nodes together
// keep to the day's allowance.
//
// Redis down or slow: every call has a short timeout (redis_timeout). A
// limiter that cannot reach Redis falls back to a local limit of 1/N of
// the cluster's (N: the live nodes last counted), logs the change once,
// counts each failed call (Options.OnRedisError, the engine's
// gannet_cluster_redis_errors_total), tries Redis again every second and
// goes back to the shared limit when it answers. Connection leases keep
// to the share for one more heartbeat: Redis (restarted empty, perhaps)
// does not know the leases taken on the shares until each node's next
// heartbeat puts its own back, and would grant the whole limit again on
// top of them; a lower node count is not believed meanwhile either.
// Nothing waits on Redis longer than the timeout.
//
// Cost: every round trip to Redis (a command or a pipeline, answered or
// not) is told to Options.OnRedisCall with what it was for (calls.go: a
// go-redis hook classifies it by the first key it names), the engine's
// gannet_cluster_redis_calls_total{op}.
package cluster
