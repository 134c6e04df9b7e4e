package config

import (
	"os"
	"strings"
	"testing"
)

func TestClusterDefaultsAndChecks(t *testing.T) {
	if c := mustParse(t, ``); c.Cluster.On() || c.Cluster.NodeID != "" {
		t.Errorf("the built-in config is clustered: %+v", c.Cluster)
	}
	c := mustParse(t, "[cluster]\nredis = \"redis://127.0.0.1:6379/0\"\n")
	host, _ := os.Hostname()
	if !c.Cluster.On() || c.Cluster.NodeID != host || c.Cluster.KeyPrefix != "gannet:" {
		t.Errorf("[cluster] with redis only: %+v, want node_id %q and key_prefix gannet:", c.Cluster, host)
	}
	_, err := Parse("test.toml", []byte(`[cluster]
redis = "http://127.0.0.1:6379"
heartbeat = "10s"
node_ttl = "5s"
`))
	for _, want := range []string{`test.toml:2: cluster.redis: is not a redis://`, `test.toml:4: cluster.node_ttl: must be longer than heartbeat`} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v, want it to contain %q", err, want)
		}
	}
}
