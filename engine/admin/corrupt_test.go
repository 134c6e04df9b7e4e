package admin

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"gannet/internal/spooltest"
	"gannet/queue"
)

// TestInspectCorrupt: messages the spool quarantined — one whose index
// entry is garbage (found when the queue loads), one whose body record is
// damaged (found when delivery reads it) — are shown by inspect as
// "corrupt" with the kind, the reason and the raw size, counted and listed
// in the summary, and hidden from a tenant's key unless known to be its own.
func TestInspectCorrupt(t *testing.T) {
	dir := t.TempDir()
	sp, err := queue.Open(queue.Options{Dir: dir, Compression: "none", MinFreeBytes: -1})
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range []*queue.Message{
		{ID: "bad1", From: "app@src.test", Tenant: "acme", Recipients: []queue.Recipient{{Addr: "a@x.test"}}},
		{ID: "bad2", From: "app@src.test", Tenant: "acme", Recipients: []queue.Recipient{{Addr: "b@x.test"}, {Addr: "c@y.test"}}},
		{ID: "good", From: "app@src.test", Tenant: "acme", Recipients: []queue.Recipient{{Addr: "d@x.test"}}},
	} {
		m.Created = time.Now()
		if err := sp.Append(m, []byte("Subject: "+m.ID+"\r\n\r\nbody\r\n")); err != nil {
			t.Fatal(err)
		}
	}
	sp.Close()
	if err := spooltest.Damage(dir, []string{"bad1"}, []string{"bad2"}); err != nil {
		t.Fatal(err)
	}

	w := newWorldAt(t, dir)
	if _, err := w.loop.Load(w.spool, nil); err != nil {
		t.Fatalf("Load: %v", err)
	}
	waitUntil(t, func() bool { return w.spool.Stats().Quarantined == 2 })

	var in InspectMessageV1
	if code := w.call(t, "GET", PathInspectMessage+"?id=bad1", "", "", "", &in); code != 200 {
		t.Fatalf("inspect bad1: %d", code)
	}
	if in.ID != "bad1" || in.State != StateCorrupt || in.Corrupt == nil || in.Corrupt.Kind != "index" ||
		in.Corrupt.RawSize != int64(len(spooltest.GarbageIndexValue)) || !strings.Contains(in.Corrupt.Reason, "metadata") ||
		in.Corrupt.Quarantined.IsZero() || len(in.Message.Recipients) != 0 {
		t.Errorf("inspect bad1: %+v %+v", in, in.Corrupt)
	}
	in = InspectMessageV1{}
	if code := w.call(t, "GET", PathInspectMessage+"?id=bad2&want_body=true", "", "", "", &in); code != 200 {
		t.Fatalf("inspect bad2: %d", code)
	}
	if in.State != StateCorrupt || in.Corrupt == nil || in.Corrupt.Kind != "record" || in.Corrupt.RawSize < 20 ||
		!strings.Contains(in.Corrupt.Reason, "checksum") || in.Message.Sender != "app@src.test" || in.Message.Tenant != "acme" ||
		len(in.Message.Recipients) != 2 || in.Message.Recipients[1].Email != "c@y.test" || in.Message.Data != nil {
		t.Errorf("inspect bad2: %+v %+v", in, in.Corrupt)
	}
	in = InspectMessageV1{}
	if code := w.call(t, "GET", PathInspectMessage+"?id=good", "", "", "", &in); code != 200 || in.State != StateQueued || in.Corrupt != nil {
		t.Errorf("inspect good: %d %+v", code, in)
	}

	var s QueueSummaryV1
	w.call(t, "GET", PathQueueSummary, "", "", "", &s)
	if s.Totals.Corrupt != 2 || !reflect.DeepEqual(s.CorruptIDs, []string{"bad1", "bad2"}) || s.Totals.Messages != 1 {
		t.Errorf("summary: %d corrupt %v, %d messages; want bad1 and bad2, and good queued", s.Totals.Corrupt, s.CorruptIDs, s.Totals.Messages)
	}

	// A tenant's key: its own corrupt record, not an index entry of no known tenant.
	tenant := "192.0.2.9:5000"
	if code := w.call(t, "GET", PathInspectMessage+"?id=bad2", "", "key-acme", tenant, nil); code != 200 {
		t.Errorf("tenant inspects its corrupt message: %d", code)
	}
	if code := w.call(t, "GET", PathInspectMessage+"?id=bad1", "", "key-acme", tenant, nil); code != 404 {
		t.Errorf("tenant inspects a corrupt index entry: %d, want 404", code)
	}
	s = QueueSummaryV1{}
	w.call(t, "GET", PathQueueSummary, "", "key-acme", tenant, &s)
	if s.Totals.Corrupt != 0 || s.CorruptIDs != nil {
		t.Errorf("tenant summary shows the quarantine: %d %v", s.Totals.Corrupt, s.CorruptIDs)
	}
}
