package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"text/tabwriter"
	"time"

	"gannet/engine/admin"
)

// cmdCluster is "gannet cluster status": the live nodes of the cluster
// the relay belongs to, with their queue depths and rates (GET
// /api/admin/cluster/v1); a relay without [cluster] says clustering is off.
func cmdCluster(args []string, stdout, stderr io.Writer) int {
	var r admin.ClusterResponse
	if done, st := statusCall("cluster", admin.PathCluster, &r, args, stdout, stderr); done {
		return st
	}
	if !r.Enabled {
		fmt.Fprintln(stdout, r.Message)
		return 0
	}
	fmt.Fprintf(stdout, "%d nodes (answered by %s)\n", len(r.Nodes), r.Node)
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NODE\tADMIN\tSMTP\tQUEUED\tIN/S\tOUT/S\tUP\tLAST BEAT")
	for _, n := range r.Nodes {
		id := n.ID
		if id == r.Node {
			id += " *"
		}
		admin := n.Admin
		if admin == "" {
			admin = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%.1f\t%.1f\t%s\t%s ago\n", id, admin, orDash(n.SMTP), n.QueueDepth, n.InPerSec, n.OutPerSec,
			n.LastBeat.Sub(n.Started).Round(time.Second), time.Since(n.LastBeat).Round(100*time.Millisecond))
	}
	tw.Flush()
	return 0
}

// clusterSummary is "gannet queue summary -cluster": the live nodes (GET
// /api/admin/cluster/v1 of the node -api names), then each node's queue
// summary from the admin address it registered (same scheme and key),
// summed by admin.MergeSummaries. A node that does not answer is named on
// stderr and the exit status is 1, after the sum of those that did.
func clusterSummary(c *apiClient, stdout, stderr io.Writer) int {
	var r admin.ClusterResponse
	asJSON := c.json
	c.json = false
	if _, err := c.call(stdout, http.MethodGet, admin.PathCluster, nil, nil, &r); err != nil {
		return fail(stderr, "queue summary -cluster", err)
	}
	if !r.Enabled {
		return fail(stderr, "queue summary -cluster", errors.New(r.Message))
	}
	base, err := url.Parse(c.api)
	if err != nil {
		return fail(stderr, "queue summary -cluster", err)
	}
	var (
		sums   []admin.QueueSummaryV1
		lines  []string
		status int
	)
	for _, n := range r.Nodes {
		if n.Admin == "" {
			fmt.Fprintf(stderr, "gannet queue summary -cluster: node %s registered no admin API address\n", n.ID)
			status = 1
			continue
		}
		nc := *c
		nc.api = base.Scheme + "://" + n.Admin
		nc.config = ""
		var s admin.QueueSummaryV1
		if _, err := nc.call(stdout, http.MethodGet, admin.PathQueueSummary, nil, nil, &s); err != nil {
			fmt.Fprintf(stderr, "gannet queue summary -cluster: node %s: %v\n", n.ID, err)
			status = 1
			continue
		}
		sums = append(sums, s)
		lines = append(lines, fmt.Sprintf("%s %d", n.ID, s.Totals.Messages))
	}
	merged := admin.MergeSummaries(sums)
	if asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		enc.Encode(merged)
		return status
	}
	fmt.Fprintf(stdout, "cluster: %d of %d nodes answered (messages: %s)\n\n", len(sums), len(r.Nodes), strings.Join(lines, ", "))
	printSummary(stdout, &merged)
	return status
}

// statusCall is the part "gannet NAME status [-api URL] [-key KEY] [-json]"
// commands share: flags, then GET path into out. It reports done (with the
// exit status) when nothing is left to print: a usage error, a failed
// call, or -json (the answer was printed as it is).
func statusCall(name, path string, out any, args []string, stdout, stderr io.Writer) (done bool, status int) {
	fs := newFlags(name, name+" status  [-api URL] [-key KEY] [-json]", stderr)
	c := addAPIFlags(fs)
	pos, st := parseInterleaved(fs, args)
	if st >= 0 {
		return true, st
	}
	if len(pos) != 1 || pos[0] != "status" {
		fs.Usage()
		return true, 2
	}
	ok, err := c.call(stdout, http.MethodGet, path, nil, nil, out)
	if err != nil {
		return true, fail(stderr, name, err)
	}
	return !ok, 0
}
