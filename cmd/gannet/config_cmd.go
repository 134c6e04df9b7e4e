package main

import (
	"errors"
	"fmt"
	"io"

	"gannet/engine"
	"gannet/engine/config"
)

// cmdConfig is "gannet config default".
func cmdConfig(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("config", "config default", stderr)
	if st := parseFlags(fs, args); st >= 0 {
		return st
	}
	if fs.NArg() != 1 || fs.Arg(0) != "default" {
		fs.Usage()
		return 2
	}
	stdout.Write(config.DefaultTOML())
	return 0
}

// cmdCheckConfig is "gannet check-config -config FILE" (TOML, or a Lua
// script when FILE ends in .lua): every problem as a FILE:LINE: line on
// stdout and exit 1, or "FILE: ok" and exit 0.
func cmdCheckConfig(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("check-config", "check-config -config FILE", stderr)
	path := fs.String("config", "", "config `FILE` to check")
	if st := parseFlags(fs, args); st >= 0 {
		return st
	}
	if *path == "" && fs.NArg() == 1 {
		*path = fs.Arg(0) // also accept the file as an argument
	} else if fs.NArg() > 0 {
		fs.Usage()
		return 2
	}
	if *path == "" {
		fmt.Fprintln(stderr, "gannet check-config: -config FILE is required")
		fs.Usage()
		return 2
	}
	if _, err := engine.LoadConfig(*path); err != nil {
		var es config.Errors
		if !errors.As(err, &es) {
			es = config.Errors{{File: *path, Msg: err.Error()}}
		}
		for _, e := range es {
			fmt.Fprintln(stdout, e)
		}
		return 1
	}
	fmt.Fprintf(stdout, "%s: ok\n", *path)
	return 0
}
