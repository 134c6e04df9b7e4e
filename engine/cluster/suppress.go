package cluster

import (
	"context"
	"encoding/json"
	"sync"
	"time"
)

// SuppressionStore is a node's suppression list (engine/suppress, through
// the engine): what Suppressions reads when it reconciles, and where it
// puts the entries added and removed on other nodes.
type SuppressionStore interface {
	// EachSuppression calls fn with every entry in force here, until fn
	// returns false.
	EachSuppression(fn func(SuppressionEntry) bool) error
	// ApplySuppression puts in force an entry added on another node
	// (Removed zero), unless the one held here is as new; or takes one off
	// (Removed set), unless it was added here after that.
	ApplySuppression(e SuppressionEntry)
}

// SuppressionEntry is an entry of the shared suppression list, as kept in
// the hash PREFIXsuppress (field: tenant, NUL, address) and published on
// the channel PREFIXsuppress (a JSON array of entries).
type SuppressionEntry struct {
	Node    string `json:"node,omitempty"` // who made the change
	Tenant  string `json:"tenant,omitempty"`
	Address string `json:"address"` // folded
	Reason  string `json:"reason,omitempty"`
	Source  string `json:"source,omitempty"`
	Created int64  `json:"created,omitempty"` // Unix seconds
	// Removed is when the entry was removed (Unix seconds): a tombstone,
	// kept tombstoneTTL so that a node away meanwhile removes it too.
	Removed int64 `json:"removed,omitempty"`
}

func (e *SuppressionEntry) field() string { return e.Tenant + "\x00" + e.Address }

// suppressBatch is how many changes go to Redis in one pipeline and one
// published message.
const suppressBatch = 500

// Suppressions shares a node's suppression list with the cluster (see the
// package comment). Add and Remove return at once; the writes to Redis
// happen behind them, and are retried while Redis is down.
type Suppressions struct {
	c *Cluster

	x *exchange

	store SuppressionStore // set by Start

	flushMu sync.Mutex // one flush at a time

	mu       sync.Mutex
	pending  map[string]SuppressionEntry // changes made here not yet written, by field
	inflight map[string]SuppressionEntry // changes made here being written, by field
	touched  map[string]bool             // fields changed here since the running reconcile began
	again    bool                        // the last reconcile did not finish (reader only)
}

// Suppressions returns the node's shared suppression list; it is
// exchanged with Redis once started (Suppressions.Start).
func (c *Cluster) Suppressions() *Suppressions {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.supp == nil {
		s := &Suppressions{c: c, pending: map[string]SuppressionEntry{}, x: newExchange(c, c.suppressKey())}
		s.x.flush = s.flush
		s.x.onSubscribe = func() { s.again = !s.reconcile() }
		s.x.onMessage = s.applyPublished
		s.x.onQuiet = func() {
			if s.again {
				s.again = !s.reconcile()
			}
		}
		c.supp = s
	}
	return c.supp
}

func (c *Cluster) suppressKey() string { return c.key("suppress") }

// Add shares an entry added or renewed on this node.
func (s *Suppressions) Add(e SuppressionEntry) {
	e.Removed = 0
	s.change(e)
}

// Remove shares the removal of an entry at removed.
func (s *Suppressions) Remove(tenant, address string, removed time.Time) {
	s.change(SuppressionEntry{Tenant: tenant, Address: address, Removed: max(1, removed.Unix())})
}

func (s *Suppressions) change(e SuppressionEntry) {
	e.Node = s.c.opts.NodeID
	k := e.field()
	s.mu.Lock()
	s.pending[k] = e
	if s.touched != nil {
		s.touched[k] = true
	}
	s.mu.Unlock()
	s.x.changed()
}

// Start exchanges the list with the cluster: it subscribes to the
// others' changes, reconciles store with the entries kept in Redis at
// every (re)subscription, and writes the changes made here. Call it once;
// Cluster.Stop ends it.
func (s *Suppressions) Start(store SuppressionStore) {
	s.store = store // before the goroutines that read it start
	s.x.start()
}

// flush writes the changes pending when it starts to the hash and
// publishes them, suppressBatch at a time; it reports whether they were
// all written. Those it could not write are pending again (unless changed
// again meanwhile).
func (s *Suppressions) flush() bool {
	s.flushMu.Lock()
	defer s.flushMu.Unlock()
	s.mu.Lock()
	out := s.pending
	if len(out) == 0 {
		s.mu.Unlock()
		return true
	}
	s.pending, s.inflight = make(map[string]SuppressionEntry), out
	s.mu.Unlock()
	all := make([]SuppressionEntry, 0, len(out)) // out is only read from now on
	for _, e := range out {
		all = append(all, e)
	}
	for len(all) > 0 {
		n := min(len(all), suppressBatch)
		if s.write(all[:n]) != nil {
			break
		}
		all = all[n:]
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.inflight = nil
	for _, e := range all { // not written
		if _, newer := s.pending[e.field()]; !newer {
			s.pending[e.field()] = e
		}
	}
	return len(all) == 0
}

// write sets the batch's fields of the hash and publishes the batch, in
// one MULTI.
func (s *Suppressions) write(batch []SuppressionEntry) error {
	c := s.c
	ctx, cancel := c.ctx()
	defer cancel()
	pipe := c.rdb.TxPipeline()
	for i := range batch {
		b, _ := json.Marshal(&batch[i])
		pipe.HSet(ctx, c.suppressKey(), batch[i].field(), b)
	}
	msg, _ := json.Marshal(batch)
	pipe.Publish(ctx, c.suppressKey(), msg)
	_, err := pipe.Exec(ctx)
	return c.result(err)
}

// applyPublished applies a message of the channel: the changes of
// another node.
func (s *Suppressions) applyPublished(payload string) {
	var es []SuppressionEntry
	if json.Unmarshal([]byte(payload), &es) == nil {
		s.applyAll(es)
	}
}

// applyAll applies the entries changed on other nodes, but for those
// changed here meanwhile (pending or touched by a reconcile).
func (s *Suppressions) applyAll(es []SuppressionEntry) {
	for _, e := range es {
		if e.Node == s.c.opts.NodeID || e.Address == "" || s.changedHere(e.field()) {
			continue
		}
		s.store.ApplySuppression(e)
	}
}

func (s *Suppressions) changedHere(field string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, pending := s.pending[field]
	_, inflight := s.inflight[field]
	return pending || inflight || s.touched[field]
}

// reconcile makes the node's list agree with the hash: the changes made
// here are written first; then the hash is scanned (HSCAN, a page at a
// time: the list may be large) and each entry applied here (the store
// keeps the newer), tombstones past tombstoneTTL are deleted, and every
// entry held here that the hash does not know (Redis lost its data, or
// the node joins with entries of its own) is shared. It reports whether
// it finished.
func (s *Suppressions) reconcile() bool {
	ctx := context.Background()
	if !s.flush() {
		return false // Redis is down: later
	}
	c := s.c
	s.mu.Lock()
	s.touched = map[string]bool{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.touched = nil
		s.mu.Unlock()
	}()
	old := c.opts.Now().Add(-tombstoneTTL).Unix()
	known := map[string]bool{}
	var cursor uint64
	for {
		cctx, cancel := context.WithTimeout(ctx, c.opts.Timeout)
		kv, next, err := c.rdb.HScan(cctx, c.suppressKey(), cursor, "", 1000).Result()
		cancel()
		if c.result(err) != nil {
			return false
		}
		var dead []string
		page := make([]SuppressionEntry, 0, len(kv)/2)
		for i := 0; i+1 < len(kv); i += 2 {
			var e SuppressionEntry
			if json.Unmarshal([]byte(kv[i+1]), &e) != nil || e.Address == "" || e.Removed != 0 && e.Removed < old {
				dead = append(dead, kv[i])
				continue
			}
			known[kv[i]] = true
			e.Node = "" // applied whoever made it: this node may have lost it
			page = append(page, e)
		}
		for _, e := range page {
			if !s.changedHere(e.field()) {
				s.store.ApplySuppression(e)
			}
		}
		if len(dead) > 0 {
			cctx, cancel := context.WithTimeout(ctx, c.opts.Timeout)
			c.result(c.rdb.HDel(cctx, c.suppressKey(), dead...).Err())
			cancel()
		}
		if cursor = next; cursor == 0 {
			break
		}
		select {
		case <-s.x.stop:
			return false // shutting down
		default:
		}
	}
	shared := 0
	err := s.store.EachSuppression(func(e SuppressionEntry) bool {
		if !known[e.field()] && !s.changedHere(e.field()) {
			s.Add(e)
			shared++
		}
		return true
	})
	if err != nil {
		c.log.Error("cluster: reading the suppression list to share it", "err", err)
	}
	c.log.Info("cluster: suppression list reconciled", "entries_in_redis", len(known), "shared", shared)
	return err == nil
}
