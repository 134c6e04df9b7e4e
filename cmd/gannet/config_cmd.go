package main

import (
	"errors"
	"fmt"
	"io"

	"gannet/engine"
	"gannet/engine/config"
)

// cmdConfig is "gannet config default" and "gannet config show [-config
// FILE] [-changed]".
func cmdConfig(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("config", "config default | config show [-config FILE] [-changed]", stderr)
	if st := parseFlags(fs, args); st >= 0 {
		return st
	}
	switch fs.Arg(0) {
	case "default":
		if fs.NArg() != 1 {
			break
		}
		stdout.Write(config.DefaultTOML())
		return 0
	case "show":
		return cmdConfigShow(fs.Args()[1:], stdout, stderr)
	}
	fs.Usage()
	return 2
}

// cmdConfigShow is "gannet config show": the effective configuration of
// FILE (the built-in one without -config) as TOML, every key or, with
// -changed, those that differ from the built-in values (as Postfix's
// postconf -n); secrets redacted. A file that does not load is reported as
// check-config does, with exit 1.
func cmdConfigShow(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("config show", "config show [-config FILE] [-changed]", stderr)
	path := fs.String("config", "", "config `FILE` (TOML, or a Lua script); the built-in configuration without it")
	changed := fs.Bool("changed", false, "show only the keys whose value differs from the built-in configuration")
	if st := parseFlags(fs, args); st >= 0 {
		return st
	}
	if fs.NArg() > 0 {
		fs.Usage()
		return 2
	}
	c := config.Default()
	if *path != "" {
		var err error
		if c, err = engine.LoadConfig(*path); err != nil {
			printConfigErrors(stdout, *path, err)
			return 1
		}
	}
	stdout.Write(config.Show(c, *changed))
	return 0
}

// printConfigErrors prints the problems of a configuration file, one
// FILE:LINE: line each.
func printConfigErrors(w io.Writer, path string, err error) {
	var es config.Errors
	if !errors.As(err, &es) {
		es = config.Errors{{File: path, Msg: err.Error()}}
	}
	for _, e := range es {
		fmt.Fprintln(w, e)
	}
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
		printConfigErrors(stdout, *path, err)
		return 1
	}
	fmt.Fprintf(stdout, "%s: ok\n", *path)
	return 0
}
