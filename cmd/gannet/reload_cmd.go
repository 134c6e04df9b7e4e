package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"

	"gannet/engine/admin"
)

// cmdReload is "gannet reload": the relay re-reads its configuration file
// and applies it, as on SIGHUP (POST /api/admin/reload/v1). It prints what
// was applied and what needs a restart, or every problem of a file the
// relay refused (then nothing was applied, and the exit status is 1).
func cmdReload(args []string, stdout, stderr io.Writer) int {
	const synopsis = "reload  [-api URL] [-key KEY] [-config FILE] [-json]"
	fs := newFlags("reload", synopsis, stderr)
	c := addAPIFlags(fs)
	pos, st := parseInterleaved(fs, args)
	if st >= 0 {
		return st
	}
	if len(pos) > 0 {
		fs.Usage()
		return 2
	}
	data, err := c.do(http.MethodPost, admin.PathReload, nil, nil)
	var ae *apiError
	if errors.As(err, &ae) && ae.status == http.StatusUnprocessableEntity {
		data, err = ae.body, nil // refused: the answer lists the problems
	}
	if err != nil {
		return fail(stderr, "reload", err)
	}
	var r admin.ReloadResponse
	if err := json.Unmarshal(data, &r); err != nil {
		return fail(stderr, "reload", fmt.Errorf("the API's answer is not what this gannet expects: %w", err))
	}
	if c.json {
		stdout.Write(data)
		if len(data) > 0 && data[len(data)-1] != '\n' {
			io.WriteString(stdout, "\n")
		}
	} else {
		printReload(stdout, stderr, r)
	}
	if len(r.Errors) > 0 {
		return 1
	}
	return 0
}

// printReload writes a reload's answer for people.
func printReload(stdout, stderr io.Writer, r admin.ReloadResponse) {
	file := r.File
	if file == "" {
		file = "the embedded default config"
	}
	if len(r.Errors) > 0 {
		fmt.Fprintf(stderr, "gannet reload: %s not applied; the relay keeps its running configuration:\n", file)
		for _, e := range r.Errors {
			fmt.Fprintf(stderr, "  %s\n", e)
		}
		return
	}
	fmt.Fprintf(stdout, "reloaded %s\n", file)
	for _, a := range r.Applied {
		fmt.Fprintf(stdout, "applied: %s\n", a)
	}
	for _, n := range r.NeedsRestart {
		fmt.Fprintf(stdout, "needs a restart: %s\n", n)
	}
}
