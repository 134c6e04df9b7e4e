// Package clustertest starts nodes of a Gannet cluster (engine/cluster)
// for the tests of the packages that use its shared limits.
package clustertest

import (
	"testing"
	"time"

	"gannet/engine/cluster"
)

// Node starts the node id of the cluster at url (a redistest.Server's URL)
// under the key prefix "t:", and stops it at the test's end.
func Node(t testing.TB, url, id string) *cluster.Cluster {
	t.Helper()
	c, err := cluster.New(cluster.Options{URL: url, NodeID: id, KeyPrefix: "t:",
		Heartbeat: 200 * time.Millisecond, NodeTTL: 2 * time.Second, Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	c.Start("", "")
	t.Cleanup(c.Stop)
	return c
}
