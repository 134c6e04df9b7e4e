package events

import (
	"os"
	"path/filepath"
)

// An earlier version kept one journal per sink, in DIR/NAME/: segments
// in the format of today's (the same lines) and a cursor file, "cursor",
// every record the sink's. After an upgrade the sink ships that journal
// first, to its end, then removes it and goes on with the shared journal
// (which holds only records written since the upgrade); the records keep
// their order and, for a batch in flight at the stop, its key.

// openLegacy opens the sink's journal of an earlier version, when there
// is one with records to ship (DIR/NAME/: segments and a cursor, every
// record the sink's); one with none is removed.
func (k *sink) openLegacy(dir string) error {
	segs, _ := filepath.Glob(filepath.Join(dir, "*.seg"))
	if len(segs) == 0 {
		return removeLegacy(dir)
	}
	lj, err := openJournal(dir, func(_, _ []byte) uint32 { return 1 })
	if err != nil {
		return err
	}
	if err := lj.openCursor(filepath.Join(dir, "cursor"), 0, false); err != nil {
		lj.close()
		return err
	}
	if lj.backlog(0) == 0 {
		lj.close()
		return removeLegacy(dir)
	}
	k.log.Info("shipping the records of an earlier version's journal first", "dir", dir, "records", lj.backlog(0))
	k.legacy.Store(lj)
	return nil
}

// removeLegacy removes an earlier version's journal, shipped.
func removeLegacy(dir string) error {
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	return syncDir(filepath.Dir(dir))
}
