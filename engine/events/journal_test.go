package events

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func lines(from, n int) ([]byte, int) {
	var b []byte
	for i := from; i < from+n; i++ {
		b = fmt.Appendf(b, "1767000000\tDelivery\tacme\tspring\tuuid-%d\t{\"n\":%d}\n", i, i)
	}
	return b, n
}

func readAll(t *testing.T, j *journal, from, end uint64) []string {
	t.Helper()
	rd := &reader{j: j}
	defer rd.close()
	var out []string
	for seq := from; seq < end; seq++ {
		line, err := rd.read(seq)
		if err != nil {
			t.Fatalf("read %d: %v", seq, err)
		}
		e, err := parseLine(line)
		if err != nil {
			t.Fatalf("record %d: %v", seq, err)
		}
		out = append(out, e.uuid)
	}
	return out
}

// TestJournalSegmentsAndCursor: records span several segments, read back
// in order from any position; segments wholly before the cursor are
// deleted; a reopened journal has the same head and cursor, and the batch
// in flight.
func TestJournalSegmentsAndCursor(t *testing.T) {
	dir := t.TempDir()
	j, err := openJournal(dir)
	if err != nil {
		t.Fatal(err)
	}
	j.segSize = 1000 // about 17 records a segment
	for i := 0; i < 100; i += 10 {
		if err := j.append(lines(i, 10)); err != nil {
			t.Fatal(err)
		}
	}
	if _, head, _, _ := j.positions(); head != 100 {
		t.Fatalf("head %d", head)
	}
	segs, _ := filepath.Glob(filepath.Join(dir, "*.seg"))
	if len(segs) < 3 {
		t.Fatalf("%d segments, want several", len(segs))
	}
	got := readAll(t, j, 37, 45)
	if got[0] != "uuid-37" || got[7] != "uuid-44" {
		t.Errorf("records 37..44: %v", got)
	}
	j.done(60)
	if ok, err := j.startBatch(60, 70); !ok || err != nil {
		t.Fatalf("startBatch: %v %v", ok, err)
	}
	after, _ := filepath.Glob(filepath.Join(dir, "*.seg"))
	if len(after) >= len(segs) {
		t.Errorf("segments before the cursor not deleted: %d then %d", len(segs), len(after))
	}
	if err := j.close(); err != nil {
		t.Fatal(err)
	}
	j, err = openJournal(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer j.close()
	next, head, batchEnd, _ := j.positions()
	if next != 60 || head != 100 || batchEnd != 70 {
		t.Errorf("reopened: next %d head %d batch_end %d, want 60 100 70", next, head, batchEnd)
	}
	if got := readAll(t, j, 60, 100); got[0] != "uuid-60" || got[39] != "uuid-99" {
		t.Errorf("records after reopening: %v", got)
	}
	if err := j.append(lines(100, 1)); err != nil {
		t.Fatal(err)
	}
	if got := readAll(t, j, 100, 101); got[0] != "uuid-100" {
		t.Errorf("record appended after reopening: %v", got)
	}
}

// TestJournalTornWrite: a crash that left half a line at the end, or a
// torn cursor, loses no complete record: the half line is cut, and a
// cursor that does not check out ships the journal from its start.
func TestJournalTornWrite(t *testing.T) {
	dir := t.TempDir()
	j, err := openJournal(dir)
	if err != nil {
		t.Fatal(err)
	}
	j.append(lines(0, 5))
	j.done(3)
	j.close()
	segs, _ := filepath.Glob(filepath.Join(dir, "*.seg"))
	f, err := os.OpenFile(segs[len(segs)-1], os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString("1767000000\tDelivery\tacme\tspring\tuuid-torn\t{\"n\":")
	f.Close()

	j, err = openJournal(dir)
	if err != nil {
		t.Fatal(err)
	}
	next, head, _, _ := j.positions()
	if next != 3 || head != 5 {
		t.Errorf("after a torn line: next %d head %d, want 3 5", next, head)
	}
	j.append(lines(5, 1))
	if got := readAll(t, j, 3, 6); strings.Join(got, ",") != "uuid-3,uuid-4,uuid-5" {
		t.Errorf("records after the torn line: %v", got)
	}
	j.close()

	// A torn cursor: the checksum does not match.
	cur := filepath.Join(dir, cursorFile)
	b, _ := os.ReadFile(cur)
	b[0] = '9'
	os.WriteFile(cur, b, 0o644)
	j, err = openJournal(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer j.close()
	if next, head, _, _ := j.positions(); next != 0 || head != 6 {
		t.Errorf("after a torn cursor: next %d head %d, want 0 6 (ship all again)", next, head)
	}
}

func TestCursorEncoding(t *testing.T) {
	b := encodeCursor(123456789, 123456889)
	if len(b) != cursorSize {
		t.Fatalf("cursor line %q: %d bytes", b, len(b))
	}
	if n, e, ok := decodeCursor(b); !ok || n != 123456789 || e != 123456889 {
		t.Errorf("decode %q: %d %d %v", b, n, e, ok)
	}
	for _, bad := range []string{"", "1 2", "1 2 3", "x y z"} {
		if _, _, ok := decodeCursor([]byte(bad)); ok {
			t.Errorf("decodeCursor(%q) ok", bad)
		}
	}
}
