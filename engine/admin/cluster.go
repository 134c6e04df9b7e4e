package admin

import (
	"context"
	"net/http"

	"gannet/engine/cluster"
)

// PathCluster lists the nodes of the cluster ([cluster]; engine/cluster).
const PathCluster = "/api/admin/cluster/v1"

// Cluster is what the admin API needs of the node's cluster view
// (*cluster.Cluster).
type Cluster interface {
	NodeID() string
	Nodes(ctx context.Context) ([]cluster.Node, error)
}

// ClusterResponse is the answer of GET /api/admin/cluster/v1. Without
// [cluster] redis, Enabled is false and Message says so.
type ClusterResponse struct {
	Enabled bool           `json:"enabled"`
	Message string         `json:"message,omitempty"`
	Node    string         `json:"node,omitempty"` // the node that answers
	Nodes   []cluster.Node `json:"nodes"`          // the live nodes, by id
}

// ClusterOff is ClusterResponse.Message of a node that is not clustered.
const ClusterOff = "clustering is off: [cluster] redis is not set in this node's configuration"

// clusterStatus serves GET /api/admin/cluster/v1; 503 when Redis cannot
// be read.
func (h *handler) clusterStatus(w http.ResponseWriter, r *http.Request, c caller) *apiError {
	if err := operatorOnly(c, "the cluster's nodes are the operator's"); err != nil {
		return err
	}
	if h.opts.Cluster == nil {
		writeJSON(w, http.StatusOK, ClusterResponse{Message: ClusterOff, Nodes: []cluster.Node{}})
		return nil
	}
	nodes, err := h.opts.Cluster.Nodes(r.Context())
	if err != nil {
		return fail(http.StatusServiceUnavailable, "the cluster's Redis cannot be read: %v", err)
	}
	writeJSON(w, http.StatusOK, ClusterResponse{Enabled: true, Node: h.opts.Cluster.NodeID(), Nodes: nodes})
	return nil
}
