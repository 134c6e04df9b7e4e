package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"gannet/engine/delivery"
	"gannet/engine/outbound"
	"gannet/queue"
	"gannet/resolver"
)

// The restart benchmark (scenario (e) of shared/docs/testing.md): fill a
// spool with n deferred messages straight through queue.Spool (many
// concurrent appenders share group commits), close it, then in a fresh
// process do what engine.New and engine.Start do — queue.Open, then
// delivery.Loop.Load (Spool.ScanReused, one packed message each) — and
// report the time and the resident memory. (engine.Start also counts pending recipients
// per domain for its gauges; that is left out here.)
//
// Each message is what a deferred message looks like: one recipient at one
// of 1000 domains, one failed attempt with its last reply, due in an hour,
// a 600-byte body (bodies stay on disk, so their size does not matter).

const restartRelay = "127.0.0.1:9" // never dialled: the loop is not started

// restartResult is what the measuring child prints (one JSON line).
type restartResult struct {
	Messages     int     `json:"messages"`
	OpenSeconds  float64 `json:"open_seconds"`  // queue.Open: index open + live counts
	ScanSeconds  float64 `json:"scan_seconds"`  // delivery.Loop.Load
	TotalSeconds float64 `json:"total_seconds"` // both
	RSSBefore    int64   `json:"rss_before_bytes"`
	RSSAfter     int64   `json:"rss_after_bytes"` // VmRSS after a GC, messages held
	HWM          int64   `json:"rss_peak_bytes"`  // VmHWM
	HeapInuse    uint64  `json:"heap_inuse_bytes"`
	PerMessage   float64 `json:"rss_bytes_per_message"` // (after - before) / messages
	CPUSeconds   float64 `json:"cpu_seconds"`           // user + system, GC included: steadier than wall time on a shared machine
}

func restartBench(ctx context.Context, work string, n, writers int, cpuProfile, memProfile string) error {
	dir := filepath.Join(work, "spool")
	if _, err := os.Stat(filepath.Join(dir, "index")); err == nil {
		fmt.Fprintf(os.Stderr, "crashtest: reusing the spool in %s\n", dir)
	} else {
		st, err := fillSpool(ctx, dir, n, writers)
		if err != nil {
			return err
		}
		fmt.Printf("fill: %d messages with %d writers in %.1fs: %.0f appends/s, %.3f segment fsyncs/msg, %d group commits\n",
			st.Messages, writers, st.Seconds, float64(st.Messages)/st.Seconds, st.SyncsPerMessage, st.GroupCommits)
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	// Twice: the first run also warms the page cache.
	for i := range 2 {
		args := []string{"-mode", "restart", "-measure", "-dir", dir}
		if i == 1 {
			args = append(args, "-cpuprofile", cpuProfile, "-memprofile", memProfile)
		}
		out, err := exec.CommandContext(ctx, self, args...).Output()
		if err != nil {
			return fmt.Errorf("measuring child: %w", err)
		}
		var r restartResult
		if err := json.Unmarshal(bytes.TrimSpace(out), &r); err != nil {
			return fmt.Errorf("child output %q: %w", out, err)
		}
		fmt.Printf("restart %d (%s cache): %d messages: open %.2fs + load %.2fs = %.2fs wall, %.2fs CPU; RSS %.1f MiB → %.1f MiB (peak %.1f MiB), %.0f bytes RSS per queued message; Go heap in use %.1f MiB\n",
			i+1, map[int]string{0: "cold-ish", 1: "warm"}[i], r.Messages, r.OpenSeconds, r.ScanSeconds, r.TotalSeconds, r.CPUSeconds,
			mib(r.RSSBefore), mib(r.RSSAfter), mib(r.HWM), r.PerMessage, float64(r.HeapInuse)/(1<<20))
	}
	return nil
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }

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

// measureRestart is the child: open, load, measure, print JSON; with
// profile paths, a CPU profile of the whole and a heap profile at the end.
func measureRestart(dir, cpuProfile, memProfile string) int {
	if cpuProfile != "" {
		f, err := os.Create(cpuProfile)
		if err != nil {
			fmt.Fprintln(os.Stderr, "crashtest:", err)
			return 1
		}
		pprof.StartCPUProfile(f)
		defer pprof.StopCPUProfile()
	}
	runtime.GC()
	before := procStatus("VmRSS")
	cpu0 := cpuSeconds()
	t0 := time.Now()
	sp, err := queue.Open(queue.Options{Dir: dir, MinFreeBytes: -1})
	if err != nil {
		fmt.Fprintln(os.Stderr, "crashtest:", err)
		return 1
	}
	defer sp.Close()
	t1 := time.Now()
	loop := delivery.New(delivery.Options{Store: sp, Transport: nopTransport{}, RelayTo: restartRelay})
	n, err := loop.Load(sp, nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, "crashtest:", err)
		return 1
	}
	t2 := time.Now()
	cpu := cpuSeconds() - cpu0
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	r := restartResult{
		Messages:     n,
		OpenSeconds:  t1.Sub(t0).Seconds(),
		ScanSeconds:  t2.Sub(t1).Seconds(),
		TotalSeconds: t2.Sub(t0).Seconds(),
		RSSBefore:    before,
		RSSAfter:     procStatus("VmRSS"),
		HWM:          procStatus("VmHWM"),
		HeapInuse:    ms.HeapInuse,
		CPUSeconds:   cpu,
	}
	if n > 0 {
		r.PerMessage = float64(r.RSSAfter-r.RSSBefore) / float64(n)
	}
	if memProfile != "" {
		if f, err := os.Create(memProfile); err == nil {
			pprof.WriteHeapProfile(f)
			f.Close()
		}
	}
	json.NewEncoder(os.Stdout).Encode(r)
	runtime.KeepAlive(loop)
	return 0
}

func cpuSeconds() float64 {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
}

// procStatus reads a "kB" field of /proc/self/status, in bytes.
func procStatus(field string) int64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		name, rest, ok := strings.Cut(sc.Text(), ":")
		if ok && name == field {
			v, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return v << 10
		}
	}
	return 0
}

// nopTransport is never called: the loop is not started.
type nopTransport struct{}

func (nopTransport) Deliver(context.Context, *resolver.Route, *outbound.Envelope) outbound.Outcome {
	return outbound.Outcome{}
}
func (nopTransport) Close() error { return nil }
