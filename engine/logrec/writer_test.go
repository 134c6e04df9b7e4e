package logrec

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// readRecords returns every line of every file in dir, files in name order,
// checking that each line is a JSON object.
func readRecords(t *testing.T, dir string) (files []string, recs []map[string]any) {
	t.Helper()
	names, err := filepath.Glob(filepath.Join(dir, "gannet-*.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(names)
	for _, n := range names {
		f, err := os.Open(n)
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			var m map[string]any
			if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
				t.Fatalf("%s: bad line %q: %v", n, sc.Text(), err)
			}
			recs = append(recs, m)
		}
		f.Close()
		files = append(files, filepath.Base(n))
	}
	return names, recs
}

func TestWriterWritesEveryRecordFromManyGoroutines(t *testing.T) {
	dir := t.TempDir()
	w, err := New(Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	const goroutines, each = 8, 500
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				r := sampleRecord()
				r.ID = fmt.Sprintf("g%d-%d", g, i)
				for !w.Write(r) {
					time.Sleep(time.Millisecond) // only when the buffer is full
				}
			}
		}()
	}
	wg.Wait()
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	_, recs := readRecords(t, dir)
	seen := map[string]bool{}
	for _, r := range recs {
		seen[r["id"].(string)] = true
	}
	if len(recs) != goroutines*each || len(seen) != goroutines*each {
		t.Fatalf("%d records, %d distinct; want %d", len(recs), len(seen), goroutines*each)
	}
	if w.Written() != goroutines*each {
		t.Errorf("Written = %d", w.Written())
	}
	if w.Write(sampleRecord()) {
		t.Error("Write after Close succeeded")
	}
}

func TestWriterFlushesWithoutClose(t *testing.T) {
	dir := t.TempDir()
	w, err := New(Options{Dir: dir, FlushInterval: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	w.Write(sampleRecord())
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if _, recs := readRecords(t, dir); len(recs) == 1 {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatal("record not on disk 5s after Write")
}

func TestWriterRotatesBySizeAndAge(t *testing.T) {
	dir := t.TempDir()
	var now atomic.Int64
	now.Store(time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC).UnixNano())
	clock := func() time.Time { return time.Unix(0, now.Load()) }
	line := len(sampleRecord().AppendJSON(nil))
	w, err := newWriter(Options{Dir: dir, MaxFileSize: int64(3 * line), MaxFileAge: time.Hour, Now: clock, DisableCompression: true})
	if err != nil {
		t.Fatal(err)
	}
	// Records go through the channel in order; run the writer after queueing
	// them so that the fake clock is read when each is written.
	for range 7 {
		w.Write(sampleRecord())
	}
	go w.run()
	// Wait until the 7 are written, then move the clock past MaxFileAge.
	for i := 0; w.Written() < 7 && i < 500; i++ {
		time.Sleep(10 * time.Millisecond)
	}
	now.Add(int64(2 * time.Hour))
	w.Write(sampleRecord())
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	names, recs := readRecords(t, dir)
	var base []string
	for _, n := range names {
		base = append(base, filepath.Base(n))
	}
	want := []string{
		"gannet-20260301-100000-1.jsonl", "gannet-20260301-100000-2.jsonl",
		"gannet-20260301-100000.jsonl", "gannet-20260301-120000.jsonl",
	}
	if len(recs) != 8 || strings.Join(base, " ") != strings.Join(want, " ") {
		t.Fatalf("files %v with %d records; want %v with 8", base, len(recs), want)
	}
}

func TestWriterDropsWhenFull(t *testing.T) {
	dir := t.TempDir()
	var onDrop atomic.Int64
	w, err := newWriter(Options{Dir: dir, Buffer: 2, OnDrop: func() { onDrop.Add(1) }})
	if err != nil {
		t.Fatal(err)
	}
	// The writer goroutine is not running yet: the third Write finds the
	// buffer full and must return at once.
	start := time.Now()
	var ok int
	for range 5 {
		if w.Write(sampleRecord()) {
			ok++
		}
	}
	if time.Since(start) > time.Second {
		t.Error("Write blocked")
	}
	if ok != 2 || w.Dropped() != 3 || onDrop.Load() != 3 {
		t.Errorf("ok=%d dropped=%d onDrop=%d; want 2, 3, 3", ok, w.Dropped(), onDrop.Load())
	}
	go w.run()
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if _, recs := readRecords(t, dir); len(recs) != 2 {
		t.Errorf("%d records on disk, want 2", len(recs))
	}
}

// TestWriterOnEncoded: OnEncoded gets every record with the very line the
// file gets, also the records dropped (the buffer full).
func TestWriterOnEncoded(t *testing.T) {
	dir := t.TempDir()
	var got []string
	w, err := newWriter(Options{Dir: dir, Buffer: 2, OnEncoded: func(r *Record, line []byte) {
		got = append(got, r.ID+" "+string(line))
	}})
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for i := range 3 {
		r := sampleRecord()
		r.ID = fmt.Sprintf("m%d", i)
		w.Write(r) // the third is dropped: the writer goroutine is not running
		want = append(want, r.ID+" "+string(r.AppendJSON(nil)))
	}
	go w.run()
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if strings.Join(got, "") != strings.Join(want, "") {
		t.Errorf("OnEncoded got\n%s\nwant\n%s", strings.Join(got, ""), strings.Join(want, ""))
	}
	file, _ := filepath.Glob(filepath.Join(dir, "gannet-*.jsonl"))
	b, _ := os.ReadFile(file[0])
	if string(b) != strings.TrimPrefix(want[0], "m0 ")+strings.TrimPrefix(want[1], "m1 ") {
		t.Errorf("file %q; OnEncoded's lines %q", b, got[:2])
	}
}

func TestWriterReportsUnwritableDirectory(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "logs")
	var reported atomic.Int64
	w, err := New(Options{Dir: dir, OnError: func(error) { reported.Add(1) }})
	if err != nil {
		t.Fatal(err)
	}
	// Replace the directory with a file: opening a log file now fails.
	if err := os.Remove(dir); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dir, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	w.Write(sampleRecord())
	if err := w.Close(); err == nil {
		t.Error("Close returned no error for an unusable directory")
	}
	if w.Dropped() != 1 || reported.Load() != 1 {
		t.Errorf("Dropped = %d, OnError calls = %d; want 1, 1", w.Dropped(), reported.Load())
	}
}

// TestWriterSetRotation: SetRotation changes the size limit of a running
// Writer from the next record on.
func TestWriterSetRotation(t *testing.T) {
	dir := t.TempDir()
	line := len(sampleRecord().AppendJSON(nil))
	w, err := New(Options{Dir: dir, DisableCompression: true})
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		w.Write(sampleRecord())
	}
	for i := 0; w.Written() < 3 && i < 500; i++ {
		time.Sleep(10 * time.Millisecond)
	}
	w.SetRotation(Rotation{MaxFileSize: int64(2 * line)})
	for range 4 {
		w.Write(sampleRecord())
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	w.SetRotation(Rotation{}) // closed: returns at once
	names, recs := readRecords(t, dir)
	// 3 in the first file (256 MiB before the change), then 2 per file.
	if len(recs) != 7 || len(names) != 3 {
		t.Fatalf("files %v with %d records; want 3 files with 7", names, len(recs))
	}
}

// BenchmarkWriterWrite measures Write from many goroutines at once, as the
// inbound workers and the delivery goroutines call it, including the
// writer goroutine's share (its wake-ups and the file writes): "busy"
// with other work between records (spin, about 2 µs, standing for a
// message's handling), "flat-out" with nothing else, so that the buffer
// fills.
func BenchmarkWriterWrite(b *testing.B) {
	for _, bc := range []struct {
		name string
		spin int
	}{{"busy", 2000}, {"flat-out", 0}} {
		b.Run(bc.name, func(b *testing.B) {
			w, err := New(Options{Dir: b.TempDir(), DisableCompression: true})
			if err != nil {
				b.Fatal(err)
			}
			r := sampleRecord()
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				x := 0
				for pb.Next() {
					for i := range bc.spin {
						x ^= i
					}
					for !w.Write(r) {
						runtime.Gosched() // only when the buffer is full
					}
				}
				_ = x
			})
			if err := w.Close(); err != nil {
				b.Fatal(err)
			}
		})
	}
}
