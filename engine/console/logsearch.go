package console

import (
	"context"
	"errors"
	"io/fs"
	"slices"
	"strings"

	"gannet/engine/logrec"
)

// The log files on disk are the console's memory beyond the recent
// records (Recent keeps the last RecentRecords): a search that the queue
// and the recent records do not fill, and a message page whose records
// have left Recent, read them, newest file first, until they have enough
// or the request's time runs out (the page then says the search stopped).

// maxMessageRecords bounds the records a message page reads from disk.
const maxMessageRecords = 2000

// errEnough stops the reading of the log files early.
var errEnough = errors.New("console: enough records")

// matches reports whether rec matches every non-empty field of f
// (recipient and sender: a case-insensitive substring, given lower-cased;
// the others exact).
func (f Filter) matches(rec *logrec.Record, rcptLower, senderLower string) bool {
	return (f.ID == "" || rec.ID == f.ID) &&
		(f.Tenant == "" || rec.Tenant == f.Tenant) &&
		(f.Campaign == "" || rec.Campaign == f.Campaign) &&
		(rcptLower == "" || strings.Contains(strings.ToLower(rec.Recipient), rcptLower)) &&
		(senderLower == "" || strings.Contains(strings.ToLower(rec.Sender), senderLower))
}

// readNewestFirst calls fn with the records of each log file under dir,
// the newest file first (a file's records in the order written), then
// fileDone(k) after the k-th file (0: the newest), until fn returns
// errEnough, fileDone returns true or ctx ends. It reports whether it
// stopped for neither of the last two (every file it needed was read).
func readNewestFirst(ctx context.Context, dir string, fn func(*logrec.Record) error, fileDone func(k int) bool) (bool, error) {
	files, err := logrec.LogFiles(dir)
	if err != nil {
		return false, err
	}
	for k, i := 0, len(files)-1; i >= 0; k, i = k+1, i-1 {
		if ctx.Err() != nil {
			return false, nil
		}
		n := 0
		err := logrec.ReadFile(files[i], func(r *logrec.Record) error {
			if n++; n%1024 == 0 && ctx.Err() != nil {
				return ctx.Err()
			}
			return fn(r)
		})
		switch {
		case errors.Is(err, errEnough):
			return true, nil
		case ctx.Err() != nil:
			return false, nil
		case errors.Is(err, fs.ErrNotExist):
			continue // retention removed it meanwhile
		case err != nil:
			return false, err
		}
		if fileDone != nil && fileDone(k) {
			return true, nil
		}
	}
	return true, nil
}

// searchLog returns the newest record of each message whose records in
// the log files match f and that skip does not hold, newest first, at most
// limit; complete is false when the time ran out before the files did.
func searchLog(ctx context.Context, dir string, f Filter, limit int, skip map[string]bool) ([]logrec.Record, bool, error) {
	rcpt, sender := strings.ToLower(f.Recipient), strings.ToLower(f.Sender)
	var out []logrec.Record
	at := map[string]int{}     // message id → its index in out
	inFile := map[string]int{} // message id → the file (0: newest) its record came from
	file := 0
	complete, err := readNewestFirst(ctx, dir, func(r *logrec.Record) error {
		if skip[r.ID] || !f.matches(r, rcpt, sender) {
			return nil
		}
		if k, ok := at[r.ID]; ok {
			if inFile[r.ID] == file {
				out[k] = *r // a later record of it in the same file: the newest
			}
			return nil
		}
		if len(out) >= limit {
			return errEnough
		}
		at[r.ID], inFile[r.ID] = len(out), file
		out = append(out, *r)
		return nil
	}, func(k int) bool { file = k + 1; return false })
	slices.SortStableFunc(out, func(a, b logrec.Record) int { return b.Timestamp.Compare(a.Timestamp) })
	return out, complete, err
}

// messageRecords returns the records of message id in the log files,
// oldest first, reading back from the newest file to the file that holds
// its Reception and one more (a fast first attempt can be logged before
// the Reception), at most maxMessageRecords; complete is false when the
// time ran out first.
func messageRecords(ctx context.Context, dir, id string) ([]logrec.Record, bool, error) {
	var out []logrec.Record
	reception := -1 // the file (0: newest) that held its Reception
	file := 0
	complete, err := readNewestFirst(ctx, dir, func(r *logrec.Record) error {
		if r.ID != id {
			return nil
		}
		if len(out) >= maxMessageRecords {
			return errEnough
		}
		out = append(out, *r)
		if r.Type == logrec.Reception && reception < 0 {
			reception = file
		}
		return nil
	}, func(k int) bool {
		file = k + 1
		return reception >= 0 && k > reception
	})
	slices.SortStableFunc(out, func(a, b logrec.Record) int { return a.Timestamp.Compare(b.Timestamp) })
	return out, complete, err
}

// logDir is Options.LogDir's answer, "" without one.
func (c *Console) logDir() string {
	if c.opts.LogDir == nil {
		return ""
	}
	return c.opts.LogDir()
}

// mergeRecords adds to the records read from disk those of recent that
// are not among them (not yet written, or no uuid to tell), oldest first.
func mergeRecords(disk, recent []logrec.Record) []logrec.Record {
	have := make(map[string]bool, len(disk))
	for _, r := range disk {
		have[recordKey(&r)] = true
	}
	out := disk
	for _, r := range recent {
		if !have[recordKey(&r)] {
			out = append(out, r)
		}
	}
	slices.SortStableFunc(out, func(a, b logrec.Record) int { return a.Timestamp.Compare(b.Timestamp) })
	return out
}

// recordKey names one record: its uuid, else what it says.
func recordKey(r *logrec.Record) string {
	if r.UUID != "" {
		return r.UUID
	}
	return string(r.Type) + "\x00" + r.Recipient + "\x00" + r.Timestamp.String() + "\x00" + r.Response.Content
}
