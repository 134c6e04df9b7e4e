package cluster

import (
	"maps"
	"sync"
	"testing"
	"time"

	"gannet/internal/redistest"
)

// ruleStore is a node's rules, as the delivery loop keeps them: made
// here (make, end: shared through Rules) or brought from elsewhere.
type ruleStore struct {
	mu    sync.Mutex
	rules map[string][]byte
	r     *Rules
}

func (s *ruleStore) SharedRules() map[string][]byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return maps.Clone(s.rules)
}

func (s *ruleStore) ApplySharedRule(key string, v []byte) {
	s.mu.Lock()
	s.rules[key] = v
	s.mu.Unlock()
	s.r.Put(key, v, time.Time{}) // as delivery stores it: not shared again
}

func (s *ruleStore) DropSharedRule(key string) {
	s.mu.Lock()
	delete(s.rules, key)
	s.mu.Unlock()
	s.r.Delete(key)
}

func (s *ruleStore) make(key, v string) {
	s.mu.Lock()
	s.rules[key] = []byte(v)
	s.mu.Unlock()
	s.r.Put(key, []byte(v), time.Time{})
}

func (s *ruleStore) end(key string) {
	s.mu.Lock()
	delete(s.rules, key)
	s.mu.Unlock()
	s.r.Delete(key)
}

func (s *ruleStore) has(key string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.rules[key]
	return ok
}

// ruleNode starts a node sharing its rules under prefix (the channel is
// the server's, not the database's: each test its own prefix).
func ruleNode(t *testing.T, url, prefix, id string, o Options) *ruleStore {
	t.Helper()
	o.KeyPrefix = prefix
	c := node(t, url, id, o)
	s := &ruleStore{rules: map[string][]byte{}, r: c.Rules()}
	s.r.Start(s)
	return s
}

// within waits up to 5 s for cond and returns how long it took.
func within(t *testing.T, what string, cond func() bool) time.Duration {
	t.Helper()
	t0 := time.Now()
	for time.Since(t0) < 5*time.Second {
		if cond() {
			return time.Since(t0)
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("not within 5s: %s", what)
	return 0
}

func TestRulesReachEveryNodeAndEnd(t *testing.T) {
	url := server(t)
	o := Options{Heartbeat: time.Second, NodeTTL: 3 * time.Second}
	a := ruleNode(t, url, "rules1:", "node-a", o)
	b := ruleNode(t, url, "rules1:", "node-b", o)
	time.Sleep(200 * time.Millisecond) // both subscribed

	a.make("suspend/1", `{"domain":"x.test"}`)
	t.Logf("a suspension made on a reached b in %v", within(t, "b has a's rule", func() bool { return b.has("suspend/1") }))
	b.end("suspend/1")
	t.Logf("its end on b reached a in %v", within(t, "a's rule ended", func() bool { return !a.has("suspend/1") }))

	c := ruleNode(t, url, "rules1:", "node-c", o) // later: it reconciles
	a.make("hold/2", `{"domain":"y.test"}`)
	within(t, "b has the hold", func() bool { return b.has("hold/2") })
	within(t, "c has the hold", func() bool { return c.has("hold/2") })
	if c.has("suspend/1") {
		t.Error("node-c took a rule that had ended")
	}
}

func TestRulesReconcileAtStart(t *testing.T) {
	url := server(t)
	o := Options{Heartbeat: time.Second, NodeTTL: 3 * time.Second}
	a := ruleNode(t, url, "rules2:", "node-a", o)
	a.make("suspend/1", `{"domain":"x.test"}`)
	a.make("bounce/2", `{"domain":"z.test"}`)
	a.end("bounce/2")
	within(t, "a's rules written", func() bool { return a.r.flush() })

	// A node restarting with a rule that ended while it was down (its
	// spool's copy) ends it, takes the rule made meanwhile, and shares the
	// rule the cluster does not know.
	b := &ruleStore{rules: map[string][]byte{"bounce/2": []byte(`{"domain":"z.test"}`), "hold/3": []byte(`{"tenant":"t"}`)}}
	o.KeyPrefix = "rules2:"
	b.r = node(t, url, "node-b", o).Rules()
	b.r.Start(b)
	t.Logf("reconciled in %v", within(t, "b reconciled", func() bool { return b.has("suspend/1") && !b.has("bounce/2") }))
	within(t, "b's own rule shared with a", func() bool { return a.has("hold/3") })
	if !b.has("hold/3") || a.has("bounce/2") {
		t.Errorf("b has hold/3: %v; a has bounce/2: %v", b.has("hold/3"), a.has("bounce/2"))
	}
}

// Redis down: a rule made meanwhile is in force where it was made at once
// and reaches the others once Redis is back.
func TestRulesRedisDownThenBack(t *testing.T) {
	srv := redistest.Need(t)
	url := srv.URL(1)
	var errs int64
	var mu sync.Mutex
	o := Options{Heartbeat: 300 * time.Millisecond, NodeTTL: 3 * time.Second, Timeout: 200 * time.Millisecond,
		OnRedisError: func() { mu.Lock(); errs++; mu.Unlock() }}
	a := ruleNode(t, url, "rules3:", "node-a", o)
	b := ruleNode(t, url, "rules3:", "node-b", o)
	time.Sleep(200 * time.Millisecond)

	a.make("hold/1", `{"domain":"before.test"}`)
	within(t, "b has the hold made before Redis went down", func() bool { return b.has("hold/1") })
	srv.Kill()
	a.make("suspend/9", `{"domain":"x.test"}`)
	time.Sleep(time.Second)
	if b.has("suspend/9") {
		t.Fatal("a rule reached b with Redis down")
	}
	if err := srv.Restart(); err != nil {
		t.Fatal(err)
	}
	t.Logf("the rule reached b %v after Redis came back", within(t, "b has the rule", func() bool { return b.has("suspend/9") }))
	// Redis came back empty: the nodes shared their rules again, and none
	// was ended for it.
	c := ruleNode(t, url, "rules3:", "node-c", o)
	within(t, "a node started after the restart has both rules", func() bool { return c.has("hold/1") && c.has("suspend/9") })
	if !a.has("hold/1") || !b.has("hold/1") {
		t.Error("a rule made before Redis lost its data ended")
	}
	mu.Lock()
	defer mu.Unlock()
	if errs == 0 {
		t.Error("no Redis error counted")
	}
}
