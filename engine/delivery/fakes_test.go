package delivery

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"gannet/engine/logrec"
	"gannet/engine/outbound"
	"gannet/queue"
	"gannet/resolver"
	"gannet/smtpwire"
)

// memStore is an in-memory Store for unit tests of the loop.
type memStore struct {
	mu      sync.Mutex
	bodies  map[string][]byte
	saved   map[string]queue.Message // last Update
	removed map[string]int
	located map[string]int // of removed, those by RemoveLocated
	reads   int
	// corrupt bodies fail with queue.ErrCorrupt; quarantined counts the
	// Quarantine calls that took a message out; intact makes Quarantine
	// answer queue.ErrNotCorrupt although Body failed.
	corrupt     map[string]bool
	quarantined map[string]int
	intact      bool
	released    [][]byte // ReleaseBody calls
}

func newMemStore() *memStore {
	return &memStore{bodies: map[string][]byte{}, saved: map[string]queue.Message{}, removed: map[string]int{}, located: map[string]int{},
		corrupt: map[string]bool{}, quarantined: map[string]int{}}
}

func (s *memStore) Body(m *queue.Message) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reads++
	if s.corrupt[m.ID] {
		return nil, fmt.Errorf("message %s: %w: checksum mismatch", m.ID, queue.ErrCorrupt)
	}
	b, ok := s.bodies[m.ID]
	if !ok {
		return nil, errors.New("no such body")
	}
	return b, nil
}

func (s *memStore) ReleaseBody(body []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.released = append(s.released, body)
}

func (s *memStore) releasedBodies() [][]byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.released
}

func (s *memStore) Quarantine(id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.intact || !s.corrupt[id]:
		return fmt.Errorf("queue: quarantine %s: %w", id, queue.ErrNotCorrupt)
	case s.quarantined[id] > 0:
		return fmt.Errorf("queue: quarantine %s: %w", id, queue.ErrNotFound)
	}
	s.quarantined[id]++
	return nil
}

func (s *memStore) Update(m *queue.Message) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := *m
	c.Recipients = append([]queue.Recipient(nil), m.Recipients...)
	s.saved[m.ID] = c
	return nil
}

func (s *memStore) Remove(id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.removed[id]++
	return nil
}

func (s *memStore) RemoveLocated(m *queue.Message) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.removed[m.ID]++
	s.located[m.ID]++
	return nil
}

func (s *memStore) removedCount(id string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.removed[id]
}

// mapRouter resolves from a table; unknown domains route to a site named
// after the domain.
type mapRouter struct {
	mu     sync.Mutex
	routes map[string]*resolver.Route
	errs   map[string]error
	calls  int
}

func (r *mapRouter) Resolve(ctx context.Context, domain string) (*resolver.Route, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls++
	if err := r.errs[domain]; err != nil {
		return nil, err
	}
	if rt := r.routes[domain]; rt != nil {
		return rt, nil
	}
	return &resolver.Route{Domain: domain, Site: mxSite("mx." + domain)}, nil
}

// mxSite is the site of the MX hosts named hosts.
func mxSite(hosts ...string) resolver.SiteKey { return resolver.MXSite(hosts) }

// funcTransport calls fn for each transaction and records the envelopes.
type funcTransport struct {
	fn      func(route *resolver.Route, env *outbound.Envelope) outbound.Outcome
	mu      sync.Mutex
	calls   []outbound.Envelope
	busy    map[string]int
	maxBusy map[string]int
	closed  bool
}

func (t *funcTransport) Deliver(ctx context.Context, route *resolver.Route, env *outbound.Envelope) outbound.Outcome {
	t.mu.Lock()
	if t.busy == nil {
		t.busy, t.maxBusy = map[string]int{}, map[string]int{}
	}
	t.calls = append(t.calls, outbound.Envelope{From: env.From, Rcpts: append([]string(nil), env.Rcpts...), Body: append([]byte(nil), env.Body...)})
	site := route.Site.String()
	t.busy[site]++
	t.maxBusy[site] = max(t.maxBusy[site], t.busy[site])
	t.mu.Unlock()
	defer func() {
		t.mu.Lock()
		t.busy[site]--
		t.mu.Unlock()
	}()
	if t.fn == nil {
		return outcomeAll(env, outbound.Delivered, reply(250, "2.0.0", "OK"))
	}
	return t.fn(route, env)
}

func (t *funcTransport) Close() error {
	t.mu.Lock()
	t.closed = true
	t.mu.Unlock()
	return nil
}

func (t *funcTransport) envelopes() []outbound.Envelope {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]outbound.Envelope(nil), t.calls...)
}

func outcomeAll(env *outbound.Envelope, st outbound.Status, rep smtpwire.Reply) outbound.Outcome {
	o := outbound.Outcome{Host: "mx.test", Peer: netip.MustParseAddrPort("127.0.0.1:25"), TLSVersion: "TLSv1.3", TLSCipher: "TLS_AES_128_GCM_SHA256"}
	for _, r := range env.Rcpts {
		o.Results = append(o.Results, outbound.Result{Rcpt: r, Status: st, Reply: rep})
	}
	return o
}

func reply(code int, enh, text string) smtpwire.Reply {
	return smtpwire.Reply{Code: code, Enhanced: enh, Lines: []string{text}}
}

// recorder collects log records.
type recorder struct {
	mu   sync.Mutex
	recs []logrec.Record
	ch   chan struct{}
}

func newRecorder() *recorder { return &recorder{ch: make(chan struct{}, 1)} }

func (r *recorder) Write(rec *logrec.Record) bool {
	r.mu.Lock()
	r.recs = append(r.recs, *rec)
	r.mu.Unlock()
	select {
	case r.ch <- struct{}{}:
	default:
	}
	return true
}

func (r *recorder) all() []logrec.Record {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]logrec.Record(nil), r.recs...)
}

// summary lists "Type rcpt" for every record, sorted.
func (r *recorder) summary() []string {
	var out []string
	for _, rec := range r.all() {
		out = append(out, string(rec.Type)+" "+rec.Recipient)
	}
	sort.Strings(out)
	return out
}

// waitFor waits until n records exist.
func (r *recorder) waitFor(t *testing.T, n int) []logrec.Record {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		if recs := r.all(); len(recs) >= n {
			return recs
		}
		select {
		case <-r.ch:
		case <-time.After(10 * time.Millisecond):
		case <-deadline:
			t.Fatalf("timed out waiting for %d records; have %s", n, strings.Join(r.summary(), ", "))
		}
	}
}

// testMetrics counts metric calls.
type testMetrics struct {
	mu                                     sync.Mutex
	delivered, bounced, transient, expired int
	latencies                              []time.Duration
}

func (m *testMetrics) Delivered(d time.Duration) {
	m.mu.Lock()
	m.delivered++
	m.latencies = append(m.latencies, d)
	m.mu.Unlock()
}
func (m *testMetrics) Bounced()          { m.mu.Lock(); m.bounced++; m.mu.Unlock() }
func (m *testMetrics) TransientFailure() { m.mu.Lock(); m.transient++; m.mu.Unlock() }
func (m *testMetrics) Expired()          { m.mu.Lock(); m.expired++; m.mu.Unlock() }

func newMessage(id string, created time.Time, rcpts ...string) *queue.Message {
	m := &queue.Message{ID: id, From: "sender@src.test", Created: created, Size: 10, Tenant: "acme", Campaign: "spring"}
	for _, r := range rcpts {
		m.Recipients = append(m.Recipients, queue.Recipient{Addr: r})
	}
	return m
}
