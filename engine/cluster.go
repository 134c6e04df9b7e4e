package engine

import (
	"gannet/engine/cluster"
	"gannet/engine/config"
)

// buildCluster prepares the node's view of the cluster ([cluster] redis;
// engine/cluster); nothing without it. Nothing is sent to Redis before
// startCluster.
func (e *Engine) buildCluster() error {
	c := &e.cfg.Cluster
	if !c.On() {
		return nil
	}
	cl, err := cluster.New(cluster.Options{
		URL:          c.Redis,
		NodeID:       c.NodeID,
		KeyPrefix:    c.KeyPrefix,
		Heartbeat:    c.Heartbeat.Duration,
		NodeTTL:      c.NodeTTL.Duration,
		Timeout:      c.RedisTimeout.Duration,
		Stats:        clusterStats{e},
		OnRedisError: e.metrics.RedisErrors.Inc,
		OnRedisCall:  e.metrics.RedisCall,
		Logger:       e.log.With("part", "cluster"),
		Now:          e.now,
	})
	if err != nil {
		return err
	}
	e.cluster = cl
	e.shareSuppression() // cluster_suppress.go
	return nil
}

// startCluster registers the node, with the address of its first HTTP
// listener that serves the admin API and that of its first SMTP listener
// (where gannet xfer hands it mail), starts its heartbeat and shares its
// admin rules (reconciled with the cluster's before the queue loads) and
// its suppression list.
func (e *Engine) startCluster() {
	if e.cluster == nil {
		return
	}
	admin := ""
	for i, h := range e.https {
		if e.httpCfgs[i].Serves(config.ServiceAdmin) {
			admin = h.Addr()
			break
		}
	}
	smtp := ""
	if as := e.SMTPAddrs(); len(as) > 0 {
		smtp = as[0].String()
	}
	e.cluster.Start(admin, smtp)
	e.cluster.Rules().Start(clusterRuleStore{e})           // cluster_suspend.go
	e.cluster.Suppressions().Start(clusterSuppressions{e}) // cluster_suppress.go
	e.log.Info("cluster node started", "node_id", e.cluster.NodeID(), "admin", admin, "smtp", smtp)
}

// clusterStats is what a node's heartbeat reports: its queue depth, the
// messages it received and the recipients it delivered (the counts of
// gannet_messages_received_total and gannet_messages_delivered_total;
// cluster.Stats).
type clusterStats struct{ e *Engine }

func (s clusterStats) QueueDepth() int {
	scheduled, ready := s.e.delivery.QueueDepth()
	return scheduled + ready
}

func (s clusterStats) Messages() (in, out uint64) {
	return s.e.metrics.ReceivedTotal(), s.e.metrics.Delivered.Get()
}
