package logrec

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// Compressed files older than Retain are deleted at start and then every
// PruneInterval; newer ones, plain files and other files stay.
func TestRetainDeletesOldCompressedFiles(t *testing.T) {
	dir := t.TempDir()
	now := time.Now()
	files := map[string]time.Duration{ // name → age of its last write
		"gannet-20260101-000000.jsonl.zst": 40 * 24 * time.Hour,
		"gannet-20260102-000000.jsonl.zst": 31 * 24 * time.Hour,
		"gannet-20261120-000000.jsonl.zst": 7 * 24 * time.Hour,
		"gannet-20260103-000000.jsonl":     40 * 24 * time.Hour, // plain: compressed first, never pruned
		"notes.txt":                        40 * 24 * time.Hour,
	}
	for name, age := range files {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(p, now.Add(-age), now.Add(-age)); err != nil {
			t.Fatal(err)
		}
	}
	w, err := New(Options{Dir: dir, Retain: 30 * 24 * time.Hour, PruneInterval: 20 * time.Millisecond, DisableCompression: true})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	exists := func(name string) bool {
		_, err := os.Stat(filepath.Join(dir, name))
		return err == nil
	}
	deadline := time.Now().Add(5 * time.Second)
	for exists("gannet-20260101-000000.jsonl.zst") || exists("gannet-20260102-000000.jsonl.zst") {
		if time.Now().After(deadline) {
			t.Fatal("files older than Retain not deleted")
		}
		time.Sleep(10 * time.Millisecond)
	}
	for _, keep := range []string{"gannet-20261120-000000.jsonl.zst", "gannet-20260103-000000.jsonl", "notes.txt"} {
		if !exists(keep) {
			t.Errorf("%s deleted", keep)
		}
	}
	// A file that grows old later goes at a later pass.
	p := filepath.Join(dir, "gannet-20261120-000000.jsonl.zst")
	old := now.Add(-60 * 24 * time.Hour)
	if err := os.Chtimes(p, old, old); err != nil {
		t.Fatal(err)
	}
	for exists("gannet-20261120-000000.jsonl.zst") {
		if time.Now().After(deadline) {
			t.Fatal("file that aged past Retain not deleted by a later pass")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Retain 0 keeps everything.
func TestRetainZeroKeepsAll(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "gannet-20200101-000000.jsonl.zst")
	if err := os.WriteFile(p, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-5 * 365 * 24 * time.Hour)
	os.Chtimes(p, old, old)
	w, err := New(Options{Dir: dir, PruneInterval: 10 * time.Millisecond, DisableCompression: true})
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	w.Close()
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("Retain 0 deleted a file: %v", err)
	}
}
