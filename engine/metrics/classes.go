package metrics

import (
	"sync"

	vm "github.com/VictoriaMetrics/metrics"
)

// classCounters is one counter per bounce classification. The class names
// are a fixed vocabulary (engine/bounce, about thirty), so the label needs
// no cap; an empty class is counted as "Uncategorized".
type classCounters struct {
	set    *vm.Set
	family string
	m      sync.Map // class → *vm.Counter
}

func (c *classCounters) get(class string) *vm.Counter {
	if class == "" {
		class = "Uncategorized"
	}
	if v, ok := c.m.Load(class); ok {
		return v.(*vm.Counter)
	}
	v := c.set.GetOrCreateCounter(c.family + `{class="` + escapeLabel(class) + `"}`)
	c.m.Store(class, v)
	return v
}

// BounceClass returns gannet_bounces_total{class=CLASS}: recipients that
// bounced (Bounce, AdminBounce) or expired (Expiration, class
// "MessageExpired"), by bounce classification.
func (m *Metrics) BounceClass(class string) *vm.Counter { return m.bounceClasses.get(class) }

// TransientClass returns gannet_transient_failures_by_class_total{class}:
// failed attempts that will be retried, by the classification of the
// reply (TransientFailure records).
func (m *Metrics) TransientClass(class string) *vm.Counter { return m.transientClasses.get(class) }

// TLSHandshakesOut returns gannet_tls_handshakes_total{direction="out",resumed}:
// successful outbound TLS handshakes that resumed an earlier session, or
// full ones.
func (m *Metrics) TLSHandshakesOut(resumed bool) *vm.Counter {
	if resumed {
		return m.tlsHandshakesResumed
	}
	return m.tlsHandshakesFull
}

// ConnectionsOpened returns gannet_connections_opened_total{direction}:
// SMTP connections accepted (In) or sessions established (Out) since the
// start, the denominator of the TLS failure ratio.
func (m *Metrics) ConnectionsOpened(direction string) *vm.Counter {
	if direction == Out {
		return m.ConnectionsOpenedOut
	}
	return m.ConnectionsOpenedIn
}
