package admin

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"

	"gannet/engine/cluster"
)

type fakeCluster struct {
	nodes []cluster.Node
	err   error
}

func (f fakeCluster) NodeID() string { return "node-a" }
func (f fakeCluster) Nodes(context.Context) ([]cluster.Node, error) {
	return f.nodes, f.err
}

// TestClusterEndpoint: without a cluster the answer says clustering is
// off (200, not an error); with one it lists the nodes; 503 when Redis
// cannot be read.
func TestClusterEndpoint(t *testing.T) {
	get := func(c Cluster) (int, ClusterResponse, string) {
		rec := httptest.NewRecorder()
		New(Options{Cluster: c}).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, PathCluster, nil))
		var r ClusterResponse
		json.Unmarshal(rec.Body.Bytes(), &r)
		return rec.Code, r, rec.Body.String()
	}
	if st, r, body := get(nil); st != 200 || r.Enabled || r.Message != ClusterOff || r.Nodes == nil {
		t.Errorf("without a cluster: %d %s", st, body)
	}
	nodes := []cluster.Node{{ID: "node-a", QueueDepth: 3}, {ID: "node-b"}}
	if st, r, body := get(fakeCluster{nodes: nodes}); st != 200 || !r.Enabled || r.Node != "node-a" || len(r.Nodes) != 2 || r.Nodes[0].QueueDepth != 3 {
		t.Errorf("with a cluster: %d %s", st, body)
	}
	if st, _, body := get(fakeCluster{err: errors.New("dial tcp: connection refused")}); st != http.StatusServiceUnavailable {
		t.Errorf("Redis down: %d %s", st, body)
	}
}
