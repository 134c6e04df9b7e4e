package cluster

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"gannet/internal/redistest"
)

// suppStore is a node's suppression list, as engine/suppress keeps it:
// the newer entry wins; changes made here are shared through
// Suppressions.
type suppStore struct {
	mu      sync.Mutex
	entries map[string]SuppressionEntry // by field
	s       *Suppressions
}

func (st *suppStore) EachSuppression(fn func(SuppressionEntry) bool) error {
	st.mu.Lock()
	all := make([]SuppressionEntry, 0, len(st.entries))
	for _, e := range st.entries {
		all = append(all, e)
	}
	st.mu.Unlock()
	for _, e := range all {
		if !fn(e) {
			break
		}
	}
	return nil
}

func (st *suppStore) ApplySuppression(e SuppressionEntry) {
	st.mu.Lock()
	defer st.mu.Unlock()
	have, ok := st.entries[e.field()]
	switch {
	case e.Removed != 0:
		if ok && have.Created <= e.Removed {
			delete(st.entries, e.field())
		}
	case !ok || have.Created < e.Created:
		e.Node = ""
		st.entries[e.field()] = e
	}
}

func (st *suppStore) add(tenant, addr string, created int64) {
	e := SuppressionEntry{Tenant: tenant, Address: addr, Reason: "r", Source: "admin", Created: created}
	st.mu.Lock()
	st.entries[e.field()] = e
	st.mu.Unlock()
	st.s.Add(e)
}

func (st *suppStore) remove(tenant, addr string, at int64) {
	st.mu.Lock()
	delete(st.entries, tenant+"\x00"+addr)
	st.mu.Unlock()
	st.s.Remove(tenant, addr, time.Unix(at, 0))
}

func (st *suppStore) has(tenant, addr string) bool {
	st.mu.Lock()
	defer st.mu.Unlock()
	_, ok := st.entries[tenant+"\x00"+addr]
	return ok
}

func (st *suppStore) len() int {
	st.mu.Lock()
	defer st.mu.Unlock()
	return len(st.entries)
}

// suppNode starts a node sharing st (empty when nil) under prefix.
func suppNode(t *testing.T, url, prefix, id string, o Options, st *suppStore) *suppStore {
	t.Helper()
	o.KeyPrefix = prefix
	if st == nil {
		st = &suppStore{entries: map[string]SuppressionEntry{}}
	}
	st.s = node(t, url, id, o).Suppressions()
	st.s.Start(st)
	return st
}

// TestSuppressionsReachEveryNode: an entry added on one node is on the
// other within a second, its removal too; a node that joins later gets
// the entries (and not the removed one), and shares its own.
func TestSuppressionsReachEveryNode(t *testing.T) {
	url := server(t)
	o := Options{Heartbeat: time.Second, NodeTTL: 3 * time.Second}
	a := suppNode(t, url, "supp1:", "node-a", o, nil)
	b := suppNode(t, url, "supp1:", "node-b", o, nil)
	time.Sleep(200 * time.Millisecond) // both subscribed

	now := time.Now().Unix()
	a.add("acme", "bob@x.test", now)
	if d := within(t, "b has a's entry", func() bool { return b.has("acme", "bob@x.test") }); d > time.Second {
		t.Errorf("an entry took %v to reach the other node", d)
	}
	a.add("", "gone@x.test", now)
	within(t, "b has the global entry", func() bool { return b.has("", "gone@x.test") })
	b.remove("", "gone@x.test", now+1)
	within(t, "its removal on b reached a", func() bool { return !a.has("", "gone@x.test") })

	own := &suppStore{entries: map[string]SuppressionEntry{
		"\x00mine@y.test": {Address: "mine@y.test", Created: now},
		"\x00gone@x.test": {Address: "gone@x.test", Created: now - 60}, // removed meanwhile
	}}
	c := suppNode(t, url, "supp1:", "node-c", o, own)
	within(t, "c reconciled", func() bool { return c.has("acme", "bob@x.test") && !c.has("", "gone@x.test") })
	within(t, "c's own entry shared", func() bool { return a.has("", "mine@y.test") && b.has("", "mine@y.test") })
}

// TestSuppressionsLargeList: 20,000 entries added on one node reach the
// other in batches, and a node joining later gets them all from a scan
// of the hash (no single huge value).
func TestSuppressionsLargeList(t *testing.T) {
	url := server(t)
	o := Options{Heartbeat: time.Second, NodeTTL: 3 * time.Second}
	a := suppNode(t, url, "supp2:", "node-a", o, nil)
	b := suppNode(t, url, "supp2:", "node-b", o, nil)
	time.Sleep(200 * time.Millisecond)
	const n = 20000
	now := time.Now().Unix()
	t0 := time.Now()
	for i := range n {
		a.add("", fmt.Sprintf("u%d@big.test", i), now)
	}
	waitLong(t, "b has all the entries", func() bool { return b.len() == n })
	t.Logf("%d entries reached the other node in %v", n, time.Since(t0).Round(time.Millisecond))
	t0 = time.Now()
	c := suppNode(t, url, "supp2:", "node-c", o, nil)
	waitLong(t, "a node joining later has all the entries", func() bool { return c.len() == n })
	t.Logf("a node joining later had them after %v", time.Since(t0).Round(time.Millisecond))

	ctx := context.Background()
	cl := a.s.c
	if typ, err := cl.rdb.Type(ctx, cl.suppressKey()).Result(); err != nil || typ != "hash" {
		t.Fatalf("the list's key is a %q (%v), want a hash", typ, err)
	}
	if got, err := cl.rdb.HLen(ctx, cl.suppressKey()).Result(); err != nil || got != n {
		t.Fatalf("HLEN %d (%v), want %d", got, err, n)
	}
}

// Redis down: entries added meanwhile are in force where they were made
// and reach the others once Redis is back, even empty.
func TestSuppressionsRedisDownThenBack(t *testing.T) {
	srv := redistest.Need(t)
	url := srv.URL(2)
	o := Options{Heartbeat: 300 * time.Millisecond, NodeTTL: 3 * time.Second, Timeout: 200 * time.Millisecond}
	a := suppNode(t, url, "supp3:", "node-a", o, nil)
	b := suppNode(t, url, "supp3:", "node-b", o, nil)
	time.Sleep(200 * time.Millisecond)
	now := time.Now().Unix()
	a.add("", "before@x.test", now)
	within(t, "b has the entry made before Redis went down", func() bool { return b.has("", "before@x.test") })
	srv.Kill()
	a.add("", "during@x.test", now)
	time.Sleep(time.Second)
	if b.has("", "during@x.test") {
		t.Fatal("an entry reached b with Redis down")
	}
	if err := srv.Restart(); err != nil {
		t.Fatal(err)
	}
	t.Logf("the entry reached b %v after Redis came back", within(t, "b has the entry", func() bool { return b.has("", "during@x.test") }))
	c := suppNode(t, url, "supp3:", "node-c", o, nil)
	within(t, "a node started after the restart has both entries", func() bool {
		return c.has("", "before@x.test") && c.has("", "during@x.test")
	})
}

// waitLong retries cond every 50ms for up to 60s (a loaded machine under
// -race moves large lists slowly).
func waitLong(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for range 1200 {
		if cond() {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("not within 60s: %s", what)
}
