// Command crashtest checks that Gannet never loses an acknowledged message,
// and fills a spool for the restart scenario of make bench.
//
//	crashtest -mode crash -kills 50            # SIGKILL bin/gannet under load, verify (make crashtest)
//	crashtest -mode diskfull                   # fill a 64 MiB tmpfs spool (root), verify 452 4.3.1 and recovery
//	crashtest -mode fill -n 1000000 -dir SPOOL # only fill SPOOL (for bin/gannet serve); one JSON line
//
// The crash and disk-full scenarios live in package crash (see its doc.go);
// the spool fill in fill.go. Exit status 1 means a lost, altered or crashed
// result, more duplicates than the kills left on the wire (-dup-slack), or
// a failed fill; 2 bad flags.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"gannet/bench/crashtest/crash"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:]))
}

func run(ctx context.Context, args []string) int {
	fs := flag.NewFlagSet("crashtest", flag.ContinueOnError)
	mode := fs.String("mode", "crash", "crash | diskfull | fill")
	bin := fs.String("bin", "bin", "directory holding gannet, smtpblast and smtpsink")
	dir := fs.String("dir", "", "work directory (default: a new temp dir, removed unless -keep)")
	keep := fs.Bool("keep", false, "keep the work directory")
	kills := fs.Int("kills", 50, "crash: SIGKILLs")
	minLife := fs.Duration("min-life", time.Second, "crash: shortest gannet lifetime under load")
	maxLife := fs.Duration("max-life", 6*time.Second, "crash: longest gannet lifetime under load")
	conns := fs.Int("connections", 8, "crash: smtpblast connections")
	size := fs.String("size", "2k", "crash: message size")
	rate := fs.String("rate", "", `crash: smtpblast -rate (e.g. "300/s"; "" = unlimited)`)
	faults := fs.String("sink-fail", "dot:451:0.05", "crash: smtpsink -fail specs, comma-separated (retries under kills)")
	seed := fs.Uint64("seed", 0, "crash: random seed (0: clock)")
	dupSlack := fs.Int("dup-slack", 0, "crash: fail when duplicates exceed the bound (messages in DATA on gannet's connections at the kills) by more than this; -1: never")
	n := fs.Int("n", 1_000_000, "fill: messages to queue")
	writers := fs.Int("writers", 256, "fill: concurrent appenders while filling")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *mode == "fill" {
		// -dir is the spool itself here, and it is kept: filling it is the point.
		if err := fillOnly(ctx, *dir, *n, *writers); err != nil {
			fmt.Fprintln(os.Stderr, "crashtest:", err)
			return 1
		}
		return 0
	}
	work := *dir
	if work == "" {
		d, err := os.MkdirTemp("", "gannet-crashtest-")
		if err != nil {
			fmt.Fprintln(os.Stderr, "crashtest:", err)
			return 1
		}
		work = d
		if !*keep {
			defer os.RemoveAll(work)
		}
	}
	bins := crash.Binaries{
		Gannet: filepath.Join(*bin, "gannet"),
		Blast:  filepath.Join(*bin, "smtpblast"),
		Sink:   filepath.Join(*bin, "smtpsink"),
	}
	switch *mode {
	case "crash":
		cfg := crash.Config{
			Binaries: bins, Dir: work, Kills: *kills, MinLife: *minLife, MaxLife: *maxLife,
			Connections: *conns, Size: *size, Rate: *rate, Seed: *seed, Log: os.Stderr,
		}
		for _, f := range strings.Split(*faults, ",") {
			if f = strings.TrimSpace(f); f != "" {
				cfg.SinkFaults = append(cfg.SinkFaults, f)
			}
		}
		rep, err := crash.Run(ctx, cfg)
		if err != nil {
			fmt.Fprintln(os.Stderr, "crashtest:", err)
			return 1
		}
		fmt.Println(rep)
		for _, n := range rep.Notes {
			fmt.Println("note:", n)
		}
		if !rep.OK() {
			return 1
		}
		if *dupSlack >= 0 && !rep.DuplicatesBounded(*dupSlack) {
			fmt.Printf("duplicates %d exceed the bound %d (+%d): delivery outcomes were lost at the kills\n", rep.Duplicates, rep.DupBound, *dupSlack)
			return 1
		}
	case "diskfull":
		rep, err := crash.RunDiskFull(ctx, crash.DiskFullConfig{Binaries: bins, Dir: work, Log: os.Stderr})
		if err != nil {
			fmt.Fprintln(os.Stderr, "crashtest:", err)
			return 1
		}
		fmt.Printf("%s\nfree at 452: %d bytes; resumed: %v after %v; acknowledged after: %d\n",
			&rep.Report, rep.FreeAtFull, rep.Resumed, rep.ResumeAfter.Round(time.Millisecond), rep.AfterAcked)
		for _, n := range rep.Notes {
			fmt.Println("note:", n)
		}
		if !rep.OK() || !rep.Resumed || rep.Refused452 == 0 {
			return 1
		}
	default:
		fmt.Fprintf(os.Stderr, "crashtest: unknown -mode %q\n", *mode)
		return 2
	}
	return 0
}
