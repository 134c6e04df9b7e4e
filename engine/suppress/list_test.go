package suppress

import (
	"bytes"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"gannet/queue"
)

// clock is a fake clock tests move by hand.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func openSpool(t testing.TB, dir string) *queue.Spool {
	t.Helper()
	sp, err := queue.Open(queue.Options{Dir: dir, Compression: "none", MinFreeBytes: -1})
	if err != nil {
		t.Fatal(err)
	}
	return sp
}

func newList(t testing.TB) (*List, *clock, *queue.Spool) {
	t.Helper()
	sp := openSpool(t, t.TempDir())
	t.Cleanup(func() { sp.Close() })
	c := &clock{t: time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)}
	return New(sp, c.now), c, sp
}

// TestTenantsAndGlobal: a tenant's entry suppresses that tenant's mail
// only; a global entry suppresses every tenant's; the address matches
// whatever its case; removal ends it.
func TestTenantsAndGlobal(t *testing.T) {
	l, _, _ := newList(t)
	if err := l.Add("a", "Bob@Example.TEST", "550 5.1.1 user unknown", SourceBounce); err != nil {
		t.Fatal(err)
	}
	if err := l.Add("", "all@example.test", "legal", SourceAdmin); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		tenant, addr string
		want         bool
	}{
		{"a", "bob@example.test", true},
		{"a", "<BOB@example.test>", true},
		{"b", "bob@example.test", false},
		{"", "bob@example.test", false},
		{"a", "all@example.test", true},
		{"b", "all@EXAMPLE.test", true},
		{"", "all@example.test", true},
		{"a", "other@example.test", false},
	} {
		if got := l.Suppressed(tc.tenant, tc.addr); got != tc.want {
			t.Errorf("Suppressed(%q, %q) = %v, want %v", tc.tenant, tc.addr, got, tc.want)
		}
	}
	e, ok, err := l.Get("a", "bob@example.test")
	if err != nil || !ok || e.Reason != "550 5.1.1 user unknown" || e.Source != SourceBounce || e.Address != "bob@example.test" {
		t.Errorf("Get: %+v %v %v", e, ok, err)
	}
	if l.Len() != 2 {
		t.Errorf("Len %d, want 2", l.Len())
	}
	if ok, err := l.Remove("b", "bob@example.test"); ok || err != nil {
		t.Errorf("removing another tenant's entry: %v %v", ok, err)
	}
	if ok, err := l.Remove("a", "BOB@example.test"); !ok || err != nil {
		t.Errorf("Remove: %v %v", ok, err)
	}
	if l.Suppressed("a", "bob@example.test") || l.Len() != 1 {
		t.Errorf("after Remove: suppressed %v, len %d", l.Suppressed("a", "bob@example.test"), l.Len())
	}
}

// TestBadAddresses: what cannot be a mailbox is refused with ErrBadAddress.
func TestBadAddresses(t *testing.T) {
	l, _, _ := newList(t)
	for _, a := range []string{"", "bob", "@example.test", "bob@", "a b@example.test", strings.Repeat("x", 400) + "@example.test", "bad\xffutf8@example.test"} {
		if err := l.Add("", a, "", SourceAdmin); err == nil {
			t.Errorf("Add(%q) was taken", a)
		}
	}
	if l.Len() != 0 {
		t.Errorf("Len %d", l.Len())
	}
}

// TestTTL: with a ttl an entry counts for ttl after it was created, on
// the fake clock; a renewal restarts it; Sweep removes what expired.
func TestTTL(t *testing.T) {
	l, c, _ := newList(t)
	l.SetTTL(24 * time.Hour)
	l.Add("a", "old@example.test", "x", SourceBounce)
	c.add(12 * time.Hour)
	l.Add("a", "new@example.test", "x", SourceBounce)
	if !l.Suppressed("a", "old@example.test") || !l.Suppressed("a", "new@example.test") {
		t.Fatal("entries not in force within the ttl")
	}
	e, _, _ := l.Get("a", "new@example.test")
	if want := c.now().Add(24 * time.Hour); !e.Expires.Equal(want) {
		t.Errorf("expires %v, want %v", e.Expires, want)
	}
	c.add(12*time.Hour + time.Second)
	if l.Suppressed("a", "old@example.test") {
		t.Error("an entry counts past its ttl")
	}
	if !l.Suppressed("a", "new@example.test") {
		t.Error("a younger entry expired with the old one")
	}
	var listed []string
	l.Each(Filter{Tenant: "a"}, func(e Entry) bool { listed = append(listed, e.Address); return true })
	if len(listed) != 1 || listed[0] != "new@example.test" {
		t.Errorf("listed %v, want only the live entry", listed)
	}
	if n, err := l.Sweep(); n != 1 || err != nil {
		t.Errorf("Sweep: %d, %v", n, err)
	}
	if l.Len() != 1 {
		t.Errorf("Len %d after the sweep", l.Len())
	}
	// ttl 0: nothing expires, even an entry older than the old ttl.
	c.add(48 * time.Hour)
	l.SetTTL(0)
	if !l.Suppressed("a", "new@example.test") {
		t.Error("ttl 0 still expires entries")
	}
}

// TestSurvivesReopen: the list is in the spool's Pebble: a new List on
// the reopened spool answers as the old one did.
func TestSurvivesReopen(t *testing.T) {
	dir := t.TempDir()
	sp := openSpool(t, dir)
	l := New(sp, nil)
	l.Add("a", "x@example.test", "r", SourceAdmin)
	l.Add("", "g@example.test", "r", SourceBounce)
	l.Add("b", "gone@example.test", "r", SourceAdmin)
	l.Remove("b", "gone@example.test")
	l.Add("", "erased@example.test", "r", SourceErase)
	sp.Close()

	sp = openSpool(t, dir)
	defer sp.Close()
	l = New(sp, nil)
	n, err := l.Load()
	if err != nil || n != 3 {
		t.Fatalf("Load: %d, %v", n, err)
	}
	if !l.Erased("Erased@example.test") || l.Erased("g@example.test") {
		t.Error("the erasure flag is not kept")
	}
	if !l.Suppressed("a", "x@example.test") || !l.Suppressed("z", "g@example.test") || l.Suppressed("b", "gone@example.test") {
		t.Error("the reopened list differs")
	}
}

// TestImportExportRoundTrip: an export imported into an empty list gives
// the same entries; bad lines are counted and named, the rest is taken.
func TestImportExportRoundTrip(t *testing.T) {
	l, _, _ := newList(t)
	in := "address,tenant,reason\n" +
		"# a comment\n" +
		"plain@example.test\n" +
		"Two@Example.test,acme,complained by phone\n" +
		"\"three@example.test\",beta,\"reason, with comma\"\n" +
		"not-an-address\n" +
		"\n" +
		"four@example.test,,\n"
	res, err := l.Import(strings.NewReader(in), "", SourceImport)
	if err != nil {
		t.Fatal(err)
	}
	if res.Added != 4 || res.Failed != 1 || len(res.Errors) != 1 || !strings.HasPrefix(res.Errors[0], "line 6:") {
		t.Fatalf("import: %+v", res)
	}
	if !l.Suppressed("acme", "two@example.test") || l.Suppressed("beta", "two@example.test") || !l.Suppressed("x", "plain@example.test") {
		t.Error("imported entries not in force as their lines say")
	}
	var out bytes.Buffer
	n, err := l.Export(&out, Filter{AllTenants: true})
	if err != nil || n != 4 {
		t.Fatalf("export: %d, %v", n, err)
	}
	if !strings.HasPrefix(out.String(), "address,tenant,reason,source,created,expires\n") ||
		!strings.Contains(out.String(), "three@example.test,beta,\"reason, with comma\",import,") {
		t.Errorf("export:\n%s", out.String())
	}

	l2, _, _ := newList(t)
	res, err = l2.Import(bytes.NewReader(out.Bytes()), "", SourceImport)
	if err != nil || res.Added != 4 || res.Failed != 0 {
		t.Fatalf("re-import: %+v, %v", res, err)
	}
	var a, b []Entry
	l.Each(Filter{AllTenants: true}, func(e Entry) bool { a = append(a, e); return true })
	l2.Each(Filter{AllTenants: true}, func(e Entry) bool { b = append(b, e); return true })
	if fmt.Sprint(a) != fmt.Sprint(b) {
		t.Errorf("round trip differs:\n%v\n%v", a, b)
	}
}

// TestImportTenantBound: an import bound to a tenant puts every line on
// that tenant's list and refuses lines naming another.
func TestImportTenantBound(t *testing.T) {
	l, _, _ := newList(t)
	res, err := l.Import(strings.NewReader("a@example.test\nb@example.test,acme\nc@example.test,other\n"), "acme", SourceImport)
	if err != nil || res.Added != 2 || res.Failed != 1 {
		t.Fatalf("%+v %v", res, err)
	}
	if l.Suppressed("other", "c@example.test") || !l.Suppressed("acme", "a@example.test") || l.Suppressed("zzz", "a@example.test") {
		t.Error("a tenant-bound import wrote outside its tenant")
	}
}

// TestImportLongLine: a line past MaxLine stops the import with an error
// that names it, without reading it whole into memory.
func TestImportLongLine(t *testing.T) {
	l, _, _ := newList(t)
	_, err := l.Import(strings.NewReader("ok@example.test\n"+strings.Repeat("x", MaxLine+10)+"\n"), "", SourceImport)
	if err == nil || !strings.Contains(err.Error(), "line 2") {
		t.Errorf("err %v", err)
	}
}

// TestEachPaging: listing with a cursor continues after the last entry
// listed, tenant by tenant.
func TestEachPaging(t *testing.T) {
	l, _, _ := newList(t)
	for i := range 5 {
		l.Add("acme", fmt.Sprintf("u%d@example.test", i), "", SourceAdmin)
	}
	l.Add("acmex", "x@example.test", "", SourceAdmin)
	var page []Entry
	l.Each(Filter{Tenant: "acme"}, func(e Entry) bool { page = append(page, e); return len(page) < 2 })
	var rest []string
	l.Each(Filter{Tenant: "acme", After: page[1].Cursor()}, func(e Entry) bool { rest = append(rest, e.Address); return true })
	if fmt.Sprint(rest) != "[u2@example.test u3@example.test u4@example.test]" {
		t.Errorf("second page %v", rest)
	}
}

// BenchmarkSuppressed is the RCPT path's lookup with 100,000 entries: an
// address not listed (the usual case) and one listed.
func BenchmarkSuppressed(b *testing.B) {
	l, _, sp := newList(b)
	for i := range 100000 {
		e := Entry{Tenant: "acme", Address: fmt.Sprintf("user%d@example.test", i), Source: SourceImport}
		sp.PutSuppression(makeKey(e.Tenant, e.Address), encodeValue(e), false)
	}
	if _, err := l.Load(); err != nil {
		b.Fatal(err)
	}
	b.Run("miss", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if l.Suppressed("acme", "someone.else@example.test") {
				b.Fatal("suppressed")
			}
		}
	})
	b.Run("hit", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if !l.Suppressed("acme", "user777@example.test") {
				b.Fatal("not suppressed")
			}
		}
	})
}

// TestConcurrent: lookups, adds and removes from many goroutines (run
// with -race) leave the list as the last writer of each address left it.
func TestConcurrent(t *testing.T) {
	l, _, _ := newList(t)
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 200 {
				a := fmt.Sprintf("u%d-%d@example.test", g, i)
				if err := l.Add("t", a, "", SourceBounce); err != nil {
					t.Error(err)
					return
				}
				if !l.Suppressed("t", a) {
					t.Errorf("%s not suppressed after Add", a)
				}
				if i%2 == 0 {
					l.Remove("t", a)
				}
				l.Suppressed("other", a)
			}
		})
	}
	wg.Wait()
	if l.Len() != 400 {
		t.Errorf("Len %d, want 400", l.Len())
	}
}

// BenchmarkImport imports 10,000 lines a run into one list (the entries
// renew after the first run), reporting lines per second.
func BenchmarkImport(b *testing.B) {
	l, _, _ := newList(b)
	var in bytes.Buffer
	for i := range 10000 {
		fmt.Fprintf(&in, "user%d@example.test,acme,imported\n", i)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := l.Import(bytes.NewReader(in.Bytes()), "", SourceImport); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(10000*b.N)/b.Elapsed().Seconds(), "lines/s")
}

// TestSplitCSV: the CSV of one line, as RFC 4180 quotes it.
func TestSplitCSV(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want string // fields joined by "|"; "ERR" for an error
	}{
		{"a@x.test", "a@x.test"},
		{"a@x.test,acme,why", "a@x.test|acme|why"},
		{" a@x.test , acme , why ", "a@x.test|acme|why"},
		{`a@x.test,,"why, with ""quotes"""`, `a@x.test||why, with "quotes"`},
		{`"a@x.test",acme`, "a@x.test|acme"},
		{"a@x.test,", "a@x.test|"},
		{`"unterminated,acme`, "ERR"},
		{`"a"b,acme`, "ERR"},
		{`a"b@x.test`, "ERR"},
	} {
		f, err := splitCSV(tc.in, nil)
		got := strings.Join(f, "|")
		if err != nil {
			got = "ERR"
		}
		if got != tc.want {
			t.Errorf("splitCSV(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
