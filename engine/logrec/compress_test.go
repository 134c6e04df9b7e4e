package logrec

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
)

// ids reads every record under dir with ReadDir and returns their ids in
// order.
func ids(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	if err := ReadDir(dir, func(r *Record) error { out = append(out, r.ID); return nil }); err != nil {
		t.Fatal(err)
	}
	return out
}

func listDir(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for i := 0; i < 500; i++ {
		if cond() {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s", what)
}

// TestWriterCompressesRotatedFiles: files closed by size are compressed in
// the background into .jsonl.zst, the plain file is removed, and reading
// the directory gives every record once, in order.
func TestWriterCompressesRotatedFiles(t *testing.T) {
	dir := t.TempDir()
	line := len(sampleRecord().AppendJSON(nil))
	var compressed atomic.Int64
	w, err := New(Options{Dir: dir, MaxFileSize: int64(10 * line), OnCompressed: func(p string) {
		if !strings.HasSuffix(p, ".jsonl.zst") {
			t.Errorf("OnCompressed(%q)", p)
		}
		compressed.Add(1)
	}})
	if err != nil {
		t.Fatal(err)
	}
	const n = 45 // 5 files: 4 rotated and compressed, the last open
	for i := range n {
		r := sampleRecord()
		r.ID = fmt.Sprintf("r%03d", i)
		for !w.Write(r) {
			time.Sleep(time.Millisecond)
		}
	}
	waitUntil(t, "4 compressed files", func() bool { return compressed.Load() == 4 })
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	var zst, plain int
	for _, name := range listDir(t, dir) {
		switch {
		case strings.HasSuffix(name, ".jsonl.zst"):
			zst++
			b, _ := os.ReadFile(filepath.Join(dir, name))
			if !bytes.HasPrefix(b, []byte{0x28, 0xb5, 0x2f, 0xfd}) {
				t.Errorf("%s does not start with the zstd magic number", name)
			}
		case strings.HasSuffix(name, ".jsonl"):
			plain++
		default:
			t.Errorf("unexpected file %s", name)
		}
	}
	if zst != 4 || plain != 1 {
		t.Errorf("%d compressed and %d plain files, want 4 and 1: %v", zst, plain, listDir(t, dir))
	}
	got := ids(t, dir)
	if len(got) != n {
		t.Fatalf("read %d records, want %d", len(got), n)
	}
	for i, id := range got {
		if id != fmt.Sprintf("r%03d", i) {
			t.Fatalf("record %d is %s: out of order", i, id)
		}
	}
}

// writePlain writes a log file of records with the given ids.
func writePlain(t *testing.T, path string, idList ...string) {
	t.Helper()
	var b []byte
	for _, id := range idList {
		r := sampleRecord()
		r.ID = id
		b = r.AppendJSON(b)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestCompressionRecoversFromCrash lays out what a crash can leave at each
// step of a compression and checks that the next start keeps every record
// exactly once.
func TestCompressionRecoversFromCrash(t *testing.T) {
	dir := t.TempDir()
	// a: crash after the rename, before the removal: both exist.
	writePlain(t, filepath.Join(dir, "gannet-20260301-100000.jsonl"), "a1", "a2")
	var zb bytes.Buffer
	zw, _ := zstd.NewWriter(&zb)
	writePlain(t, filepath.Join(dir, "tmp"), "a1", "a2")
	raw, _ := os.ReadFile(filepath.Join(dir, "tmp"))
	os.Remove(filepath.Join(dir, "tmp"))
	zw.Write(raw)
	zw.Close()
	os.WriteFile(filepath.Join(dir, "gannet-20260301-100000.jsonl.zst"), zb.Bytes(), 0o644)
	// b: crash while compressing: a torn temporary file.
	writePlain(t, filepath.Join(dir, "gannet-20260301-110000.jsonl"), "b1", "b2", "b3")
	os.WriteFile(filepath.Join(dir, "gannet-20260301-110000.jsonl.zst.tmp"), zb.Bytes()[:7], 0o644)
	// c: a file closed by a crash, never compressed.
	writePlain(t, filepath.Join(dir, "gannet-20260301-120000.jsonl"), "c1")

	// Before recovery, readers already see each record once.
	if got := strings.Join(ids(t, dir), " "); got != "a1 a2 b1 b2 b3 c1" {
		t.Errorf("before recovery ReadDir = %s", got)
	}
	var compressed atomic.Int64
	w, err := New(Options{Dir: dir, OnCompressed: func(string) { compressed.Add(1) }})
	if err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "2 files compressed", func() bool { return compressed.Load() == 2 })
	r := sampleRecord()
	r.ID = "d1"
	w.Write(r)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(ids(t, dir), " "); got != "a1 a2 b1 b2 b3 c1 d1" {
		t.Errorf("after recovery ReadDir = %s", got)
	}
	names := strings.Join(listDir(t, dir), " ")
	for _, gone := range []string{"100000.jsonl ", "110000.jsonl ", ".tmp", "120000.jsonl "} {
		if strings.Contains(names+" ", gone) {
			t.Errorf("%q left behind: %s", gone, names)
		}
	}
}

// TestCloseCutsCompressionShort: Close does not wait for a big file to be
// compressed; whatever state it stops in, every record is still readable
// once and no temporary file stays.
func TestCloseCutsCompressionShort(t *testing.T) {
	dir := t.TempDir()
	var many []string
	for i := range 60000 {
		many = append(many, fmt.Sprint("x", i))
	}
	writePlain(t, filepath.Join(dir, "gannet-20260301-100000.jsonl"), many...)
	w, err := New(Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(5 * time.Millisecond)
	start := time.Now()
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	t.Logf("Close took %v", time.Since(start))
	for _, name := range listDir(t, dir) {
		if strings.HasSuffix(name, ".tmp") {
			t.Errorf("temporary file left: %s", name)
		}
	}
	if got := ids(t, dir); len(got) != len(many) {
		t.Errorf("read %d records, want %d", len(got), len(many))
	}
}

// TestWriterClosesQuietFileByAge: a file that gets no more records is still
// closed (and compressed) once it is older than MaxFileAge.
func TestWriterClosesQuietFileByAge(t *testing.T) {
	dir := t.TempDir()
	var now atomic.Int64
	now.Store(time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC).UnixNano())
	var compressed atomic.Int64
	w, err := New(Options{Dir: dir, MaxFileAge: time.Minute, FlushInterval: 10 * time.Millisecond,
		Now: func() time.Time { return time.Unix(0, now.Load()) }, OnCompressed: func(string) { compressed.Add(1) }})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	w.Write(sampleRecord())
	waitUntil(t, "the record written", func() bool { return w.Written() == 1 })
	now.Add(int64(2 * time.Minute))
	waitUntil(t, "the quiet file compressed", func() bool { return compressed.Load() == 1 })
	if names := listDir(t, dir); len(names) != 1 || names[0] != "gannet-20260301-100000.jsonl.zst" {
		t.Errorf("files %v", names)
	}
}

// TestNewFileNameAvoidsCompressedOne: a restart in the same second as the
// previous file's start must not reuse its name (compressing the new file
// would replace the old .zst).
func TestNewFileNameAvoidsCompressedOne(t *testing.T) {
	dir := t.TempDir()
	at := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	os.WriteFile(filepath.Join(dir, "gannet-20260301-100000.jsonl.zst"), nil, 0o644)
	w, err := New(Options{Dir: dir, Now: func() time.Time { return at }, DisableCompression: true})
	if err != nil {
		t.Fatal(err)
	}
	w.Write(sampleRecord())
	w.Close()
	if _, err := os.Stat(filepath.Join(dir, "gannet-20260301-100000-1.jsonl")); err != nil {
		t.Errorf("new file not numbered: %v", listDir(t, dir))
	}
}

func TestWriterOnRecordSeesAndEdits(t *testing.T) {
	dir := t.TempDir()
	var seen atomic.Int64
	w, err := New(Options{Dir: dir, DisableCompression: true, OnRecord: func(r *Record) {
		seen.Add(1)
		if r.Type == TransientFailure && r.BounceClassification == "" {
			r.BounceClassification = "TransientFailure"
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	r := sampleRecord()
	r.Type = TransientFailure
	w.Write(r)
	w.Close()
	var got []Record
	ReadDir(dir, func(r *Record) error { got = append(got, *r); return nil })
	if seen.Load() != 1 || len(got) != 1 || got[0].BounceClassification != "TransientFailure" {
		t.Errorf("seen %d, records %+v", seen.Load(), got)
	}
}
