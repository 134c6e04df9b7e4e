package config

import (
	"time"

	"gannet/mailaddr"
)

// ShapingDefault is the name of the [shaping.default] table.
const ShapingDefault = "default"

// ShapingRule is the traffic shaping in force for one destination: limits
// on what Gannet does to one MX site. Zero rates mean no limit.
type ShapingRule struct {
	ConnectionLimit            int  // connections open at once
	MaxMessageRate             Rate // messages per period
	MaxDeliveriesPerConnection int  // messages before a connection is closed
	MaxConnectionRate          Rate // new connections per period
	// LimitScope says who shares MaxMessageRate, ConnectionLimit and
	// MaxConnectionRate when [cluster] is set: the whole cluster
	// (LimitScopeCluster, and "", the default) or each node on its own
	// (LimitScopeNode). Without [cluster] every limit is the node's.
	LimitScope string

	// Backoff mode: a site enters it when a [[shaping_rule]] with action
	// "backoff" matches one of its replies, or when more than
	// BackoffOnDeferralRate (0: never) of the attempts of the last
	// BackoffWindow were deferred, once there were BackoffMinAttempts of
	// them. In backoff the site gets at most BackoffRate (zero: its normal
	// limits), deferred mail is retried after BackoffRetryAfter (0: the
	// normal retry schedule), and the site returns to normal after
	// BackoffToNormalAfter or BackoffToNormalAfterDeliveries deliveries,
	// whichever comes first (0: not that way).
	BackoffOnDeferralRate          float64
	BackoffWindow                  Duration
	BackoffMinAttempts             int
	BackoffRate                    Rate
	BackoffRetryAfter              Duration
	BackoffToNormalAfter           Duration
	BackoffToNormalAfterDeliveries int

	// Self-tuning: with Tune, the site's message rate is searched for,
	// under MaxMessageRate and over TuneMinRate: the highest that keeps
	// the share of attempts deferred over each TuneWindow (of at least
	// TuneMinAttempts attempts) under TuneTargetDeferral. Zero values
	// are engine/shaping's defaults (0.02, 30s, 20, 1/s).
	Tune               bool
	TuneTargetDeferral float64
	TuneWindow         Duration
	TuneMinAttempts    int
	TuneMinRate        Rate
}

// Defaults of the backoff mode keys.
const (
	DefaultBackoffWindow        = 5 * time.Minute
	DefaultBackoffMinAttempts   = 50
	DefaultBackoffToNormalAfter = time.Hour
)

// The values of limit_scope.
const (
	LimitScopeCluster = "cluster"
	LimitScopeNode    = "node"
)

// Shaping returns the rule for destination domain (case-insensitive; "" for
// the default rule). It starts from the simple [delivery] keys
// (max_connections_per_domain, max_message_rate,
// max_deliveries_per_connection); every key set in [shaping.default]
// replaces its [delivery] counterpart, and every key set in
// [shaping."DOMAIN"] replaces both. Keys a table leaves out fall through.
func (c *Config) Shaping(domain string) ShapingRule {
	r := ShapingRule{
		ConnectionLimit:            c.Delivery.MaxConnectionsPerDomain,
		MaxMessageRate:             c.Delivery.MaxMessageRate,
		MaxDeliveriesPerConnection: c.Delivery.MaxDeliveriesPerConnection,
		BackoffWindow:              Duration{DefaultBackoffWindow},
		BackoffMinAttempts:         DefaultBackoffMinAttempts,
		BackoffToNormalAfter:       Duration{DefaultBackoffToNormalAfter},
	}
	if t, ok := c.ShapingTables[ShapingDefault]; ok {
		t.applyTo(&r)
	}
	d := mailaddr.CanonicalDomain(domain)
	if d != "" && d != ShapingDefault {
		if t, ok := c.ShapingTables[d]; ok {
			t.applyTo(&r)
		}
	}
	return r
}

func (t ShapingTable) applyTo(r *ShapingRule) {
	if t.ConnectionLimit != nil {
		r.ConnectionLimit = *t.ConnectionLimit
	}
	if t.MaxMessageRate != nil {
		r.MaxMessageRate = *t.MaxMessageRate
	}
	if t.MaxDeliveriesPerConnection != nil {
		r.MaxDeliveriesPerConnection = *t.MaxDeliveriesPerConnection
	}
	if t.MaxConnectionRate != nil {
		r.MaxConnectionRate = *t.MaxConnectionRate
	}
	if t.LimitScope != nil {
		r.LimitScope = *t.LimitScope
	}
	setIf(&r.BackoffOnDeferralRate, t.BackoffOnDeferralRate)
	setIf(&r.BackoffWindow, t.BackoffWindow)
	setIf(&r.BackoffMinAttempts, t.BackoffMinAttempts)
	setIf(&r.BackoffRate, t.BackoffRate)
	setIf(&r.BackoffRetryAfter, t.BackoffRetryAfter)
	setIf(&r.BackoffToNormalAfter, t.BackoffToNormalAfter)
	setIf(&r.BackoffToNormalAfterDeliveries, t.BackoffToNormalAfterDeliveries)
	setIf(&r.Tune, t.Tune)
	setIf(&r.TuneTargetDeferral, t.TuneTargetDeferral)
	setIf(&r.TuneWindow, t.TuneWindow)
	setIf(&r.TuneMinAttempts, t.TuneMinAttempts)
	setIf(&r.TuneMinRate, t.TuneMinRate)
}

// setIf sets *dst to *v when v is set.
func setIf[T any](dst *T, v *T) {
	if v != nil {
		*dst = *v
	}
}
