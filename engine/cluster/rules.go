package cluster

import (
	"encoding/json"
	"sync"
	"time"
)

// RuleStore is a node's own admin rules (engine/delivery's Loop): what
// Rules reads when it reconciles, and where it puts the rules made and
// ended on other nodes.
type RuleStore interface {
	// SharedRules returns the rules in force, by key.
	SharedRules() map[string][]byte
	// ApplySharedRule puts in force a rule made on another node.
	ApplySharedRule(key string, value []byte)
	// DropSharedRule ends a rule that ended on another node.
	DropSharedRule(key string)
}

// ruleEntry is a rule as kept in the hash PREFIXrules and as published on
// the channel PREFIXrules. Value nil: the rule ended (a tombstone, kept
// until Expires, so that a node that did not hear ends it too).
type ruleEntry struct {
	Node    string          `json:"node"`
	Key     string          `json:"key"`
	Value   json.RawMessage `json:"value,omitempty"`
	Expires time.Time       `json:"expires,omitzero"` // the rule ends by itself (zero: not); a tombstone is forgotten
}

// tombstoneTTL is how long the cluster remembers that a rule without an
// expiry ended: a node away longer than this that comes back with the rule
// shares it again.
const tombstoneTTL = 7 * 24 * time.Hour

// Rules shares a node's admin rules with the cluster (see the package
// comment). Put and Delete (delivery.RuleSharer) return at once; the
// writes to Redis happen behind them, and are retried while Redis is
// down.
type Rules struct {
	c *Cluster
	x *exchange

	mu      sync.Mutex
	store   RuleStore
	pending map[string]ruleEntry // changes made here not yet written, by key
	quiet   map[string]bool      // keys being applied from elsewhere: not shared again
	touched map[string]bool      // keys changed here since the running reconcile read Redis
	expires map[string]time.Time // expiry of the rules in force, by key: their tombstones' too
}

// Rules returns the node's shared admin rules; they are exchanged with
// Redis once started (Rules.Start).
func (c *Cluster) Rules() *Rules {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.rules == nil {
		r := &Rules{c: c, pending: map[string]ruleEntry{}, quiet: map[string]bool{}, expires: map[string]time.Time{},
			x: newExchange(c, c.rulesKey())}
		r.x.flush = r.flush
		r.x.onSubscribe = r.reconcile
		r.x.onMessage = r.applyPublished
		r.x.onQuiet = r.reconcile // quiet for a beat: check nothing was missed
		c.rules = r
	}
	return c.rules
}

func (c *Cluster) rulesKey() string { return c.key("rules") }

// Put shares a rule made or changed on this node.
func (r *Rules) Put(key string, value []byte, expires time.Time) {
	r.change(ruleEntry{Key: key, Value: value, Expires: expires})
}

// Delete shares the end of a rule.
func (r *Rules) Delete(key string) { r.change(ruleEntry{Key: key}) }

func (r *Rules) change(e ruleEntry) {
	r.mu.Lock()
	e = r.noteLocked(e)
	if r.quiet[e.Key] {
		r.mu.Unlock()
		return
	}
	e.Node = r.c.opts.NodeID
	r.pending[e.Key] = e
	if r.touched != nil {
		r.touched[e.Key] = true
	}
	r.mu.Unlock()
	r.x.changed()
}

// noteLocked keeps the expiry of a rule in force, and gives a tombstone
// the expiry of the rule it ends (or tombstoneTTL).
func (r *Rules) noteLocked(e ruleEntry) ruleEntry {
	if e.Value != nil {
		r.expires[e.Key] = e.Expires
		return e
	}
	if e.Expires.IsZero() {
		e.Expires = r.expires[e.Key]
		if e.Expires.IsZero() {
			e.Expires = r.c.opts.Now().Add(tombstoneTTL)
		}
	}
	delete(r.expires, e.Key)
	return e
}

// Start exchanges the rules with the cluster: it subscribes to the
// others' changes, reconciles store with the rules kept in Redis, and
// writes the changes made here. Call it once; Cluster.Stop ends it.
func (r *Rules) Start(store RuleStore) {
	r.mu.Lock()
	r.store = store
	r.mu.Unlock()
	r.x.start()
}

// flush writes the pending changes to the hash and publishes them; it
// reports whether none is left.
func (r *Rules) flush() bool {
	r.mu.Lock()
	batch := make([]ruleEntry, 0, len(r.pending))
	for _, e := range r.pending {
		batch = append(batch, e)
	}
	r.mu.Unlock()
	if len(batch) == 0 {
		return true
	}
	c := r.c
	ctx, cancel := c.ctx()
	defer cancel()
	pipe := c.rdb.TxPipeline()
	for _, e := range batch {
		b, _ := json.Marshal(e)
		pipe.HSet(ctx, c.rulesKey(), e.Key, b)
		pipe.Publish(ctx, c.rulesKey(), b)
	}
	_, err := pipe.Exec(ctx)
	if c.result(err) != nil {
		return false
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, e := range batch {
		if p, ok := r.pending[e.Key]; ok && string(p.Value) == string(e.Value) {
			delete(r.pending, e.Key) // not changed again meanwhile
		}
	}
	return len(r.pending) == 0
}

// applyPublished applies a message of the channel: a change made on
// another node.
func (r *Rules) applyPublished(payload string) {
	var e ruleEntry
	if json.Unmarshal([]byte(payload), &e) == nil && e.Node != r.c.opts.NodeID {
		r.apply(e)
	}
}

// apply applies a change made on another node, without sharing it again.
func (r *Rules) apply(e ruleEntry) {
	r.mu.Lock()
	store := r.store
	r.noteLocked(e)
	r.quiet[e.Key] = true
	r.mu.Unlock()
	if e.Value == nil {
		store.DropSharedRule(e.Key)
	} else {
		store.ApplySharedRule(e.Key, e.Value)
	}
	r.mu.Lock()
	delete(r.quiet, e.Key)
	r.mu.Unlock()
}

// reconcile makes the node's rules those kept in Redis: the changes made
// here are written first; then every rule in the hash not in force here is
// applied, every rule in force here that the hash says ended (ended
// elsewhere while this node did not hear) is ended, and every rule in
// force here the hash does not know (Redis lost its data, or the node
// joins the cluster with rules of its own) is shared. Entries past their
// expiry are removed from the hash.
func (r *Rules) reconcile() {
	if !r.flush() {
		return // Redis is down, or this node's changes are not all written: later
	}
	c := r.c
	r.mu.Lock()
	r.touched = map[string]bool{}
	r.mu.Unlock()
	defer func() {
		r.mu.Lock()
		r.touched = nil
		r.mu.Unlock()
	}()
	ctx, cancel := c.ctx()
	all, err := c.rdb.HGetAll(ctx, c.rulesKey()).Result()
	cancel()
	if c.result(err) != nil {
		return
	}
	now := c.opts.Now()
	known := make(map[string]ruleEntry, len(all))
	var expired []string
	for k, v := range all {
		var e ruleEntry
		if json.Unmarshal([]byte(v), &e) != nil || !e.Expires.IsZero() && !e.Expires.After(now) {
			expired = append(expired, k)
			continue
		}
		known[k] = e
	}
	if len(expired) > 0 {
		ctx, cancel := c.ctx()
		c.result(c.rdb.HDel(ctx, c.rulesKey(), expired...).Err())
		cancel()
	}
	r.mu.Lock()
	store := r.store
	r.mu.Unlock()
	have := store.SharedRules()
	skip := func(key string) bool {
		r.mu.Lock()
		defer r.mu.Unlock()
		_, pending := r.pending[key]
		return pending || r.touched[key]
	}
	for k, e := range known {
		if v, ok := have[k]; e.Value != nil && (!ok || string(v) != string(e.Value)) && !skip(k) {
			r.apply(e)
		}
	}
	for k, v := range have {
		e, ok := known[k]
		switch {
		case skip(k):
		case ok && e.Value == nil:
			r.apply(e)
		case !ok:
			r.mu.Lock()
			exp := r.expires[k]
			r.mu.Unlock()
			r.Put(k, v, exp)
		}
	}
}
