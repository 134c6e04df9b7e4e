package queue

import (
	"bytes"
	"fmt"
	"sync"
	"testing"
)

func TestCompactMovesLiveRecordsAndFreesSegments(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, Options{Dir: dir, SegmentSize: 16 << 10, Compression: "none"})
	var keep []*Message
	for i := range 40 {
		m := testMessage(fmt.Sprintf("c%02d", i), 1)
		if err := s.Append(m, testMail(uint64(i), 2000)); err != nil {
			t.Fatal(err)
		}
		if i%4 == 0 {
			keep = append(keep, m)
		}
	}
	for i := range 40 {
		if i%4 != 0 {
			if err := s.Remove(fmt.Sprintf("c%02d", i)); err != nil {
				t.Fatal(err)
			}
		}
	}
	before := segmentFiles(t, dir)
	st, err := s.Compact(0.5)
	if err != nil {
		t.Fatal(err)
	}
	after := segmentFiles(t, dir)
	t.Logf("compact: %+v; segments %d → %d", st, len(before), len(after))
	if st.Moved == 0 || st.Segments == 0 || len(after) >= len(before) {
		t.Fatalf("compaction did nothing: %+v, %d → %d segments", st, len(before), len(after))
	}
	// The callers' copies still carry the old locations: Body follows the
	// index to the moved records.
	for _, m := range keep {
		var i int
		fmt.Sscanf(m.ID, "c%02d", &i)
		body, err := s.Body(m)
		if err != nil || !bytes.Equal(body, testMail(uint64(i), 2000)) {
			t.Fatalf("Body(%s) after compaction: %v", m.ID, err)
		}
	}
	// Update keeps the new location, whatever m says.
	m := keep[0]
	m.Attempts = 2
	if err := s.Update(m); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s = openTest(t, Options{Dir: dir})
	got := scanAll(t, s)
	if len(got) != len(keep) || got[m.ID].Attempts != 2 {
		t.Fatalf("after reopen: %d messages, attempts %d", len(got), got[m.ID].Attempts)
	}
	for id, m := range got {
		var i int
		fmt.Sscanf(id, "c%02d", &i)
		if body, err := s.Body(m); err != nil || !bytes.Equal(body, testMail(uint64(i), 2000)) {
			t.Fatalf("Body(%s) after reopen: %v", id, err)
		}
	}
	if left := segmentFiles(t, dir); len(left) > len(after) {
		t.Fatalf("reopen left %d segments, compaction had %d", len(left), len(after))
	}
}

// TestCompactConcurrent runs compaction while other goroutines append,
// update and remove: nothing acknowledged is lost, nothing removed comes back.
func TestCompactConcurrent(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, Options{Dir: dir, SegmentSize: 16 << 10, Compression: "s2"})
	const n = 400
	for i := range n {
		if err := s.Append(testMessage(fmt.Sprintf("k%03d", i), 1), testMail(uint64(i), 1500)); err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	removed := make(map[string]bool)
	var mu sync.Mutex
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += 4 {
				id := fmt.Sprintf("k%03d", i)
				switch i % 3 {
				case 0:
					if err := s.Remove(id); err != nil {
						t.Error(err)
					}
					mu.Lock()
					removed[id] = true
					mu.Unlock()
				case 1:
					m := testMessage(id, 1)
					m.Attempts = 7
					if err := s.Update(m); err != nil {
						t.Error(err)
					}
				}
				if i%50 == 0 {
					if err := s.Append(testMessage(fmt.Sprintf("n%03d", i), 1), testMail(uint64(i), 1500)); err != nil {
						t.Error(err)
					}
				}
			}
		}()
	}
	for range 5 {
		if _, err := s.Compact(0.9); err != nil {
			t.Fatal(err)
		}
	}
	wg.Wait()
	if _, err := s.Compact(0.9); err != nil {
		t.Fatal(err)
	}
	got := scanAll(t, s)
	for i := range n {
		id := fmt.Sprintf("k%03d", i)
		m := got[id]
		if removed[id] {
			if m != nil {
				t.Fatalf("%s came back after Remove", id)
			}
			continue
		}
		if m == nil {
			t.Fatalf("%s lost", id)
		}
		if i%3 == 1 && m.Attempts != 7 {
			t.Fatalf("%s lost its update", id)
		}
		body, err := s.Body(m)
		if err != nil || !bytes.Equal(body, testMail(uint64(i), 1500)) {
			t.Fatalf("Body(%s): %v", id, err)
		}
	}
}
