package main

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"gannet/engine/admin"
)

// cmdEvents is "gannet events status": each [[event_sink]] with its
// backlog, what it shipped, refused, expired and dropped since the start,
// its last success and its last error (GET /api/admin/events/v1).
func cmdEvents(args []string, stdout, stderr io.Writer) int {
	var r admin.EventsResponse
	if done, st := statusCall("events", admin.PathEvents, &r, args, stdout, stderr); done {
		return st
	}
	if len(r.Sinks) == 0 {
		fmt.Fprintln(stdout, "no event sinks: the configuration has no [[event_sink]]")
		return 0
	}
	now := time.Now()
	ago := func(t *time.Time) string {
		if t == nil {
			return "never"
		}
		return now.Sub(*t).Round(time.Second).String() + " ago"
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SINK\tKIND\tBACKLOG\tSHIPPED\tREJECTED\tEXPIRED\tDROPPED\tLAST SUCCESS\tLAST ERROR")
	for _, s := range r.Sinks {
		lastErr := "-"
		if s.LastError != "" {
			lastErr = ago(s.LastErrorAt) + ": " + strings.ReplaceAll(s.LastError, "\n", " ")
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%d\t%d\t%s\t%s\n", s.Name, s.Kind, s.Backlog, s.Shipped, s.Rejected,
			s.Expired, s.Dropped, ago(s.LastSuccess), lastErr)
	}
	tw.Flush()
	return 0
}
