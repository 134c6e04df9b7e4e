package main

import (
	"fmt"
	"io"
	"net/http"
	"text/tabwriter"
	"time"

	"gannet/engine/admin"
)

// cmdCluster is "gannet cluster status": the live nodes of the cluster
// the relay belongs to, with their queue depths and rates (GET
// /api/admin/cluster/v1); a relay without [cluster] says clustering is off.
func cmdCluster(args []string, stdout, stderr io.Writer) int {
	const synopsis = "cluster status  [-api URL] [-key KEY] [-json]"
	fs := newFlags("cluster", synopsis, stderr)
	c := addAPIFlags(fs)
	pos, st := parseInterleaved(fs, args)
	if st >= 0 {
		return st
	}
	if len(pos) != 1 || pos[0] != "status" {
		fs.Usage()
		return 2
	}
	var r admin.ClusterResponse
	ok, err := c.call(stdout, http.MethodGet, admin.PathCluster, nil, nil, &r)
	if err != nil {
		return fail(stderr, "cluster", err)
	}
	if !ok {
		return 0
	}
	if !r.Enabled {
		fmt.Fprintln(stdout, r.Message)
		return 0
	}
	fmt.Fprintf(stdout, "%d nodes (answered by %s)\n", len(r.Nodes), r.Node)
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NODE\tADMIN\tQUEUED\tIN/S\tOUT/S\tUP\tLAST BEAT")
	for _, n := range r.Nodes {
		id := n.ID
		if id == r.Node {
			id += " *"
		}
		admin := n.Admin
		if admin == "" {
			admin = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%.1f\t%.1f\t%s\t%s ago\n", id, admin, n.QueueDepth, n.InPerSec, n.OutPerSec,
			n.LastBeat.Sub(n.Started).Round(time.Second), time.Since(n.LastBeat).Round(100*time.Millisecond))
	}
	tw.Flush()
	return 0
}
