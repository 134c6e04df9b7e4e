package main

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"text/tabwriter"

	"gannet/engine/admin"
)

// cmdXfer is "gannet xfer -to NODE|host:port -domain D …" (hand the
// node's queued mail for a selector to another node over SMTP, before
// retiring it), "xfer -list" and "xfer -cancel ID" (POST, GET, DELETE
// /api/admin/xfer/v1).
func cmdXfer(args []string, stdout, stderr io.Writer) int {
	const synopsis = "xfer -to NODE|host:port -domain D [-tenant T] [-campaign C] [-site S] [-reason R] | xfer -list | xfer -cancel ID  [-api URL] [-key KEY] [-json]"
	fs := newFlags("xfer", synopsis, stderr)
	c := addAPIFlags(fs)
	rf := addRuleFlags(fs, "hand over")
	to := fs.String("to", "", "the node to hand the mail to: its `id` in gannet cluster status (its SMTP address), or its SMTP listener's host:port")
	list := fs.Bool("list", false, "list the xfer rules in force")
	cancel := fs.String("cancel", "", "cancel the xfer rule with this `id`")
	pos, st := parseInterleaved(fs, args)
	if st >= 0 {
		return st
	}
	if len(pos) > 0 {
		fs.Usage()
		return 2
	}
	switch {
	case *list:
		return listXfers(c, stdout, stderr)
	case *cancel != "":
		var e admin.RuleEntry
		ok, err := c.call(stdout, http.MethodDelete, admin.PathXfer, nil, admin.CancelRequest{ID: *cancel}, &e)
		if err != nil {
			return fail(stderr, "xfer", err)
		}
		if ok {
			fmt.Fprintf(stdout, "xfer %s to %s cancelled\n", e.ID, e.Target)
		}
		return 0
	case *to == "" || rf.empty():
		fmt.Fprintln(stderr, "gannet xfer: give -to and at least one of -domain, -tenant, -campaign, -site (or -list, -cancel ID)")
		fs.Usage()
		return 2
	}
	target, err := xferTarget(c, *to)
	if err != nil {
		return fail(stderr, "xfer", err)
	}
	req := admin.XferRequest{To: target, Domain: rf.domain, Tenant: rf.tenant, Campaign: rf.campaign, Site: rf.site, Reason: rf.reason}
	var r admin.XferV1Response
	ok, err := c.call(stdout, http.MethodPost, admin.PathXfer, nil, req, &r)
	if err != nil {
		return fail(stderr, "xfer", err)
	}
	if ok {
		fmt.Fprintf(stdout, "xfer %s in force: matching mail goes to %s (%d deferred message(s), %d recipient(s) due now); cancel with: gannet xfer -cancel %s\n",
			r.ID, r.Target, r.Retried, r.Recipients, r.ID)
	}
	return 0
}

// xferTarget resolves -to: a node of the cluster (gannet cluster status)
// by id, to the SMTP address it registered; else a host:port as it is.
func xferTarget(c *apiClient, to string) (string, error) {
	nc := *c
	nc.json = false
	var r admin.ClusterResponse
	_, cerr := nc.call(io.Discard, http.MethodGet, admin.PathCluster, nil, nil, &r)
	if cerr == nil && r.Enabled {
		for _, n := range r.Nodes {
			if n.ID != to {
				continue
			}
			switch {
			case n.ID == r.Node:
				return "", fmt.Errorf("node %s is the node asked: hand its mail to another one", to)
			case n.SMTP == "":
				return "", fmt.Errorf("node %s registered no SMTP listener address", to)
			}
			return n.SMTP, nil
		}
	}
	if _, _, err := net.SplitHostPort(to); err == nil {
		return to, nil
	}
	if cerr != nil {
		return "", fmt.Errorf("-to %s: not host:port, and the cluster's nodes cannot be listed: %w", to, cerr)
	}
	if !r.Enabled {
		return "", errors.New("-to " + to + ": not host:port, and clustering is off: give the other node's SMTP listener as host:port")
	}
	return "", fmt.Errorf("-to %s: no such live node in the cluster (gannet cluster status), and not host:port", to)
}

// listXfers prints the xfer rules in force.
func listXfers(c *apiClient, stdout, stderr io.Writer) int {
	var rules []admin.RuleEntry
	ok, err := c.call(stdout, http.MethodGet, admin.PathXfer, nil, nil, &rules)
	if err != nil {
		return fail(stderr, "xfer", err)
	}
	if !ok {
		return 0
	}
	if len(rules) == 0 {
		fmt.Fprintln(stdout, "No xfer rules in force.")
		return 0
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tTARGET\tDOMAIN\tTENANT\tCAMPAIGN\tSITE\tCREATED\tREASON")
	for _, r := range rules {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.ID, r.Target, orDash(r.Domain), orDash(r.Tenant),
			orDash(r.Campaign), orDash(r.Site), r.Created.UTC().Format("2006-01-02T15:04:05Z"), orDash(r.Reason))
	}
	tw.Flush()
	return 0
}
