package main

import (
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"text/tabwriter"

	"gannet/engine/admin"
	"gannet/engine/tlsrpt"
)

// cmdTLSRPT is "gannet tlsrpt": what TLS reporting (RFC 8460) has counted
// and sent, over the admin API (GET /api/admin/tls-reports/v1), and "send"
// to send a day's reports now (POST).
func cmdTLSRPT(args []string, stdout, stderr io.Writer) int {
	const synopsis = "tlsrpt list | show DOMAIN [-day YYYY-MM-DD] | send [-day YYYY-MM-DD]  [-api URL] [-key KEY] [-json]"
	fs := newFlags("tlsrpt", synopsis, stderr)
	c := addAPIFlags(fs)
	day := fs.String("day", "", "show, send: the UTC `day` (default today)")
	pos, st := parseInterleaved(fs, args)
	if st >= 0 {
		return st
	}
	switch {
	case len(pos) == 1 && pos[0] == "list" && *day == "":
		return tlsrptList(c, stdout, stderr)
	case len(pos) == 2 && pos[0] == "show":
		return tlsrptShow(c, pos[1], *day, stdout, stderr)
	case len(pos) == 1 && pos[0] == "send":
		var d tlsrpt.DaySummary
		ok, err := c.call(stdout, http.MethodPost, admin.PathTLSReports, nil, admin.TLSReportSendRequest{Day: *day}, &d)
		if err != nil {
			return fail(stderr, "tlsrpt", err)
		}
		if ok {
			printTLSDay(stdout, &d)
		}
		return 0
	}
	fs.Usage()
	return 2
}

func tlsrptList(c *apiClient, stdout, stderr io.Writer) int {
	var l admin.TLSReportList
	ok, err := c.call(stdout, http.MethodGet, admin.PathTLSReports, nil, nil, &l)
	if err != nil {
		return fail(stderr, "tlsrpt", err)
	}
	if !ok {
		return 0
	}
	if !l.Enabled {
		fmt.Fprintln(stdout, "TLS reporting is off ([tls] tlsrpt = false): nothing is counted or sent.")
	}
	if len(l.Days) == 0 {
		fmt.Fprintln(stdout, "Nothing counted yet.")
		return 0
	}
	for i := range l.Days {
		printTLSDay(stdout, &l.Days[i])
	}
	return 0
}

// printTLSDay prints one day: its domains' counts and reports.
func printTLSDay(w io.Writer, d *tlsrpt.DaySummary) {
	state := "counting"
	switch {
	case d.Done:
		state = "reported"
	case d.Due != nil:
		state = "reports due " + d.Due.UTC().Format("2006-01-02 15:04:05Z")
	}
	fmt.Fprintf(w, "%s  (%s)\n", d.Day, state)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  DOMAIN\tPOLICIES\tSUCCESSFUL\tFAILED\tREPORT\tSENT TO")
	for _, dm := range d.Domains {
		rep, to := "-", "-"
		if r := dm.Report; r != nil {
			rep = r.Status
			var sent []string
			for _, dl := range r.Deliveries {
				if dl.Done {
					sent = append(sent, dl.URI)
				}
			}
			if len(sent) > 0 {
				to = strings.Join(sent, " ")
			}
		}
		fmt.Fprintf(tw, "  %s\t%s\t%d\t%d\t%s\t%s\n", dm.Domain, strings.Join(dm.Policies, ","), dm.Successful, dm.Failed, rep, to)
	}
	tw.Flush()
	if d.DroppedDomains > 0 {
		fmt.Fprintf(w, "  (%d sessions of domains past the cap not counted)\n", d.DroppedDomains)
	}
}

func tlsrptShow(c *apiClient, domain, day string, stdout, stderr io.Writer) int {
	q := url.Values{"domain": {domain}}
	if day != "" {
		q.Set("day", day)
	}
	var d admin.TLSReportDetail
	ok, err := c.call(stdout, http.MethodGet, admin.PathTLSReports, q, nil, &d)
	if err != nil {
		return fail(stderr, "tlsrpt", err)
	}
	if !ok {
		return 0
	}
	fmt.Fprintf(stdout, "%s on %s\n", d.Domain, d.Day)
	for _, p := range d.Counts.Policies {
		fmt.Fprintf(stdout, "\npolicy %s", p.Type)
		if len(p.MX) > 0 {
			fmt.Fprintf(stdout, " (mx %s)", strings.Join(p.MX, ", "))
		}
		fmt.Fprintf(stdout, ": %d successful, %d failed\n", p.Success, p.Failure)
		if len(p.Details) == 0 {
			continue
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "  RESULT\tMX\tRECEIVING IP\tSENDING IP\tCOUNT\tREASON")
		for _, r := range p.Details {
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%d\t%s\n", r.ResultType, orDash(r.ReceivingMX), orDash(r.ReceivingIP), orDash(r.SendingIP), r.Count, orDash(r.ReasonCode))
		}
		tw.Flush()
		if p.Undetailed > 0 {
			fmt.Fprintf(stdout, "  (%d failures past the cap of detail rows)\n", p.Undetailed)
		}
	}
	if r := d.Report; r != nil {
		fmt.Fprintf(stdout, "\nreport %s: %s", orDash(r.ReportID), r.Status)
		if r.Error != "" {
			fmt.Fprintf(stdout, " (%s)", r.Error)
		}
		fmt.Fprintln(stdout)
		for _, dl := range r.Deliveries {
			st := "pending"
			switch {
			case dl.Done:
				st = "sent " + dl.Sent.UTC().Format("2006-01-02 15:04:05Z")
			case dl.GaveUp:
				st = "gave up"
			}
			fmt.Fprintf(stdout, "  %s: %s after %d attempt(s)", dl.URI, st, dl.Attempts)
			if dl.Error != "" && !dl.Done {
				fmt.Fprintf(stdout, "; %s", dl.Error)
			}
			fmt.Fprintln(stdout)
		}
	} else {
		fmt.Fprintln(stdout, "\nno report made yet")
	}
	return 0
}
