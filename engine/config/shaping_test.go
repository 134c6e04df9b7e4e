package config

import (
	"testing"
	"time"
)

func TestShapingPrecedence(t *testing.T) {
	tests := []struct {
		name   string
		src    string
		domain string
		want   ShapingRule
	}{
		{"built-in", ``, "example.test",
			ShapingRule{ConnectionLimit: 10, MaxDeliveriesPerConnection: 100}},
		{"delivery keys alone", `
[delivery]
max_connections_per_domain = 3
max_message_rate = "60/m"
max_deliveries_per_connection = 7
`, "example.test", ShapingRule{3, Rate{60, time.Minute}, 7, Rate{}, ""}},
		{"shaping.default wins over delivery, key by key", `
[delivery]
max_connections_per_domain = 3
max_message_rate = "60/m"
max_deliveries_per_connection = 7

[shaping.default]
connection_limit = 20
max_connection_rate = "5/s"
limit_scope = "node"
`, "example.test", ShapingRule{20, Rate{60, time.Minute}, 7, Rate{5, time.Second}, LimitScopeNode}},
		{"domain table overrides both", `
[delivery]
max_connections_per_domain = 3
max_message_rate = "60/m"

[shaping.default]
connection_limit = 20
max_deliveries_per_connection = 50
limit_scope = "node"

[shaping."Gmail.com"]
connection_limit = 5
max_message_rate = "100/s"
limit_scope = "cluster"
`, "gmail.COM.", ShapingRule{5, Rate{100, time.Second}, 50, Rate{}, LimitScopeCluster}},
		{"domain table does not apply to other domains", `
[shaping."gmail.com"]
connection_limit = 5
`, "example.test", ShapingRule{ConnectionLimit: 10, MaxDeliveriesPerConnection: 100}},
		{"delivery setting equal to the built-in still loses to shaping.default", `
[delivery]
max_connections_per_domain = 10
[shaping.default]
connection_limit = 2
`, "", ShapingRule{ConnectionLimit: 2, MaxDeliveriesPerConnection: 100}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := mustParse(t, tt.src)
			if got := c.Shaping(tt.domain); got != tt.want {
				t.Errorf("Shaping(%q) = %+v, want %+v", tt.domain, got, tt.want)
			}
		})
	}
}
