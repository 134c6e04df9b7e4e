package vfs

import (
	"os"
	"path/filepath"
	"testing"
)

func TestOS(t *testing.T) {
	dir := t.TempDir()
	var fs OS
	if err := fs.MkdirAll(filepath.Join(dir, "d"), 0o755); err != nil {
		t.Fatal(err)
	}
	name := filepath.Join(dir, "d", "a")
	f, err := fs.Create(name)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write([]byte("hello")); err != nil {
		t.Fatal(err)
	}
	if err := f.Sync(); err != nil {
		t.Fatalf("Sync (fdatasync): %v", err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if err := fs.Rename(name, name+".b"); err != nil {
		t.Fatal(err)
	}
	if err := fs.SyncDir(filepath.Join(dir, "d")); err != nil {
		t.Fatal(err)
	}
	if ents, err := fs.ReadDir(filepath.Join(dir, "d")); err != nil || len(ents) != 1 || ents[0].Name() != "a.b" {
		t.Fatalf("ReadDir = %v, %v; want [a.b]", ents, err)
	}
	if data, err := os.ReadFile(name + ".b"); err != nil || string(data) != "hello" {
		t.Fatalf("file holds %q, %v", data, err)
	}
	if free, err := fs.FreeBytes(dir); err != nil || free == 0 {
		t.Fatalf("FreeBytes = %d, %v", free, err)
	}
	if err := fs.Remove(name + ".b"); err != nil {
		t.Fatal(err)
	}
}
