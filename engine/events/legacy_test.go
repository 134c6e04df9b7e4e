package events

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"gannet/engine/logrec"
)

// TestLegacyJournalShipped: a spool with an earlier version's journal
// (events/hooks/: 10 records, the cursor at 3) is shipped after the
// upgrade: the 7 records not done first, then the new ones, each once;
// the old directory is removed; another sink gets the new records only.
func TestLegacyJournalShipped(t *testing.T) {
	rcv := startReceiver(t, testSecret)
	dir := t.TempDir()
	old := filepath.Join(dir, "hooks")
	if err := os.MkdirAll(old, 0o755); err != nil {
		t.Fatal(err)
	}
	var seg []byte
	var uuids []string
	for i := range 10 {
		r := record(i, logrec.Delivery, "acme")
		r.UUID = fmt.Sprintf("00000000-0000-4000-8000-%012d", i)
		seg = appendLine(seg, r, r.AppendJSON(nil))
		uuids = append(uuids, r.UUID)
	}
	if err := os.WriteFile(filepath.Join(old, "0000000000000000.seg"), seg, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(old, "cursor"), encodeCursor(3, 0), 0o644); err != nil {
		t.Fatal(err)
	}
	c := new(counter)
	other := hookSink(rcv.url+"other", true)
	other.Name = "other"
	s := newTestShipper(t, dir, c, hookSink(rcv.url, true), other)
	defer s.Close()
	for i := 10; i < 15; i++ {
		r := record(i, logrec.Delivery, "acme")
		s.Add(r)
		uuids = append(uuids, r.UUID)
	}
	waitFor(t, 20*time.Second, "the old journal's records and the new ones", func() (bool, string) {
		m := rcv.missing(uuids[3:])
		return len(m) == 0 && c.get("hooks", ResultOK) >= 12 && c.get("other", ResultOK) >= 5, fmt.Sprintf("%d missing; %s", len(m), c)
	})
	waitFor(t, 5*time.Second, "the old journal removed", func() (bool, string) {
		_, err := os.Stat(old)
		return os.IsNotExist(err), fmt.Sprint(err)
	})
	byUUID, _, _, badSig, _ := rcv.snapshot()
	for i, u := range uuids {
		want := 2 // both sinks
		switch {
		case i < 3:
			want = 0 // done before the upgrade
		case i < 10:
			want = 1 // the old journal was the hooks sink's
		}
		if byUUID[u] != want {
			t.Errorf("record %d taken %d times, want %d", i, byUUID[u], want)
		}
	}
	if badSig != 0 || c.get("hooks", ResultOK) != 12 || c.get("other", ResultOK) != 5 {
		t.Errorf("%d bad signatures; counted %s", badSig, c)
	}
}
