package config

import (
	"strings"
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
`, "example.test", ShapingRule{ConnectionLimit: 3, MaxMessageRate: Rate{60, time.Minute}, MaxDeliveriesPerConnection: 7}},
		{"shaping.default wins over delivery, key by key", `
[delivery]
max_connections_per_domain = 3
max_message_rate = "60/m"
max_deliveries_per_connection = 7

[shaping.default]
connection_limit = 20
max_connection_rate = "5/s"
limit_scope = "node"
`, "example.test", ShapingRule{ConnectionLimit: 20, MaxMessageRate: Rate{60, time.Minute}, MaxDeliveriesPerConnection: 7, MaxConnectionRate: Rate{5, time.Second}, LimitScope: LimitScopeNode}},
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
`, "gmail.COM.", ShapingRule{ConnectionLimit: 5, MaxMessageRate: Rate{100, time.Second}, MaxDeliveriesPerConnection: 50, LimitScope: LimitScopeCluster}},
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
			tt.want.BackoffWindow = Duration{DefaultBackoffWindow}
			tt.want.BackoffMinAttempts = DefaultBackoffMinAttempts
			tt.want.BackoffToNormalAfter = Duration{DefaultBackoffToNormalAfter}
			if got := c.Shaping(tt.domain); got != tt.want {
				t.Errorf("Shaping(%q) = %+v, want %+v", tt.domain, got, tt.want)
			}
		})
	}
}

// TestShapingBackoffKeys: the backoff mode keys fall through like the
// others ([shaping.default], then the domain's table), and a table that
// would keep a site in backoff for ever is refused.
func TestShapingBackoffKeys(t *testing.T) {
	c := mustParse(t, `
[shaping.default]
backoff_on_deferral_rate = 0.3
backoff_rate = "100/h"
backoff_retry_after = "10m"

[shaping."slow.test"]
backoff_window = "2m"
backoff_min_attempts = 20
backoff_to_normal_after = "30m"
backoff_to_normal_after_deliveries = 10
`)
	got := c.Shaping("slow.test")
	want := ShapingRule{ConnectionLimit: 10, MaxDeliveriesPerConnection: 100,
		BackoffOnDeferralRate: 0.3, BackoffWindow: Duration{2 * time.Minute}, BackoffMinAttempts: 20,
		BackoffRate: Rate{100, time.Hour}, BackoffRetryAfter: Duration{10 * time.Minute},
		BackoffToNormalAfter: Duration{30 * time.Minute}, BackoffToNormalAfterDeliveries: 10}
	if got != want {
		t.Errorf("Shaping(slow.test) = %+v\nwant %+v", got, want)
	}
	if other := c.Shaping("other.test"); other.BackoffWindow.Duration != DefaultBackoffWindow ||
		other.BackoffMinAttempts != DefaultBackoffMinAttempts || other.BackoffOnDeferralRate != 0.3 {
		t.Errorf("Shaping(other.test) = %+v, want the defaults and [shaping.default]", other)
	}
	cfg, err := Parse("t.toml", []byte(`
[shaping.default]
backoff_on_deferral_rate = 1.5
backoff_to_normal_after = "0s"

[[shaping_rule]]
regex = "TS03"
action = "backoff"
`))
	if err == nil {
		t.Fatalf("a deferral rate of 1.5 and a backoff without end were accepted: %+v", cfg.ShapingTables)
	}
	for _, key := range []string{"backoff_on_deferral_rate", "backoff_to_normal_after"} {
		if !strings.Contains(err.Error(), key) {
			t.Errorf("error %q does not name %s", err, key)
		}
	}
	if strings.Contains(err.Error(), "duration") {
		t.Errorf("error %q: a backoff rule needs no duration", err)
	}
}

// TestShapingTuneKeys: the self-tuning keys fall through like the others
// (a provider table turns tuning on for its sites, [shaping.default] gives
// the target), and values that make no search are refused, each named.
func TestShapingTuneKeys(t *testing.T) {
	c := mustParse(t, `
[shaping.default]
tune_target_deferral = 0.05

[shaping.gmail]
mx_suffix = [".google.test"]
tune = true
tune_window = "10s"
tune_min_attempts = 5
tune_min_rate = "10/m"
`)
	got := c.ShapingFor("x.test", []string{"alt1.mx.google.test"})
	if !got.Tune || got.TuneTargetDeferral != 0.05 || got.TuneWindow.Duration != 10*time.Second ||
		got.TuneMinAttempts != 5 || got.TuneMinRate != (Rate{10, time.Minute}) {
		t.Errorf("ShapingFor(google site) = %+v, want tuning from the provider table and the default's target", got)
	}
	if other := c.ShapingFor("y.test", []string{"mx.y.test"}); other.Tune {
		t.Errorf("ShapingFor(other site) = %+v: tuning is the provider table's only", other)
	}
	_, err := Parse("t.toml", []byte(`
[shaping.default]
tune = true
tune_target_deferral = 1.5
tune_window = "0s"
tune_min_attempts = 0
tune_min_rate = "unlimited"
`))
	if err == nil {
		t.Fatal("a target of 1.5, no window, no attempts and no floor were accepted")
	}
	for _, key := range []string{"tune_target_deferral", "tune_window", "tune_min_attempts", "tune_min_rate"} {
		if !strings.Contains(err.Error(), key) {
			t.Errorf("error %q does not name %s", err, key)
		}
	}
}
