package main

import (
	"context"
	"fmt"
	"io"
	"os/signal"
	"syscall"

	"gannet/engine"
	"gannet/engine/config"
)

// cmdServe is "gannet serve [-config FILE]": load the configuration (the
// embedded default without -config), refuse to start on any problem, then
// run the relay until SIGTERM or SIGINT.
func cmdServe(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("serve", "serve [-config FILE]", stderr)
	path := fs.String("config", "", "config `FILE`; default: the embedded default config (see 'gannet config default')")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the whole run to `FILE` (for go tool pprof)")
	memProfile := fs.String("memprofile", "", "write a heap profile (allocations since start) to `FILE` at exit")
	if st := parseFlags(fs, args); st >= 0 {
		return st
	}
	if fs.NArg() > 0 {
		fs.Usage()
		return 2
	}
	var cfg *config.Config
	if *path == "" {
		cfg = config.Default()
	} else {
		var err error
		if cfg, err = engine.LoadConfig(*path); err != nil {
			fmt.Fprintln(stderr, err)
			fmt.Fprintf(stderr, "gannet serve: %s is not valid; not starting\n", *path)
			return 1
		}
	}

	stopProfiles, err := startProfiles(*cpuProfile, *memProfile)
	if err != nil {
		fmt.Fprintln(stderr, "gannet serve:", err)
		return 1
	}
	defer stopProfiles(stderr)

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if err := run(ctx, cfg); err != nil {
		fmt.Fprintln(stderr, "gannet serve:", err)
		return 1
	}
	return 0
}
