package logrec

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
)

// TestFilesMentioning: an address is found in plain and compressed files
// whatever its case, across the boundary of two reads, and records only
// queued a moment ago count once Flush returns.
func TestFilesMentioning(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string, compress bool) {
		data := []byte(text)
		if compress {
			enc, _ := zstd.NewWriter(nil)
			data = enc.EncodeAll(data, nil)
			enc.Close()
		}
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	pad := strings.Repeat("x", 64<<10-5) // "Bob@…" straddles the first read
	write("gannet-20261201-000000.jsonl.zst", `{"recipient":"other@example.test"}`+"\n", true)
	write("gannet-20261202-000000.jsonl.zst", `{"recipient":"BOB@Example.test"}`+"\n", true)
	write("gannet-20261203-000000.jsonl", pad+`{"sender":"Bob@example.test"}`+"\n", false)
	got, err := FilesMentioning(dir, "bob@example.test")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(got, " ") != "gannet-20261202-000000.jsonl.zst gannet-20261203-000000.jsonl" {
		t.Errorf("files %v", got)
	}

	wdir := t.TempDir()
	w, err := New(Options{Dir: wdir, FlushInterval: time.Hour, DisableCompression: true})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	w.Write(&Record{Type: Reception, Recipient: "carol@example.test", Timestamp: time.Now()})
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	if got, _ := FilesMentioning(wdir, "Carol@example.test"); len(got) != 1 {
		t.Errorf("a flushed record not found: %v", got)
	}
}
