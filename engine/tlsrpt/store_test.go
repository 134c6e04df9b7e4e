package tlsrpt

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// TestStorePersists: counts written at Close are there after a new
// NewStore on the same directory; a day's counts go under the UTC day.
func TestStorePersists(t *testing.T) {
	dir := t.TempDir()
	clk := &fakeClock{t: time.Date(2026, 12, 7, 23, 59, 0, 0, time.FixedZone("X", 3600))} // 22:59 UTC
	st, err := NewStore(StoreOptions{Dir: dir, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	st.Observe(Session{Domain: "a.test"})
	st.Observe(Session{Domain: "a.test", ResultType: ResultCertExpired, ReceivingMX: "mx.a.test"})
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, StoreFile)); err != nil {
		t.Fatal(err)
	}
	st2, err := NewStore(StoreOptions{Dir: dir, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	defer st2.Close()
	c, _, ok := st2.Counts("2026-12-07", "A.test")
	if !ok || len(c.Policies) != 1 || c.Policies[0].Success != 1 || c.Policies[0].Failure != 1 || c.Policies[0].Details[0].ResultType != ResultCertExpired {
		t.Fatalf("after restart: %+v %v", c, ok)
	}
	if l := st2.List(); len(l) != 1 || l[0].Domains[0].Successful != 1 || l[0].Domains[0].Failed != 1 {
		t.Errorf("List: %+v", l)
	}
}

// TestStoreFlushes: the file is written in the background while counting.
func TestStoreFlushes(t *testing.T) {
	dir := t.TempDir()
	st, err := NewStore(StoreOptions{Dir: dir, FlushEvery: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	st.Observe(Session{Domain: "a.test"})
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, err := os.Stat(filepath.Join(dir, StoreFile)); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("not written")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestStoreBounds: domains, policies and detail rows are capped; what is
// past the cap is still counted in the totals where it can be.
func TestStoreBounds(t *testing.T) {
	st, err := NewStore(StoreOptions{MaxDomains: 2, MaxPolicies: 1, MaxDetails: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	for i := range 3 {
		st.Observe(Session{Domain: fmt.Sprintf("d%d.test", i)})
	}
	st.Observe(Session{Domain: "d0.test", PolicyType: PolicySTS}) // second policy: counted under the first
	for i := range 4 {
		st.Observe(Session{Domain: "d1.test", ResultType: ResultValidationFailure, ReceivingMX: fmt.Sprintf("mx%d.test", i)})
	}
	l := st.List()
	if len(l) != 1 || len(l[0].Domains) != 2 || l[0].DroppedDomains != 1 {
		t.Fatalf("domains: %+v", l)
	}
	c, _, _ := st.Counts(l[0].Day, "d0.test")
	if len(c.Policies) != 1 || c.Policies[0].Success != 2 {
		t.Errorf("policies: %+v", c.Policies[0])
	}
	c, _, _ = st.Counts(l[0].Day, "d1.test")
	if p := c.Policies[0]; p.Failure != 4 || len(p.Details) != 2 || p.Undetailed != 2 {
		t.Errorf("details: %+v", p)
	}
}

// TestStoreBadFile: a file that does not parse is reported and counting
// starts afresh.
func TestStoreBadFile(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, StoreFile), []byte("{nope"), 0o600)
	st, err := NewStore(StoreOptions{Dir: dir})
	if err == nil || st == nil {
		t.Fatalf("NewStore = %v, %v", st, err)
	}
	st.Close()
}

// BenchmarkStoreObserve: the cost of counting one session (once per new
// connection to an MX host), a success and a failure with its details.
func BenchmarkStoreObserve(b *testing.B) {
	st, _ := NewStore(StoreOptions{})
	defer st.Close()
	ok := Session{Domain: "example.test", PolicyType: PolicySTS, PolicyString: []string{"version: STSv1", "mode: enforce", "mx: mx.example.test", "max_age: 86400"}, MXHost: []string{"mx.example.test"}}
	bad := ok
	bad.ResultType, bad.ReceivingMX, bad.ReasonCode = ResultCertExpired, "mx.example.test", "x509: certificate has expired"
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if i%2 == 0 {
			st.Observe(ok)
		} else {
			st.Observe(bad)
		}
	}
}

// TestStoreConcurrent: sessions counted from many goroutines while the
// file is written and the counts listed are all counted (run with -race).
func TestStoreConcurrent(t *testing.T) {
	st, err := NewStore(StoreOptions{Dir: t.TempDir(), FlushEvery: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 500 {
				s := Session{Domain: fmt.Sprintf("d%d.test", i%7)}
				if (g+i)%3 == 0 {
					s.ResultType, s.ReceivingMX = ResultValidationFailure, "mx.test"
				}
				st.Observe(s)
				if i%50 == 0 {
					st.List()
					st.Counts(Day(time.Now()), "d1.test")
				}
			}
		}()
	}
	wg.Wait()
	var total int64
	for _, day := range st.List() { // one day, or two across midnight
		for _, d := range day.Domains {
			total += d.Successful + d.Failed
		}
	}
	if total != 2000 {
		t.Errorf("%d sessions counted, want 2000", total)
	}
}
