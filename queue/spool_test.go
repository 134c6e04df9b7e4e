package queue

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"gannet/queue/queuetest"
)

func openTest(t testing.TB, opts Options) *Spool {
	t.Helper()
	if opts.Dir == "" {
		opts.Dir = t.TempDir()
	}
	s, err := Open(opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func scanAll(t testing.TB, s *Spool) map[string]*Message {
	t.Helper()
	got := map[string]*Message{}
	if err := s.Scan(func(m *Message) error { got[m.ID] = m; return nil }); err != nil {
		t.Fatalf("Scan: %v", err)
	}
	return got
}

func segmentFiles(t testing.TB, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(filepath.Join(dir, "segments"))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}

func TestAppendBodyAllCompressions(t *testing.T) {
	for _, comp := range []string{"zstd", "s2", "none"} {
		t.Run(comp, func(t *testing.T) {
			dir := t.TempDir()
			s := openTest(t, Options{Dir: dir, Compression: comp})
			bodies := map[string][]byte{}
			for i := range 22 {
				id := fmt.Sprintf("m%03d", i)
				body := testMail(uint64(i), 500+i*997)
				switch i { // the large bodies codecFor may store as they are
				case 20:
					body = testMail(uint64(i), 100<<10)
				case 21:
					body = testAttachmentMail(uint64(i), 100<<10)
				}
				m := testMessage(id, 2)
				if err := s.Append(m, body); err != nil {
					t.Fatalf("Append: %v", err)
				}
				if m.Segment == 0 || m.Length == 0 || m.Size != len(body) {
					t.Fatalf("Append left location %d/%d/%d size %d", m.Segment, m.Offset, m.Length, m.Size)
				}
				got, err := s.Body(m)
				if err != nil || !bytes.Equal(got, body) {
					t.Fatalf("Body right after Append: %v (equal %v)", err, bytes.Equal(got, body))
				}
				bodies[id] = body
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			// Bodies written with this codec read back with a spool whose
			// current codec is another one.
			s2 := openTest(t, Options{Dir: dir, Compression: "none"})
			msgs := scanAll(t, s2)
			if len(msgs) != len(bodies) {
				t.Fatalf("Scan after reopen: %d messages, want %d", len(msgs), len(bodies))
			}
			for id, body := range bodies {
				got, err := s2.Body(msgs[id])
				if err != nil || !bytes.Equal(got, body) {
					t.Fatalf("Body(%s) after reopen: %v", id, err)
				}
			}
		})
	}
}

func TestScanAfterReopenKeepsStates(t *testing.T) {
	dir := t.TempDir()
	clock := time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)
	s := openTest(t, Options{Dir: dir})
	m := testMessage("abc", 3)
	m.Created = clock
	m.NextDue = clock
	m.RequireTLS = true
	if err := s.Append(m, testMail(1, 2000)); err != nil {
		t.Fatal(err)
	}
	m.Attempts = 1
	m.NextDue = clock.Add(5 * time.Minute)
	m.Recipients[0].State, m.Recipients[0].Attempts, m.Recipients[0].LastReply = Delivered, 1, "250 2.0.0 ok"
	m.Recipients[1].State, m.Recipients[1].Attempts, m.Recipients[1].LastReply = Pending, 1, "451 4.7.1 try later"
	m.Recipients[2].State, m.Recipients[2].Attempts, m.Recipients[2].LastReply = Bounced, 1, "550 5.1.1 unknown"
	if err := s.Update(m); err != nil {
		t.Fatalf("Update: %v", err)
	}
	s.Close()

	s = openTest(t, Options{Dir: dir})
	got := scanAll(t, s)["abc"]
	if got == nil {
		t.Fatal("message missing after reopen")
	}
	if got.Attempts != 1 || !got.NextDue.Equal(m.NextDue) || !got.Created.Equal(clock) ||
		got.Tenant != "acme" || got.Campaign != "spring" || got.Priority != 1 || got.From != m.From || !got.RequireTLS {
		t.Fatalf("metadata after reopen: %+v", got)
	}
	for i, r := range got.Recipients {
		if r != m.Recipients[i] {
			t.Errorf("recipient %d = %+v, want %+v", i, r, m.Recipients[i])
		}
	}
	if body, err := s.Body(got); err != nil || !bytes.Equal(body, testMail(1, 2000)) {
		t.Fatalf("Body after reopen: %v", err)
	}
}

func TestUpdateAndBodyOfUnknownMessage(t *testing.T) {
	s := openTest(t, Options{})
	m := testMessage("gone", 1)
	if err := s.Update(m); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Update of unknown id: %v, want ErrNotFound", err)
	}
	if err := s.Append(m, []byte("hi\r\n")); err != nil {
		t.Fatal(err)
	}
	if err := s.Remove("gone"); err != nil {
		t.Fatal(err)
	}
	if err := s.Update(m); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Update after Remove: %v, want ErrNotFound", err)
	}
	if len(scanAll(t, s)) != 0 {
		t.Fatal("Update after Remove resurrected the message")
	}
	if err := s.Remove("gone"); err != nil {
		t.Fatalf("second Remove: %v", err)
	}
}

func TestAppendRejectsBadID(t *testing.T) {
	s := openTest(t, Options{})
	if err := s.Append(&Message{}, nil); err == nil {
		t.Error("empty id accepted")
	}
	if err := s.Append(&Message{ID: string(make([]byte, MaxIDLen+1))}, nil); err == nil {
		t.Error("over-long id accepted")
	}
}

func TestRemoveFreesSegments(t *testing.T) {
	dir := t.TempDir()
	// Small segments: every few messages start a new file.
	s := openTest(t, Options{Dir: dir, SegmentSize: 8 << 10, Compression: "none"})
	var ids []string
	for i := range 30 {
		m := testMessage(fmt.Sprintf("r%02d", i), 1)
		if err := s.Append(m, testMail(uint64(i), 2000)); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, m.ID)
	}
	before := segmentFiles(t, dir)
	if len(before) < 5 {
		t.Fatalf("only %d segments for 60 KB in 8 KB segments", len(before))
	}
	for _, id := range ids {
		if err := s.Remove(id); err != nil {
			t.Fatal(err)
		}
	}
	after := segmentFiles(t, dir)
	// Only the segment being appended to may remain.
	if len(after) > 1 {
		t.Fatalf("after removing everything %d segments remain: %v", len(after), after)
	}
	// (The committer may drop the drained current segment at any moment,
	// so Segments is compared with the bound, not with the listing.)
	if st := s.Stats(); st.Live != 0 || st.Segments > 1 {
		t.Fatalf("Stats after removing all: %+v", st)
	}
	s.Close()
	// The next Open drops the last, empty one too.
	s = openTest(t, Options{Dir: dir})
	if left := segmentFiles(t, dir); len(left) != 0 {
		t.Fatalf("after reopen segments remain: %v", left)
	}
	if err := s.Append(testMessage("new", 1), []byte("x\r\n")); err != nil {
		t.Fatal(err)
	}
}

func TestRemovePartialKeepsSegment(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, Options{Dir: dir, SegmentSize: 8 << 10, Compression: "none"})
	var msgs []*Message
	for i := range 12 {
		m := testMessage(fmt.Sprintf("p%02d", i), 1)
		if err := s.Append(m, testMail(uint64(i), 2000)); err != nil {
			t.Fatal(err)
		}
		msgs = append(msgs, m)
	}
	// Remove every other message: no segment may lose a live body.
	for i := 0; i < len(msgs); i += 2 {
		if err := s.Remove(msgs[i].ID); err != nil {
			t.Fatal(err)
		}
	}
	for i := 1; i < len(msgs); i += 2 {
		body, err := s.Body(msgs[i])
		if err != nil || !bytes.Equal(body, testMail(uint64(i), 2000)) {
			t.Fatalf("Body(%s) after removing its neighbours: %v", msgs[i].ID, err)
		}
	}
}

// TestTornLastRecord cuts the last segment in the middle of its last record,
// as a crash between the index sync and the segment sync of the last group
// commit would (no "250" went out for it): the earlier records read fine,
// the torn one's index entry is dropped at Open — not reported corrupt, not
// quarantined — and the spool keeps working, never appending after the
// torn tail.
func TestTornLastRecord(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, Options{Dir: dir})
	var msgs []*Message
	for i := range 5 {
		m := testMessage(fmt.Sprintf("t%d", i), 1)
		if err := s.Append(m, testMail(uint64(i), 4000)); err != nil {
			t.Fatal(err)
		}
		msgs = append(msgs, m)
	}
	s.Close()
	last := msgs[len(msgs)-1]
	seg := filepath.Join(dir, "segments", segmentName(last.Segment))
	if err := os.Truncate(seg, last.Offset+last.Length/2); err != nil {
		t.Fatal(err)
	}

	s = openTest(t, Options{Dir: dir})
	all := scanAll(t, s)
	for i, m := range msgs[:len(msgs)-1] {
		body, err := s.Body(all[m.ID])
		if err != nil || !bytes.Equal(body, testMail(uint64(i), 4000)) {
			t.Fatalf("Body(%s) before the torn record: %v", m.ID, err)
		}
	}
	if all[last.ID] != nil {
		t.Fatalf("the torn record's entry is still in the index")
	}
	if st := s.Stats(); st.DroppedAtOpen != 1 || st.Quarantined != 0 || st.Live != 4 {
		t.Fatalf("stats after Open: %+v, want 1 dropped, none quarantined, 4 live", st)
	}
	m := testMessage("after", 1)
	if err := s.Append(m, []byte("still works\r\n")); err != nil {
		t.Fatalf("Append after torn record: %v", err)
	}
	if body, err := s.Body(m); err != nil || string(body) != "still works\r\n" {
		t.Fatalf("Body after torn record: %q, %v", body, err)
	}
	if m.Segment == last.Segment {
		t.Fatal("appended after a possibly torn tail instead of a new segment")
	}
}

func TestFlippedByteIsCorrupt(t *testing.T) {
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
	if _, err := s.Body(all["a"]); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Body of damaged record: %v, want ErrCorrupt", err)
	}
	if body, err := s.Body(all["b"]); err != nil || !bytes.Equal(body, testMail(2, 3000)) {
		t.Fatalf("Body of intact neighbour: %v", err)
	}
}

func TestFsyncFailure(t *testing.T) {
	dir := t.TempDir()
	ffs := queuetest.NewFaultFS(nil)
	s := openTest(t, Options{Dir: dir, FS: ffs})
	if err := s.Append(testMessage("ok1", 1), []byte("one\r\n")); err != nil {
		t.Fatal(err)
	}
	ffs.FailSyncs(syscall.EIO, 1)
	err := s.Append(testMessage("bad", 1), []byte("two\r\n"))
	if err == nil {
		t.Fatal("Append succeeded although its fsync failed")
	}
	if errors.Is(err, ErrNoSpace) {
		t.Fatalf("EIO reported as disk full: %v", err)
	}
	if h := s.Healthy(); h == nil {
		t.Fatal("Healthy() = nil right after a failed commit")
	}
	if _, ok := scanAll(t, s)["bad"]; ok {
		t.Fatal("message whose fsync failed is in the index")
	}
	// The spool recovers: a fresh segment takes the next message.
	m := testMessage("ok2", 1)
	if err := s.Append(m, []byte("three\r\n")); err != nil {
		t.Fatalf("Append after fsync failure: %v", err)
	}
	if h := s.Healthy(); h != nil {
		t.Fatalf("Healthy() after a good commit: %v", h)
	}
	s.Close()
	s = openTest(t, Options{Dir: dir})
	got := scanAll(t, s)
	if len(got) != 2 || got["ok1"] == nil || got["ok2"] == nil {
		t.Fatalf("after reopen: %v", got)
	}
	for id, want := range map[string]string{"ok1": "one\r\n", "ok2": "three\r\n"} {
		if body, err := s.Body(got[id]); err != nil || string(body) != want {
			t.Fatalf("Body(%s) = %q, %v", id, body, err)
		}
	}
}

func TestDiskFull(t *testing.T) {
	dir := t.TempDir()
	ffs := queuetest.NewFaultFS(nil)
	s := openTest(t, Options{Dir: dir, FS: ffs})
	if err := s.Append(testMessage("before", 1), []byte("x\r\n")); err != nil {
		t.Fatal(err)
	}
	ffs.FailWrites(syscall.ENOSPC, -1)
	err := s.Append(testMessage("full", 1), testMail(1, 1000))
	if !errors.Is(err, ErrNoSpace) {
		t.Fatalf("Append on a full disk: %v, want ErrNoSpace", err)
	}
	if code, enh := ReplyCode(err); code != 452 || enh != "4.3.1" {
		t.Fatalf("ReplyCode = %d %s, want 452 4.3.1", code, enh)
	}
	if h := s.Healthy(); !errors.Is(h, ErrNoSpace) {
		t.Fatalf("Healthy() = %v, want ErrNoSpace", h)
	}
	ffs.FailWrites(nil, 0)
	if err := s.Append(testMessage("after", 1), []byte("y\r\n")); err != nil {
		t.Fatalf("Append once space is back: %v", err)
	}
	got := scanAll(t, s)
	if got["full"] != nil || got["before"] == nil || got["after"] == nil {
		t.Fatalf("index after disk full: %v", got)
	}
}

func TestShortWrite(t *testing.T) {
	ffs := queuetest.NewFaultFS(nil)
	s := openTest(t, Options{FS: ffs})
	ffs.ShortWrites(1)
	if err := s.Append(testMessage("short", 1), testMail(1, 3000)); err == nil {
		t.Fatal("Append succeeded after a short write")
	}
	m := testMessage("next", 1)
	if err := s.Append(m, testMail(2, 3000)); err != nil {
		t.Fatal(err)
	}
	if body, err := s.Body(m); err != nil || !bytes.Equal(body, testMail(2, 3000)) {
		t.Fatalf("Body after short write: %v", err)
	}
	if got := scanAll(t, s); len(got) != 1 {
		t.Fatalf("index holds %d messages, want 1", len(got))
	}
}

func TestLowFreeSpaceRefuses(t *testing.T) {
	ffs := queuetest.NewFaultFS(nil)
	now := time.Unix(1772445600, 0)
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	s := openTest(t, Options{FS: ffs, Now: clock, MinFreeBytes: 1 << 20})
	ffs.SetFreeBytes(512 << 10)
	if err := s.Append(testMessage("a", 1), []byte("x\r\n")); !errors.Is(err, ErrNoSpace) {
		t.Fatalf("Append with 512 KiB free: %v, want ErrNoSpace", err)
	}
	if err := s.Healthy(); !errors.Is(err, ErrNoSpace) {
		t.Fatalf("Healthy: %v", err)
	}
	ffs.SetFreeBytes(1 << 30)
	mu.Lock()
	now = now.Add(2 * time.Second)
	mu.Unlock()
	if err := s.Append(testMessage("a", 1), []byte("x\r\n")); err != nil {
		t.Fatalf("Append with space back: %v", err)
	}
	if err := s.Healthy(); err != nil {
		t.Fatalf("Healthy: %v", err)
	}
}

func TestConcurrentAppendersAllDurable(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, Options{Dir: dir, SegmentSize: 256 << 10})
	const writers, each = 64, 20
	var wg sync.WaitGroup
	errs := make(chan error, writers*each)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				id := fmt.Sprintf("w%02d-%02d", w, i)
				if err := s.Append(testMessage(id, 1), testMail(uint64(w*1000+i), 1500)); err != nil {
					errs <- err
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	st := s.Stats()
	if st.Appends != writers*each {
		t.Fatalf("Stats.Appends = %d", st.Appends)
	}
	if st.SegmentSyncs >= st.Appends {
		t.Errorf("%d segment fsyncs for %d appends: no group commit", st.SegmentSyncs, st.Appends)
	}
	t.Logf("%d appends, %d groups, %d segment fsyncs", st.Appends, st.Groups, st.SegmentSyncs)
	s.Close()
	s = openTest(t, Options{Dir: dir})
	got := scanAll(t, s)
	if len(got) != writers*each {
		t.Fatalf("after reopen %d messages, want %d", len(got), writers*each)
	}
	for w := range writers {
		for i := range each {
			id := fmt.Sprintf("w%02d-%02d", w, i)
			body, err := s.Body(got[id])
			if err != nil || !bytes.Equal(body, testMail(uint64(w*1000+i), 1500)) {
				t.Fatalf("Body(%s): %v", id, err)
			}
		}
	}
}

// copyDir copies src to dst file by file, in name order, while the source
// may be changing — a crude crash image.
func copyDir(t *testing.T, src, dst string) {
	t.Helper()
	err := filepath.WalkDir(src, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			if os.IsNotExist(err) {
				return nil // deleted while we walk
			}
			return err
		}
		rel, _ := filepath.Rel(src, path)
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		in, err := os.Open(path)
		if os.IsNotExist(err) {
			return nil
		}
		if err != nil {
			return err
		}
		defer in.Close()
		out, err := os.Create(target)
		if err != nil {
			return err
		}
		_, err = io.Copy(out, in)
		if cerr := out.Close(); err == nil {
			err = cerr
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestCrashImageWhileWriting copies the spool directory while 16 writers
// keep appending, then opens the copy: every message acknowledged before the
// copy began is there with an intact body, and nothing in the copy's index
// points to a missing or torn record. The index is copied before the
// segments, as a crash would freeze them: anything the copied index holds
// was fsynced to its segment before the index entry was written.
func TestCrashImageWhileWriting(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, Options{Dir: dir, SegmentSize: 64 << 10})
	var mu sync.Mutex
	acked := map[string]uint64{}
	stop := make(chan struct{})
	// Removes pause while the image is taken: a remove between copying the
	// index and copying the segments would delete a segment the copied
	// index still points to, which no real crash can produce.
	var removing sync.RWMutex
	var wg sync.WaitGroup
	for w := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 2000; i++ {
				select {
				case <-stop:
					return
				default:
				}
				id := fmt.Sprintf("c%02d-%04d", w, i)
				seed := uint64(w<<16 | i)
				if err := s.Append(testMessage(id, 1), testMail(seed, 800)); err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				acked[id] = seed
				mu.Unlock()
				if i%3 == 0 { // keep segments churning
					removing.RLock()
					s.Remove(fmt.Sprintf("c%02d-%04d", w, i-3))
					removing.RUnlock()
				}
			}
		}()
	}
	// Let the writers get going: at least 300 acknowledgements (bounded).
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		mu.Lock()
		n := len(acked)
		mu.Unlock()
		if n >= 300 {
			break
		}
	}
	mu.Lock()
	before := make(map[string]uint64, len(acked))
	for id, seed := range acked {
		before[id] = seed
	}
	mu.Unlock()
	img := t.TempDir()
	removing.Lock()
	copyDir(t, filepath.Join(dir, "index"), filepath.Join(img, "index"))
	copyDir(t, filepath.Join(dir, "segments"), filepath.Join(img, "segments"))
	removing.Unlock()
	close(stop)
	wg.Wait()
	if len(before) == 0 {
		t.Fatal("no message acknowledged before the copy")
	}

	c := openTest(t, Options{Dir: img})
	got := scanAll(t, c)
	checked := 0
	for id, m := range got {
		var w, i int
		fmt.Sscanf(id, "c%02d-%04d", &w, &i)
		body, err := c.Body(m)
		if err != nil {
			t.Fatalf("Body(%s) in crash image: %v", id, err)
		}
		if !bytes.Equal(body, testMail(uint64(w<<16|i), 800)) {
			t.Fatalf("Body(%s) differs in crash image", id)
		}
		checked++
	}
	// A message acknowledged before the copy is missing only if it was
	// removed (by its writer) before the index was copied.
	var missing []string
	for id := range before {
		if got[id] == nil {
			var w, i int
			fmt.Sscanf(id, "c%02d-%04d", &w, &i)
			if i%3 != 0 || i+3 >= 2000 { // never removed by the test
				missing = append(missing, id)
			}
		}
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		t.Fatalf("%d acknowledged messages lost, e.g. %v", len(missing), missing[:min(5, len(missing))])
	}
	t.Logf("crash image: %d acknowledged before copy, %d in image, all bodies intact", len(before), checked)
	// The copy is a working spool.
	if err := c.Append(testMessage("post-crash", 1), []byte("ok\r\n")); err != nil {
		t.Fatal(err)
	}
}

// TestOutcomesDurableWithoutAppends: delivery outcomes (Remove, Update)
// written while no mail arrives are made durable by the committer on its
// own, not left in Pebble's buffer for the next append: a crash image taken
// once the committer has synced them (no Close) has every removed message
// gone and every update in place. Before, with no synced write after them,
// the image still held all 200 removed messages (a SIGKILL there delivers
// them all again).
func TestOutcomesDurableWithoutAppends(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, Options{Dir: dir})
	for i := range 300 {
		if err := s.Append(testMessage(fmt.Sprintf("o%03d", i), 1), testMail(uint64(i), 500)); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < 300; i += 3 {
		m := testMessage(fmt.Sprintf("o%03d", i), 1)
		m.Attempts = 7
		m.Recipients[0].State = Delivered
		if err := s.Update(m); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 300 {
		if i%3 != 0 {
			if err := s.Remove(fmt.Sprintf("o%03d", i)); err != nil {
				t.Fatal(err)
			}
		}
	}
	waitOutcomesSynced(t, s)
	if st := s.Stats(); st.OutcomeSyncs == 0 || st.OutcomeSyncs > 300 {
		t.Errorf("%d outcome syncs for 300 outcomes, want 1 to 300", st.OutcomeSyncs)
	}
	img := t.TempDir()
	copyDir(t, filepath.Join(dir, "index"), filepath.Join(img, "index"))
	copyDir(t, filepath.Join(dir, "segments"), filepath.Join(img, "segments"))
	got := scanAll(t, openTest(t, Options{Dir: img}))
	if len(got) != 100 {
		t.Fatalf("crash image holds %d messages, want the 100 updated ones", len(got))
	}
	for id, m := range got {
		if m.Attempts != 7 || m.Recipients[0].State != Delivered {
			t.Fatalf("%s in crash image: attempts %d, state %v; want the update", id, m.Attempts, m.Recipients[0].State)
		}
	}
}

// waitOutcomesSynced waits until the committer has synced every delivery
// outcome written so far (bounded: 10 s).
func waitOutcomesSynced(t *testing.T, s *Spool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); s.syncedOutcomes.Load() < s.outcomes.Load(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("outcomes synced %d of %d", s.syncedOutcomes.Load(), s.outcomes.Load())
		}
	}
}

func TestClosedSpool(t *testing.T) {
	s := openTest(t, Options{})
	m := testMessage("x", 1)
	if err := s.Append(m, []byte("x")); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Append(testMessage("y", 1), nil); !errors.Is(err, ErrClosed) {
		t.Errorf("Append after Close: %v", err)
	}
	if _, err := s.Body(m); !errors.Is(err, ErrClosed) {
		t.Errorf("Body after Close: %v", err)
	}
	if err := s.Update(m); !errors.Is(err, ErrClosed) {
		t.Errorf("Update after Close: %v", err)
	}
	if err := s.Remove("x"); !errors.Is(err, ErrClosed) {
		t.Errorf("Remove after Close: %v", err)
	}
	if err := s.Healthy(); !errors.Is(err, ErrClosed) {
		t.Errorf("Healthy after Close: %v", err)
	}
}

// TestScanReused: ScanReused passes the same metadata as Scan, through one
// Message whose strings stay valid after the scan.
func TestScanReused(t *testing.T) {
	s := openTest(t, Options{})
	want := map[string]*Message{}
	for i, n := range []int{3, 1, 5, 2} {
		m := testMessage(fmt.Sprintf("r%d", i), n)
		m.Recipients[0].LastReply = "451 4.7.1 later"
		if err := s.Append(m, []byte("x\r\n")); err != nil {
			t.Fatal(err)
		}
		want[m.ID] = m
	}
	type kept struct {
		ptr   *Message
		addrs []string
	}
	got := map[string]kept{}
	err := s.ScanReused(func(m *Message) error {
		k := kept{ptr: m}
		for _, r := range m.Recipients {
			k.addrs = append(k.addrs, r.Addr)
		}
		w := want[m.ID]
		if w == nil || m.From != w.From || m.Tenant != w.Tenant || len(m.Recipients) != len(w.Recipients) ||
			m.Recipients[0].LastReply != "451 4.7.1 later" || m.Segment == 0 {
			t.Errorf("scanned %+v, want %+v", m, w)
		}
		got[m.ID] = k
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Fatalf("scanned %d messages, want %d", len(got), len(want))
	}
	var first *Message
	for id, k := range got {
		if first == nil {
			first = k.ptr
		} else if k.ptr != first {
			t.Error("ScanReused passed different Messages")
		}
		for i, a := range k.addrs {
			if a != want[id].Recipients[i].Addr {
				t.Errorf("%s: kept address %q, want %q", id, a, want[id].Recipients[i].Addr)
			}
		}
	}
}

// TestSpoolLocked: a second Open of a spool another Spool (or process)
// holds fails with ErrLocked and the holder's pid, instead of Pebble's
// "resource temporarily unavailable"; once the first is closed, it opens.
func TestSpoolLocked(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	_, err = Open(Options{Dir: dir})
	if !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), fmt.Sprintf("(pid %d)", os.Getpid())) {
		t.Fatalf("second Open: %v, want ErrLocked naming pid %d", err, os.Getpid())
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s2, err := Open(Options{Dir: dir})
	if err != nil {
		t.Fatalf("Open after Close: %v", err)
	}
	s2.Close()
}
