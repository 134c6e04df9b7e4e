package main

import (
	"fmt"
	"io"
	"net/http"

	"gannet/engine/admin"
)

// cmdDrain is "gannet drain [-off]": the node stops taking new mail (SMTP
// 421 4.3.2, HTTP inject 503) while it delivers what it holds, for a
// rolling restart; -off takes mail again; -status only prints the state
// (POST and GET /api/admin/drain/v1).
func cmdDrain(args []string, stdout, stderr io.Writer) int {
	const synopsis = "drain [-off] [-status]  [-api URL] [-key KEY] [-json]"
	fs := newFlags("drain", synopsis, stderr)
	off := fs.Bool("off", false, "take new mail again")
	status := fs.Bool("status", false, "only print whether the node is draining")
	c := addAPIFlags(fs)
	pos, st := parseInterleaved(fs, args)
	if st >= 0 {
		return st
	}
	if len(pos) > 0 || (*off && *status) {
		fs.Usage()
		return 2
	}
	var r admin.DrainResponse
	var ok bool
	var err error
	if *status {
		ok, err = c.call(stdout, http.MethodGet, admin.PathDrain, nil, nil, &r)
	} else {
		ok, err = c.call(stdout, http.MethodPost, admin.PathDrain, nil, admin.DrainRequest{Off: *off}, &r)
	}
	if err != nil {
		return fail(stderr, "drain", err)
	}
	if ok {
		if r.Draining {
			fmt.Fprintln(stdout, "draining: new mail is refused (SMTP 421 4.3.2, HTTP 503); queued mail is still delivered")
		} else {
			fmt.Fprintln(stdout, "not draining: taking mail")
		}
	}
	return 0
}
