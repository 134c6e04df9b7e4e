package queue

import (
	"errors"
	"fmt"
	"sync"
	"syscall"
	"testing"
	"time"

	"gannet/queue/queuetest"
)

// testClock is a settable clock for Options.Now.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *testClock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// TestHealthRecoversAfterCommitFailure: a failed commit makes Healthy
// refuse for HealthRetry only; then new mail is let in as a probe, and a
// good commit clears the failure — acceptance resumes by itself.
func TestHealthRecoversAfterCommitFailure(t *testing.T) {
	ffs := queuetest.NewFaultFS(nil)
	clock := &testClock{t: time.Unix(1772445600, 0)}
	s := openTest(t, Options{FS: ffs, Now: clock.Now, HealthRetry: 3 * time.Second})
	ffs.FailWrites(syscall.ENOSPC, -1)
	if err := s.Append(testMessage("a", 1), []byte("x\r\n")); !errors.Is(err, ErrNoSpace) {
		t.Fatalf("Append on a full disk: %v", err)
	}
	if err := s.Healthy(); !errors.Is(err, ErrNoSpace) {
		t.Fatalf("Healthy right after ENOSPC: %v, want ErrNoSpace", err)
	}
	clock.Add(time.Second)
	if err := s.Healthy(); !errors.Is(err, ErrNoSpace) {
		t.Fatalf("Healthy 1s after ENOSPC: %v, want ErrNoSpace", err)
	}
	// The retry time passes while the disk is still full: the probe fails
	// and renews the error.
	clock.Add(3 * time.Second)
	if err := s.Healthy(); err != nil {
		t.Fatalf("Healthy after HealthRetry: %v, want nil (probe)", err)
	}
	if err := s.Append(testMessage("b", 1), []byte("x\r\n")); !errors.Is(err, ErrNoSpace) {
		t.Fatalf("probe on a full disk: %v", err)
	}
	if err := s.Healthy(); !errors.Is(err, ErrNoSpace) {
		t.Fatalf("Healthy after a failed probe: %v, want ErrNoSpace", err)
	}
	// Space comes back: the next probe succeeds and clears the error.
	ffs.FailWrites(nil, 0)
	clock.Add(3 * time.Second)
	if err := s.Append(testMessage("c", 1), []byte("x\r\n")); err != nil {
		t.Fatalf("Append with space back: %v", err)
	}
	if err := s.Healthy(); err != nil {
		t.Fatalf("Healthy after a good commit: %v", err)
	}
	if got := scanAll(t, s); len(got) != 1 || got["c"] == nil {
		t.Fatalf("index holds %v, want only c", got)
	}
}

// TestHealthyFollowsFreeSpace: below MinFreeBytes Healthy and Append refuse;
// once space comes back (checked again at most once a second) both accept,
// with nothing else happening in between.
func TestHealthyFollowsFreeSpace(t *testing.T) {
	ffs := queuetest.NewFaultFS(nil)
	clock := &testClock{t: time.Unix(1772445600, 0)}
	s := openTest(t, Options{FS: ffs, Now: clock.Now, MinFreeBytes: 4 << 20})
	ffs.SetFreeBytes(1 << 20)
	clock.Add(2 * time.Second)
	if err := s.Healthy(); !errors.Is(err, ErrNoSpace) {
		t.Fatalf("Healthy with 1 MiB free: %v", err)
	}
	if code, enh := ReplyCode(s.Healthy()); code != 452 || enh != "4.3.1" {
		t.Fatalf("ReplyCode = %d %s", code, enh)
	}
	ffs.SetFreeBytes(1 << 30)
	if err := s.Healthy(); err == nil {
		t.Fatal("free space was re-read within a second")
	}
	clock.Add(1100 * time.Millisecond)
	if err := s.Healthy(); err != nil {
		t.Fatalf("Healthy with space back: %v", err)
	}
	if _, err := s.Compact(0.5); err != nil {
		t.Fatalf("Compact with space: %v", err)
	}
	ffs.SetFreeBytes(1 << 10)
	clock.Add(1100 * time.Millisecond)
	if _, err := s.Compact(0.5); !errors.Is(err, ErrNoSpace) {
		t.Fatalf("Compact below the floor: %v, want ErrNoSpace", err)
	}
}

// TestDrainedCurrentSegmentIsDeleted: a spool that wrote one big current
// segment and then saw every message removed gets the space back at once,
// although no new append closes the segment.
func TestDrainedCurrentSegmentIsDeleted(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, Options{Dir: dir, SegmentSize: 1 << 20, Compression: "none"})
	var ids []string
	for i := range 100 { // ~200 KB: past SegmentSize/8, within one segment
		m := testMessage(fmt.Sprintf("d%03d", i), 1)
		if err := s.Append(m, testMail(uint64(i), 2000)); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, m.ID)
	}
	if n := len(segmentFiles(t, dir)); n != 1 {
		t.Fatalf("%d segments, want 1", n)
	}
	for _, id := range ids[:99] {
		if err := s.Remove(id); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(segmentFiles(t, dir)); n != 1 {
		t.Fatalf("segment deleted while one message lives in it (%d files)", n)
	}
	if err := s.Remove(ids[99]); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for len(segmentFiles(t, dir)) != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("drained current segment still on disk: %v", segmentFiles(t, dir))
		}
		time.Sleep(5 * time.Millisecond)
	}
	if st := s.Stats(); st.Segments != 0 || st.Live != 0 {
		t.Fatalf("Stats: %+v", st)
	}
	// Appends go on in a new segment.
	m := testMessage("after", 1)
	if err := s.Append(m, []byte("x\r\n")); err != nil {
		t.Fatal(err)
	}
	if b, err := s.Body(m); err != nil || string(b) != "x\r\n" {
		t.Fatalf("Body after the drop: %q %v", b, err)
	}
}

// TestSmallDrainedSegmentIsKept: below an eighth of SegmentSize a drained
// current segment stays, so that fast delivery does not create a file per
// group commit.
func TestSmallDrainedSegmentIsKept(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, Options{Dir: dir, Compression: "none"})
	m := testMessage("small", 1)
	if err := s.Append(m, []byte("x\r\n")); err != nil {
		t.Fatal(err)
	}
	if err := s.Remove(m.ID); err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond)
	if n := len(segmentFiles(t, dir)); n != 1 {
		t.Fatalf("%d segments, want the small current one kept", n)
	}
}

// TestFreeSpaceCountsBytesInFlight: between two looks at the filesystem,
// the bytes appended are subtracted from the last answer, so a burst
// cannot write past the floor before the next statfs.
func TestFreeSpaceCountsBytesInFlight(t *testing.T) {
	ffs := queuetest.NewFaultFS(nil)
	clock := &testClock{t: time.Unix(1772445600, 0)}
	s := openTest(t, Options{FS: ffs, Now: clock.Now, MinFreeBytes: 1 << 20, Compression: "none"})
	ffs.SetFreeBytes(1<<20 + 100<<10) // 100 KiB above the floor
	body := make([]byte, 10<<10)
	n := 0
	for ; n < 100; n++ {
		err := s.Append(testMessage(fmt.Sprintf("f%03d", n), 1), body)
		if errors.Is(err, ErrNoSpace) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if n < 5 || n > 10 {
		t.Fatalf("%d appends of 10 KiB fit in 100 KiB above the floor, want 5–10", n)
	}
	// The clock has not moved: the statfs answer is the same, but the
	// estimate stays below the floor until the disk says otherwise.
	if err := s.Healthy(); !errors.Is(err, ErrNoSpace) {
		t.Fatalf("Healthy after the burst: %v", err)
	}
	ffs.SetFreeBytes(1 << 30)
	clock.Add(200 * time.Millisecond) // near the floor it looks every 100 ms
	if err := s.Healthy(); err != nil {
		t.Fatalf("Healthy with space back: %v", err)
	}
}
