package events

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// lines returns n journal lines from record from on: even ones of tenant
// acme, odd ones of tenant other; with their sinks as testClassify gives
// them.
func lines(from, n int) ([]byte, []uint32) {
	var b []byte
	var masks []uint32
	for i := from; i < from+n; i++ {
		tenant := "acme"
		if i%2 == 1 {
			tenant = "other"
		}
		b = fmt.Appendf(b, "1767000000\tDelivery\t%s\tspring\tuuid-%d\t{\"n\":%d}\n", tenant, i, i)
		masks = append(masks, testClassify(nil, []byte(tenant)))
	}
	return b, masks
}

// testClassify: sink 0 takes tenant acme's records, sink 1 all.
func testClassify(_, tenant []byte) uint32 {
	if string(tenant) == "acme" {
		return 3
	}
	return 2
}

// openTestJournal opens the journal in dir with the cursors of the two
// sinks of testClassify.
func openTestJournal(t *testing.T, dir string) *journal {
	t.Helper()
	j, err := openJournal(dir, testClassify)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		if err := j.openCursor(filepath.Join(dir, fmt.Sprintf("s%d.cursor", i)), i, false); err != nil {
			t.Fatal(err)
		}
	}
	return j
}

// readAll returns the uuids of the records of [from, end) sink i takes.
func readAll(t *testing.T, j *journal, i int, from, end uint64) []string {
	t.Helper()
	rd := &reader{j: j, bit: 1 << i}
	defer rd.close()
	b, err := rd.read(from, end)
	if err != nil {
		t.Fatalf("read %d..%d: %v", from, end, err)
	}
	var out []string
	for _, e := range b.entries {
		out = append(out, string(e.uuid))
	}
	return out
}

func appendLines(t *testing.T, j *journal, from, n int) {
	t.Helper()
	b, m := lines(from, n)
	if err := j.append(b, m); err != nil {
		t.Fatal(err)
	}
}

// TestJournalSegmentsAndCursors: records span several segments and are
// written once for two sinks; each sink reads back its own in order from
// any position, a batch of n of its records spans the right range, its
// backlog counts its records only; segments wholly before both cursors
// are deleted; a reopened journal has the same head, cursors, backlogs
// and batch in flight.
func TestJournalSegmentsAndCursors(t *testing.T) {
	dir := t.TempDir()
	j := openTestJournal(t, dir)
	j.segSize = 1000 // about 17 records a segment
	for i := 0; i < 100; i += 10 {
		appendLines(t, j, i, 10)
	}
	if p := j.position(0); p.head != 100 || p.owed != 50 {
		t.Fatalf("sink 0: head %d backlog %d, want 100 50", p.head, p.owed)
	}
	if p := j.position(1); p.owed != 100 {
		t.Fatalf("sink 1: backlog %d, want 100", p.owed)
	}
	segs, _ := filepath.Glob(filepath.Join(dir, "*.seg"))
	if len(segs) < 3 {
		t.Fatalf("%d segments, want several", len(segs))
	}
	if got := readAll(t, j, 0, 37, 45); strings.Join(got, ",") != "uuid-38,uuid-40,uuid-42,uuid-44" {
		t.Errorf("sink 0, records 37..44: %v", got)
	}
	if got := readAll(t, j, 1, 37, 45); len(got) != 8 || got[0] != "uuid-37" || got[7] != "uuid-44" {
		t.Errorf("sink 1, records 37..44: %v", got)
	}
	if end := j.span(0, 37, 3); end != 43 {
		t.Errorf("sink 0: a batch of 3 from 37 ends at %d, want 43", end)
	}
	j.done(0, 60)
	if p := j.position(0); p.owed != 20 {
		t.Errorf("sink 0 at 60: backlog %d, want 20", p.owed)
	}
	after, _ := filepath.Glob(filepath.Join(dir, "*.seg"))
	if len(after) != len(segs) {
		t.Errorf("segments deleted while sink 1 still needs them: %d then %d", len(segs), len(after))
	}
	j.done(1, 50)
	if ok, err := j.startBatch(0, 60, 70, 5); !ok || err != nil {
		t.Fatalf("startBatch: %v %v", ok, err)
	}
	after, _ = filepath.Glob(filepath.Join(dir, "*.seg"))
	if len(after) >= len(segs) {
		t.Errorf("segments before both cursors not deleted: %d then %d", len(segs), len(after))
	}
	if err := j.close(); err != nil {
		t.Fatal(err)
	}
	j = openTestJournal(t, dir)
	defer j.close()
	p0, p1 := j.position(0), j.position(1)
	if p0.next != 60 || p0.head != 100 || p0.batchEnd != 70 || p0.owed != 20 || p1.next != 50 || p1.owed != 50 {
		t.Errorf("reopened: sink 0 %+v, sink 1 %+v; want next 60 head 100 batch_end 70 backlog 20, next 50 backlog 50", p0, p1)
	}
	if got := readAll(t, j, 1, 50, 100); len(got) != 50 || got[0] != "uuid-50" || got[49] != "uuid-99" {
		t.Errorf("records after reopening: %v", got)
	}
	appendLines(t, j, 100, 1)
	if got := readAll(t, j, 0, 100, 101); len(got) != 1 || got[0] != "uuid-100" {
		t.Errorf("record appended after reopening: %v", got)
	}
	if n := j.trim(1, 10); n != 41 {
		t.Errorf("trim to 10: %d dropped, want 41", n)
	}
	if p := j.position(1); p.next != 91 || p.owed != 10 {
		t.Errorf("after trim: next %d backlog %d, want 91 10", p.next, p.owed)
	}
}

// TestJournalTornWrite: a crash that left half a line at the end, or a
// torn cursor, loses no complete record: the half line is cut, and a
// cursor that does not check out ships the journal from its start.
func TestJournalTornWrite(t *testing.T) {
	dir := t.TempDir()
	j := openTestJournal(t, dir)
	appendLines(t, j, 0, 5)
	j.done(1, 3)
	j.close()
	segs, _ := filepath.Glob(filepath.Join(dir, "*.seg"))
	f, err := os.OpenFile(segs[len(segs)-1], os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString("1767000000\tDelivery\tacme\tspring\tuuid-torn\t{\"n\":")
	f.Close()

	j = openTestJournal(t, dir)
	if p := j.position(1); p.next != 3 || p.head != 5 {
		t.Errorf("after a torn line: next %d head %d, want 3 5", p.next, p.head)
	}
	appendLines(t, j, 5, 1)
	if got := readAll(t, j, 1, 3, 6); strings.Join(got, ",") != "uuid-3,uuid-4,uuid-5" {
		t.Errorf("records after the torn line: %v", got)
	}
	j.close()

	// A torn cursor: the checksum does not match.
	cur := filepath.Join(dir, "s1.cursor")
	b, _ := os.ReadFile(cur)
	b[0] = '9'
	os.WriteFile(cur, b, 0o644)
	j = openTestJournal(t, dir)
	defer j.close()
	if p := j.position(1); p.next != 0 || p.head != 6 || p.owed != 6 {
		t.Errorf("after a torn cursor: next %d head %d backlog %d, want 0 6 6 (ship all again)", p.next, p.head, p.owed)
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
