package events

import (
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"gannet/engine/logrec"
)

const testSecret = "whsec-test-3f9a"

// newTestShipper opens a Shipper on dir with one sink, fast retries.
func newTestShipper(t testing.TB, dir string, c *counter, sinks ...SinkOptions) *Shipper {
	t.Helper()
	s, err := New(Options{Dir: dir, Sinks: sinks, Count: c.count, RetryMin: 10 * time.Millisecond, RetryMax: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	s.Start()
	return s
}

func hookSink(url string, batch bool) SinkOptions {
	return SinkOptions{Name: "hooks", Kind: KindWebhook, URL: url, Secret: testSecret, Batch: batch,
		MaxBatch: 7, MaxDelay: 20 * time.Millisecond}
}

// TestWebhookDownThenUp: the receiver answers 503 for a while, then 200:
// every record arrives, signed, at least once; a request sent again
// carries the same Idempotency-Key and the same records; the status
// shows the error, then the success.
func TestWebhookDownThenUp(t *testing.T) {
	for _, batched := range []bool{false, true} {
		t.Run(fmt.Sprintf("batch=%v", batched), func(t *testing.T) {
			rcv := startReceiver(t, testSecret)
			rcv.setAnswer(func([]map[string]any) int { return http.StatusServiceUnavailable })
			c := new(counter)
			s := newTestShipper(t, t.TempDir(), c, hookSink(rcv.url, batched))
			defer s.Close()
			var uuids []string
			for i := range 200 {
				r := record(i, logrec.Delivery, "acme")
				s.Add(r)
				uuids = append(uuids, r.UUID)
			}
			waitFor(t, 20*time.Second, "failed attempts while the receiver is down", func() (bool, string) {
				_, _, failed, _, _ := rcv.snapshot()
				return failed >= 5, fmt.Sprintf("%d failed", failed)
			})
			st := s.Status()[0]
			if st.Backlog == 0 || !strings.Contains(st.LastError, "503") || st.LastSuccess != nil {
				t.Errorf("status while down: %+v", st)
			}
			rcv.setAnswer(nil)
			waitFor(t, 30*time.Second, "every record at the receiver", func() (bool, string) {
				m := rcv.missing(uuids)
				return len(m) == 0, fmt.Sprintf("%d missing; %s", len(m), c)
			})
			_, requests, failed, badSig, badKey := rcv.snapshot()
			if badSig != 0 || len(badKey) != 0 {
				t.Errorf("%d requests with a bad signature; keys sent again with other records: %v", badSig, badKey)
			}
			if c.get("hooks", ResultOK) < 200 || c.get("hooks", ResultRetried) == 0 {
				t.Errorf("counted %s", c)
			}
			waitFor(t, 5*time.Second, "backlog 0", func() (bool, string) {
				st := s.Status()[0]
				return st.Backlog == 0 && st.LastSuccess != nil, fmt.Sprintf("%+v", st)
			})
			t.Logf("%d requests, %d refused with 503", requests, failed)
		})
	}
}

// TestWebhookRestartLosesNothing: the Shipper is closed while the receiver
// is down and opened again on the same directory: every record of both
// runs arrives, and the batch in flight at the stop goes out again under
// the same key with the same records.
func TestWebhookRestartLosesNothing(t *testing.T) {
	rcv := startReceiver(t, testSecret)
	rcv.setAnswer(func([]map[string]any) int { return http.StatusBadGateway })
	dir := t.TempDir()
	c := new(counter)
	s := newTestShipper(t, dir, c, hookSink(rcv.url, true))
	var uuids []string
	add := func(s *Shipper, n int) {
		for i := range n {
			r := record(len(uuids)+i, logrec.Bounce, "acme")
			s.Add(r)
			uuids = append(uuids, r.UUID)
		}
	}
	// A batch of 3 (not a full one) fails a few times; more records come
	// meanwhile, which must not join it.
	add(s, 3)
	waitFor(t, 20*time.Second, "failed attempts", func() (bool, string) {
		_, _, failed, _, _ := rcv.snapshot()
		return failed >= 3, ""
	})
	add(s, 147)
	add(s, 20) // taken by Add, perhaps not yet in the journal: Close writes them
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	rcv.mu.Lock()
	keysBefore := map[string][]string{}
	for k, v := range rcv.keys {
		keysBefore[k] = v
	}
	rcv.mu.Unlock()

	s = newTestShipper(t, dir, c, hookSink(rcv.url, true))
	defer s.Close()
	if st := s.Status()[0]; st.Backlog != 170 {
		t.Errorf("backlog after the restart %d, want 170", st.Backlog)
	}
	add(s, 30)
	rcv.setAnswer(nil)
	waitFor(t, 30*time.Second, "every record of both runs", func() (bool, string) {
		m := rcv.missing(uuids)
		return len(m) == 0, fmt.Sprintf("%d of %d missing", len(m), len(uuids))
	})
	_, _, _, badSig, badKey := rcv.snapshot()
	if badSig != 0 || len(badKey) != 0 {
		t.Errorf("%d bad signatures; keys with other records: %v", badSig, badKey)
	}
	// The first batch taken after the restart is the one that failed
	// before it: the same key, the same records.
	rcv.mu.Lock()
	first := rcv.order[0]
	key := rcv.keyOf[first]
	rcv.mu.Unlock()
	if before, ok := keysBefore[key]; first != uuids[0] || !ok || len(before) != 3 {
		t.Errorf("first record taken %s (want %s) under key %s; that key before the restart: %v", first, uuids[0], key, before)
	}
}

// TestWebhook400DropsAndCounts: a 400 answer drops the record (counted
// "rejected", not retried), a 429 is retried, and the records around them
// are shipped.
func TestWebhook400DropsAndCounts(t *testing.T) {
	rcv := startReceiver(t, testSecret)
	tries := map[string]int{}
	rcv.setAnswer(func(recs []map[string]any) int {
		u := recs[0]["uuid"].(string)
		tries[u]++
		switch recs[0]["tenant"] {
		case "bad":
			return http.StatusBadRequest
		case "busy":
			if tries[u] < 3 {
				return http.StatusTooManyRequests
			}
		}
		return http.StatusOK
	})
	c := new(counter)
	s := newTestShipper(t, t.TempDir(), c, hookSink(rcv.url, false))
	defer s.Close()
	var good, bad []string
	for i := range 30 {
		tenant := []string{"good", "bad", "busy"}[i%3]
		r := record(i, logrec.Delivery, tenant)
		s.Add(r)
		if tenant == "bad" {
			bad = append(bad, r.UUID)
		} else {
			good = append(good, r.UUID)
		}
	}
	waitFor(t, 20*time.Second, "all records decided", func() (bool, string) {
		return c.get("hooks", ResultOK) == 20 && c.get("hooks", ResultRejected) == 10, c.String()
	})
	if m := rcv.missing(good); len(m) != 0 {
		t.Errorf("records answered 200 (or 429 then 200) missing: %v", m)
	}
	got, _, _, _, _ := rcv.snapshot()
	rcv.mu.Lock()
	defer rcv.mu.Unlock()
	for _, u := range bad {
		if got[u] != 0 || tries[u] != 1 {
			t.Errorf("record %s answered 400: taken %d, tried %d times (want once)", u, got[u], tries[u])
		}
	}
	if st := s.Status()[0]; st.Rejected != 10 || st.Backlog != 0 || st.LastError == "" {
		t.Errorf("status %+v", st)
	}
}

// TestMaxBacklogDropsOldest: with the receiver down, a backlog past
// max_backlog loses its oldest records (counted); the newest arrive.
func TestMaxBacklogDropsOldest(t *testing.T) {
	rcv := startReceiver(t, testSecret)
	rcv.setAnswer(func([]map[string]any) int { return http.StatusServiceUnavailable })
	c := new(counter)
	o := hookSink(rcv.url, true)
	o.MaxBacklog = 10
	s := newTestShipper(t, t.TempDir(), c, o)
	defer s.Close()
	var uuids []string
	for i := range 30 {
		r := record(i, logrec.Delivery, "acme")
		s.Add(r)
		uuids = append(uuids, r.UUID)
	}
	waitFor(t, 10*time.Second, "20 records dropped", func() (bool, string) {
		return c.get("hooks", ResultDropped) == 20, c.String()
	})
	if st := s.Status()[0]; st.Backlog != 10 || st.Dropped != 20 {
		t.Errorf("status %+v", st)
	}
	rcv.setAnswer(nil)
	waitFor(t, 20*time.Second, "the newest 10 records", func() (bool, string) {
		m := rcv.missing(uuids[20:])
		return len(m) == 0, fmt.Sprintf("%d missing", len(m))
	})
	if got, _, _, _, _ := rcv.snapshot(); len(got) != 10 {
		t.Errorf("the receiver took %d records, want the newest 10", len(got))
	}
}

// TestSinkFilters: a sink with types and tenant gets only those records.
func TestSinkFilters(t *testing.T) {
	rcv := startReceiver(t, testSecret)
	c := new(counter)
	o := hookSink(rcv.url, true)
	o.Types, o.Tenant = []string{"Bounce", "Expiration"}, "acme"
	s := newTestShipper(t, t.TempDir(), c, o)
	defer s.Close()
	var want []string
	for i := range 60 {
		typ := []logrec.Type{logrec.Bounce, logrec.Delivery, logrec.Expiration}[i%3]
		tenant := []string{"acme", "other"}[i%2]
		r := record(i, typ, tenant)
		s.Add(r)
		if typ != logrec.Delivery && tenant == "acme" {
			want = append(want, r.UUID)
		}
	}
	waitFor(t, 20*time.Second, "the matching records", func() (bool, string) {
		m := rcv.missing(want)
		return len(m) == 0, fmt.Sprintf("%d missing", len(m))
	})
	// The journal keeps order: anything that did not match would have
	// come before the last matching record.
	if got, _, _, _, _ := rcv.snapshot(); len(got) != len(want) {
		t.Errorf("the receiver took %d records, want the %d matching", len(got), len(want))
	}
}

// TestWebhookTimeoutRetried: a receiver that does not answer is given up
// after the sink's timeout and the record is sent again (same key).
func TestWebhookTimeoutRetried(t *testing.T) {
	var mu sync.Mutex
	calls := map[string]int{}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		key := r.Header.Get("Idempotency-Key")
		mu.Lock()
		calls[key]++
		n := calls[key]
		mu.Unlock()
		if n == 1 {
			<-r.Context().Done() // hangs until the client gives up
			return
		}
		w.WriteHeader(http.StatusOK)
	})}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	defer srv.Close()
	c := new(counter)
	o := hookSink("http://"+ln.Addr().String()+"/", false)
	o.Timeout = 200 * time.Millisecond
	s := newTestShipper(t, t.TempDir(), c, o)
	defer s.Close()
	r := record(1, logrec.Delivery, "acme")
	s.Add(r)
	waitFor(t, 20*time.Second, "the record taken", func() (bool, string) { return c.get("hooks", ResultOK) == 1, c.String() })
	mu.Lock()
	defer mu.Unlock()
	if calls[r.UUID] != 2 || c.get("hooks", ResultRetried) != 1 {
		t.Errorf("requests under the record's key %d (want 2: one timed out); %s", calls[r.UUID], c)
	}
	if st := s.Status()[0]; !strings.Contains(st.LastError, "Timeout") && !strings.Contains(st.LastError, "deadline") {
		t.Errorf("last error %q, want a timeout", st.LastError)
	}
}
