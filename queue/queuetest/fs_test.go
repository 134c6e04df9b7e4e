package queuetest

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

func TestFaultFSInjectsAndRecovers(t *testing.T) {
	dir := t.TempDir()
	ffs := NewFaultFS(nil)
	f, err := ffs.Create(filepath.Join(dir, "a"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()

	ffs.FailWrites(syscall.ENOSPC, 1)
	if _, err := f.Write([]byte("hello")); !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("injected write: %v, want ENOSPC", err)
	}
	if n, err := f.Write([]byte("hello")); err != nil || n != 5 {
		t.Fatalf("write after the one injected failure: %d, %v", n, err)
	}
	ffs.ShortWrites(1)
	if n, err := f.Write([]byte("abcdef")); n != 3 || !errors.Is(err, io.ErrShortWrite) {
		t.Fatalf("short write: %d, %v; want 3, ErrShortWrite", n, err)
	}
	ffs.FailSyncs(syscall.EIO, -1)
	for range 2 {
		if err := f.Sync(); !errors.Is(err, syscall.EIO) {
			t.Fatalf("injected fsync: %v, want EIO", err)
		}
	}
	ffs.FailSyncs(nil, 0)
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	if w, s := ffs.Counts(); w != 3 || s != 3 {
		t.Fatalf("Counts = %d writes, %d syncs; want 3, 3", w, s)
	}
	data, err := os.ReadFile(filepath.Join(dir, "a"))
	if err != nil || string(data) != "helloabc" {
		t.Fatalf("file holds %q, %v; want the bytes that were really written", data, err)
	}

	ffs.FailCreates(syscall.ENOSPC, 1)
	if _, err := ffs.Create(filepath.Join(dir, "b")); !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("injected create: %v", err)
	}
	if err := ffs.SyncDir(dir); err != nil {
		t.Fatal(err)
	}
	ffs.SetFreeBytes(42)
	if free, _ := ffs.FreeBytes(dir); free != 42 {
		t.Fatalf("FaultFS.FreeBytes = %d, want 42", free)
	}
}
