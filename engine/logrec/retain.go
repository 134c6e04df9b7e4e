package logrec

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// prune deletes the compressed log files last written longer ago than
// Options.Retain. Plain files are left alone: the one being written is in
// use, and a closed one is compressed first (and pruned on a later pass),
// so that pruning never races the compressor. It runs on the writer
// goroutine, at start and every Options.PruneInterval.
func (w *Writer) prune() {
	entries, err := os.ReadDir(w.opts.Dir)
	if err != nil {
		w.reportError(fmt.Errorf("logrec: prune: %w", err))
		return
	}
	cutoff := w.opts.Now().Add(-w.opts.Retain)
	for _, e := range entries {
		name := e.Name()
		if !strings.HasPrefix(name, "gannet-") || !strings.HasSuffix(name, compressedSuffix) || !e.Type().IsRegular() {
			continue
		}
		info, err := e.Info()
		if err != nil || !info.ModTime().Before(cutoff) {
			continue
		}
		if err := os.Remove(filepath.Join(w.opts.Dir, name)); err != nil && !os.IsNotExist(err) {
			w.reportError(fmt.Errorf("logrec: prune: %w", err))
		}
	}
}

func (w *Writer) reportError(err error) {
	if w.opts.OnError != nil {
		w.opts.OnError(err)
	}
}
