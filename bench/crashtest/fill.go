package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"gannet/queue"
)

// -mode fill writes a spool fixture for scenario (e) of shared/docs/testing.md:
// n deferred messages straight through queue.Spool (many concurrent
// appenders share group commits). bench/run.sh then starts bin/gannet serve
// on it and measures the restart from outside, as a user would; the
// in-process load is measured by BenchmarkLoad in engine/delivery.
//
// Each message is what a deferred message looks like: one recipient at one
// of 1000 domains, one failed attempt with its last reply, due in an hour,
// a 600-byte body (bodies stay on disk, so their size does not matter).

// fillResult is what a fill did; -mode fill prints it as one JSON line.
type fillResult struct {
	Messages        int     `json:"messages"` // appended (all durable when fillSpool returns)
	Seconds         float64 `json:"seconds"`  // from the first append to the spool's close
	SyncsPerMessage float64 `json:"segment_fsyncs_per_message"`
	GroupCommits    int64   `json:"group_commits"`
}

// fillOnly is -mode fill: fill the spool at dir (a new or empty directory;
// what a gannet.toml's [spool] path names) with n deferred messages and
// print one JSON line. bench/run.sh starts bin/gannet serve on the result
// to measure scenario (e) at its real size.
func fillOnly(ctx context.Context, dir string, n, writers int) error {
	if dir == "" {
		return fmt.Errorf("-mode fill needs -dir (the spool directory to fill)")
	}
	if _, err := os.Stat(filepath.Join(dir, "index")); err == nil {
		return fmt.Errorf("%s already holds a spool", dir)
	}
	st, err := fillSpool(ctx, dir, n, writers)
	if err != nil {
		return err
	}
	return json.NewEncoder(os.Stdout).Encode(st)
}

// fillSpool appends n deferred messages with many concurrent writers and
// closes the spool.
func fillSpool(ctx context.Context, dir string, n, writers int) (res fillResult, err error) {
	sp, err := queue.Open(queue.Options{Dir: dir, Compression: "zstd", MinFreeBytes: -1})
	if err != nil {
		return res, err
	}
	closed := false
	defer func() {
		if !closed {
			sp.Close()
		}
	}()
	ids := queue.NewIDGenerator(time.Now)
	body := bytes.Repeat([]byte("Deferred mail for the restart benchmark, line of text.\r\n"), 11)
	due := time.Now().Add(time.Hour)
	var next atomic.Int64
	var failed atomic.Pointer[error]
	var wg sync.WaitGroup
	t0 := time.Now()
	for range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil && failed.Load() == nil {
				i := next.Add(1)
				if i > int64(n) {
					return
				}
				m := &queue.Message{
					ID:       ids.Next(),
					From:     "news@sender.example",
					Tenant:   "acme",
					Campaign: "weekly",
					Created:  time.Now(),
					NextDue:  due,
					Attempts: 1,
					Recipients: []queue.Recipient{{
						Addr:      "user" + strconv.FormatInt(i, 10) + "@d" + strconv.FormatInt(i%1000, 10) + ".example",
						Attempts:  1,
						LastReply: "451 4.3.0 receiver down",
					}},
				}
				if err := sp.Append(m, body); err != nil {
					failed.Store(&err)
					return
				}
				if i%100000 == 0 {
					el := time.Since(t0).Seconds()
					fmt.Fprintf(os.Stderr, "crashtest: filled %d in %.0fs (%.0f msgs/s)\n", i, el, float64(i)/el)
				}
			}
		}()
	}
	wg.Wait()
	if e := failed.Load(); e != nil {
		return res, *e
	}
	if ctx.Err() != nil {
		return res, ctx.Err()
	}
	st := sp.Stats()
	closed = true
	if err := sp.Close(); err != nil {
		return res, err
	}
	res = fillResult{
		Messages:     int(st.Appends),
		Seconds:      time.Since(t0).Seconds(),
		GroupCommits: int64(st.Groups),
	}
	if st.Appends > 0 {
		res.SyncsPerMessage = float64(st.SegmentSyncs) / float64(st.Appends)
	}
	return res, nil
}
