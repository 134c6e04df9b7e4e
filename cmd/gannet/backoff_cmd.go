package main

import (
	"fmt"
	"io"
	"net/http"
	"net/url"
	"text/tabwriter"
	"time"

	"gannet/engine/admin"
)

// cmdBackoff is "gannet backoff [-site S]": the sites in backoff mode;
// "-end SITE" returns one to normal (GET and DELETE
// /api/admin/backoff/v1).
func cmdBackoff(args []string, stdout, stderr io.Writer) int {
	const synopsis = "backoff [-site S] | backoff -end SITE  [-api URL] [-key KEY] [-json]"
	fs := newFlags("backoff", synopsis, stderr)
	site := fs.String("site", "", "only this site")
	end := fs.String("end", "", "return this site to normal")
	c := addAPIFlags(fs)
	pos, st := parseInterleaved(fs, args)
	if st >= 0 {
		return st
	}
	if len(pos) > 0 || (*end != "" && *site != "") {
		fs.Usage()
		return 2
	}
	if *end != "" {
		var r map[string]string
		ok, err := c.call(stdout, http.MethodDelete, admin.PathBackoff, url.Values{"site": {*end}}, nil, &r)
		if err != nil {
			return fail(stderr, "backoff", err)
		}
		if ok {
			fmt.Fprintf(stdout, "%s is back to normal\n", *end)
		}
		return 0
	}
	var q url.Values
	if *site != "" {
		q = url.Values{"site": {*site}}
	}
	var r admin.BackoffResponse
	ok, err := c.call(stdout, http.MethodGet, admin.PathBackoff, q, nil, &r)
	if err != nil {
		return fail(stderr, "backoff", err)
	}
	if !ok {
		return 0
	}
	if len(r.Sites) == 0 {
		fmt.Fprintln(stdout, "No site is in backoff.")
		return 0
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	printBackoffs(tw, r.Sites)
	tw.Flush()
	return 0
}

// printBackoffs prints the sites in backoff as a table.
func printBackoffs(tw io.Writer, sites []admin.BackoffEntry) {
	fmt.Fprintln(tw, "BACKOFF SITE\tSINCE\tUNTIL\tDELIVERIES\tRATE\tRETRY AFTER\tREASON")
	for _, b := range sites {
		until := "-"
		if b.Until != nil {
			until = b.Until.Local().Format(time.RFC3339)
		}
		deliveries := "-"
		if b.ToNormalAfterDeliveries > 0 {
			deliveries = fmt.Sprintf("%d/%d", b.Delivered, b.ToNormalAfterDeliveries)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", b.Site, b.Since.Local().Format(time.RFC3339), until,
			deliveries, rate(b.Rate), b.RetryAfter, b.Reason)
	}
}
