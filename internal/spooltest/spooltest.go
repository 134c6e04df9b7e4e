// Package spooltest damages the spool of a stopped relay the way a failing
// disk or a buggy writer would, for the tests that check how Gannet copes
// (the engine's and e2e's): an index value that does not decode, a body
// record with a flipped byte. It writes the index with Pebble directly, as
// nothing in the queue package would, and reads the spool only through
// the queue package's API.
package spooltest

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/cockroachdb/pebble/v2"

	"gannet/queue"
)

// GarbageIndexValue is what Damage writes over an index value: not a
// metadata encoding of any version (its first byte is no version).
var GarbageIndexValue = []byte("\x07garbage, not an index value")

// Damage damages the spool in spoolDir, which no process may have open:
// a byte in the middle of the body record of each id of flipRecord flips
// (its CRC no longer matches), then the index value of each id of
// garbageIndex becomes GarbageIndexValue. The records are found first,
// with queue.Open and Scan, while the index is still intact.
func Damage(spoolDir string, garbageIndex, flipRecord []string) error {
	if err := flipRecords(spoolDir, flipRecord); err != nil {
		return err
	}
	db, err := pebble.Open(filepath.Join(spoolDir, "index"), &pebble.Options{Logger: quiet{}})
	if err != nil {
		return err
	}
	for _, id := range garbageIndex {
		if err := db.Set([]byte("m/"+id), GarbageIndexValue, pebble.Sync); err != nil {
			db.Close()
			return err
		}
	}
	return db.Close()
}

// flipRecords flips a byte in the middle of the body record of each id.
func flipRecords(spoolDir string, ids []string) error {
	if len(ids) == 0 {
		return nil
	}
	sp, err := queue.Open(queue.Options{Dir: spoolDir, MinFreeBytes: -1})
	if err != nil {
		return err
	}
	want := map[string]*queue.Message{}
	for _, id := range ids {
		want[id] = nil
	}
	err = sp.Scan(func(m *queue.Message) error {
		if _, ok := want[m.ID]; ok {
			want[m.ID] = m
		}
		return nil
	})
	err = errors.Join(err, sp.Close())
	if err != nil {
		return err
	}
	for id, m := range want {
		if m == nil {
			return fmt.Errorf("spooltest: message %s is not in the spool", id)
		}
		seg := filepath.Join(spoolDir, "segments", fmt.Sprintf("%016x.seg", m.Segment))
		data, err := os.ReadFile(seg)
		if err != nil {
			return err
		}
		data[m.Offset+m.Length/2] ^= 0x5a
		if err := os.WriteFile(seg, data, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// quiet drops Pebble's log lines (it reports replaying the WAL on Open).
type quiet struct{}

func (quiet) Infof(string, ...any)  {}
func (quiet) Errorf(string, ...any) {}
func (quiet) Fatalf(format string, args ...any) {
	panic(fmt.Sprintf("spooltest: pebble: "+format, args...))
}
