package queue

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// RemoveLocated takes messages out as Remove does — gone from the index,
// their segments deleted once drained, the live count right — also for
// messages whose record Compact moved after the caller got its Message
// (the location it holds is stale), and for one quarantined meanwhile; the
// messages left are intact, in the spool and after a reopen.
func TestRemoveLocated(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, Options{Dir: dir, SegmentSize: 16 << 10, Compression: "none"})
	msgs := map[string]*Message{}
	var ids []string
	for i := range 40 {
		m := testMessage(fmt.Sprintf("l%02d", i), 1)
		if err := s.Append(m, testMail(uint64(i), 2000)); err != nil {
			t.Fatal(err)
		}
		msgs[m.ID] = m
		ids = append(ids, m.ID)
	}
	segs := len(segmentFiles(t, dir))
	// Three in four go the fast way; the fourth ones stay, and Compact moves
	// them out of their sparse segments.
	for i, id := range ids {
		if i%4 != 0 {
			if err := s.RemoveLocated(msgs[id]); err != nil {
				t.Fatal(err)
			}
		}
	}
	if st := s.Stats(); st.Live != 10 {
		t.Fatalf("%d live after removing 30 of 40", st.Live)
	}
	if n := len(segmentFiles(t, dir)); n != segs {
		t.Fatalf("segments %d → %d: one emptied although a quarter of each stays", segs, n)
	}
	if st, err := s.Compact(0.5); err != nil || st.Moved == 0 {
		t.Fatalf("compact: %+v %v", st, err)
	}
	// The callers' Messages still name the old segments.
	quarantined := msgs["l04"]
	if err := s.Quarantine(quarantined.ID); err == nil {
		t.Fatal("an intact message was quarantined")
	}
	got := scanAll(t, s)
	if len(got) != 10 {
		t.Fatalf("%d messages in the index, want 10", len(got))
	}
	for i, id := range ids {
		if i%4 != 0 {
			continue
		}
		if body, err := s.Body(msgs[id]); err != nil || !bytes.Equal(body, testMail(uint64(i), 2000)) {
			t.Fatalf("Body(%s) after compaction: %v", id, err)
		}
		if i >= 20 {
			if err := s.RemoveLocated(msgs[id]); err != nil {
				t.Fatal(err)
			}
		}
	}
	if st := s.Stats(); st.Live != 5 {
		t.Fatalf("%d live, want 5", st.Live)
	}
	s.Close()
	s = openTest(t, Options{Dir: dir})
	got = scanAll(t, s)
	if len(got) != 5 {
		t.Fatalf("after reopen %d messages, want 5", len(got))
	}
	for id, m := range got {
		var i int
		fmt.Sscanf(id, "l%02d", &i)
		if i%4 != 0 || i >= 20 {
			t.Errorf("%s came back", id)
		}
		if body, err := s.Body(m); err != nil || !bytes.Equal(body, testMail(uint64(i), 2000)) {
			t.Fatalf("Body(%s) after reopen: %v", id, err)
		}
	}
	// The rest, with the locations the scan gave, drains the spool.
	for _, m := range got {
		if err := s.RemoveLocated(m); err != nil {
			t.Fatal(err)
		}
	}
	if st := s.Stats(); st.Live != 0 || st.Segments > 1 {
		t.Fatalf("after removing all: %+v", st)
	}
}

// A message quarantined (its record corrupt) while the delivery loop still
// held it: its RemoveLocated counts nothing out again, so the neighbours in
// its segment keep their segment and their bodies.
func TestRemoveLocatedAfterQuarantine(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, Options{Dir: dir})
	a, b := testMessage("a", 1), testMessage("b", 1)
	if err := s.Append(a, testMail(1, 3000)); err != nil {
		t.Fatal(err)
	}
	if err := s.Append(b, testMail(2, 3000)); err != nil {
		t.Fatal(err)
	}
	s.Close()
	seg := filepath.Join(dir, "segments", segmentName(a.Segment))
	data, err := os.ReadFile(seg)
	if err != nil {
		t.Fatal(err)
	}
	data[a.Offset+a.Length/2] ^= 0x40
	if err := os.WriteFile(seg, data, 0o644); err != nil {
		t.Fatal(err)
	}
	s = openTest(t, Options{Dir: dir})
	all := scanAll(t, s)
	if err := s.Quarantine("a"); err != nil {
		t.Fatal(err)
	}
	if err := s.RemoveLocated(all["a"]); err != nil {
		t.Fatal(err)
	}
	if st := s.Stats(); st.Live != 1 {
		t.Errorf("%d live, want 1 (b)", st.Live)
	}
	if body, err := s.Body(all["b"]); err != nil || !bytes.Equal(body, testMail(2, 3000)) {
		t.Fatalf("Body of the neighbour: %v", err)
	}
}
