package delivery

import (
	"time"

	"gannet/engine/metrics"
)

// EngineMetrics adapts the engine's metrics to the Metrics hook:
// gannet_messages_{delivered,bounced,transient_failures,expired}_total and
// gannet_delivery_latency_seconds. Queue depths are wired separately:
//
//	m.SetQueueDepth(func() float64 { s, _ := loop.QueueDepth(); return float64(s) },
//	                func() float64 { _, r := loop.QueueDepth(); return float64(r) })
func EngineMetrics(m *metrics.Metrics) Metrics { return engineMetrics{m} }

type engineMetrics struct{ m *metrics.Metrics }

func (e engineMetrics) Delivered(latency time.Duration) {
	e.m.Delivered.Inc()
	e.m.DeliveryLatency.Update(latency.Seconds())
}
func (e engineMetrics) Bounced()          { e.m.Bounced.Inc() }
func (e engineMetrics) TransientFailure() { e.m.TransientFailures.Inc() }
func (e engineMetrics) Expired()          { e.m.Expired.Inc() }
