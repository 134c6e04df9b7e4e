package config

import (
	"net/url"
)

// Cluster is [cluster]: nodes that share their limits and know each other
// through a Redis server (engine/cluster). Without Redis, no cluster.
type Cluster struct {
	// Redis is the server's URL ("redis://HOST:PORT/DB", "rediss://…",
	// "unix:///PATH"); "": this node is on its own. It may hold a
	// password (redis://:PASSWORD@HOST/DB): `config show` redacts it.
	Redis string `toml:"redis" secret:"true"`
	// NodeID names this node in the cluster; "" (the default): the host
	// name. Each node needs its own.
	NodeID string `toml:"node_id"`
	// KeyPrefix starts every key the cluster keeps in Redis.
	KeyPrefix string `toml:"key_prefix"`
	// Heartbeat is how often a node renews its entry and connection
	// leases and counts the live nodes; NodeTTL how long an entry that
	// was not renewed stays (a node silent that long is gone).
	Heartbeat Duration `toml:"heartbeat"`
	NodeTTL   Duration `toml:"node_ttl"`
	// RedisTimeout bounds every call to Redis; past it the node uses its
	// local share of the limits.
	RedisTimeout Duration `toml:"redis_timeout"`
}

// On reports whether the node is part of a cluster ([cluster] redis set).
func (c *Cluster) On() bool { return c.Redis != "" }

// finishCluster fills in the node id (the host name).
func (c *Config) finishCluster(hostname func() string) {
	if c.Cluster.On() && c.Cluster.NodeID == "" {
		c.Cluster.NodeID = hostname()
	}
}

// checkCluster checks [cluster].
func (c *Config) checkCluster(ck *checker) {
	cl := &c.Cluster
	if !cl.On() {
		return
	}
	if u, err := url.Parse(cl.Redis); err != nil || (u.Scheme != "redis" && u.Scheme != "rediss" && u.Scheme != "unix") {
		ck.add(at("cluster", "redis"), "is not a redis://HOST:PORT/DB, rediss:// or unix:// URL")
	}
	if cl.KeyPrefix == "" {
		ck.add(at("cluster", "key_prefix"), "must not be empty: every key of the cluster starts with it")
	}
	ck.positive(at("cluster", "heartbeat"), cl.Heartbeat)
	ck.positive(at("cluster", "redis_timeout"), cl.RedisTimeout)
	if cl.NodeTTL.Duration <= cl.Heartbeat.Duration {
		ck.add(at("cluster", "node_ttl"), "must be longer than heartbeat (%s), not %q: a node would drop out between its beats",
			cl.Heartbeat.Duration, cl.NodeTTL.Duration.String())
	}
}
