package console

import (
	"context"
	"sync"
	"time"
)

// Resolution and HistoryLen: History keeps an hour at 10 s.
const (
	Resolution = 10 * time.Second
	HistoryLen = 360
)

// Series are the metrics History keeps.
type Series int

// The series of History.
const (
	SeriesIn          Series = iota // messages received per second
	SeriesOut                       // recipients delivered per second
	SeriesScheduled                 // messages waiting for their due time
	SeriesReady                     // messages due, waiting for a connection
	SeriesSuspended                 // work items held by suspensions and holds
	SeriesDead                      // dead letters kept
	SeriesLatencyP50                // delivery latency, seconds, median over the interval
	SeriesLatencyP95                // delivery latency, seconds, 95th percentile
	SeriesTransient                 // failed attempts that will be retried, per second
	SeriesPermanent                 // bounces and expirations, per second
	SeriesTLSFailures               // TLS failures in and out, per second
	SeriesConnsIn                   // inbound SMTP connections open
	SeriesConnsOut                  // outbound SMTP connections open
	numSeries
)

// Depth is the queue by state.
type Depth struct {
	Scheduled, Ready, Suspended, Dead int
}

// Snapshot is what a Meter reads at a sample: cumulative counters and
// current gauges.
type Snapshot struct {
	Received, Delivered, Transient, Permanent, TLSFailures uint64 // totals since start
	ConnsIn, ConnsOut                                      int
	Depth                                                  Depth
}

// Meter reads Gannet's own metrics (the engine's metrics registry).
type Meter interface {
	Snapshot() Snapshot
}

// History is a fixed-size ring of samples: HistoryLen points per series,
// one per Resolution. Its memory does not grow.
type History struct {
	mu    sync.Mutex
	at    [HistoryLen]int64 // Unix seconds of each point
	vals  [numSeries][HistoryLen]float64
	n     int // points held
	next  int // where the next point goes
	prev  Snapshot
	prevT time.Time
}

// Add records one point from s taken at now, with the delivery latency
// quantiles of the interval (p50, p95 in seconds; ok false when nothing
// was delivered). Rates are the counters' increase since the previous
// point over the time between them; the first point has rates of 0.
func (h *History) Add(s Snapshot, now time.Time, p50, p95 float64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	var v [numSeries]float64
	if dt := now.Sub(h.prevT).Seconds(); !h.prevT.IsZero() && dt > 0 {
		rate := func(cur, prev uint64) float64 {
			if cur < prev {
				return 0
			}
			return float64(cur-prev) / dt
		}
		v[SeriesIn] = rate(s.Received, h.prev.Received)
		v[SeriesOut] = rate(s.Delivered, h.prev.Delivered)
		v[SeriesTransient] = rate(s.Transient, h.prev.Transient)
		v[SeriesPermanent] = rate(s.Permanent, h.prev.Permanent)
		v[SeriesTLSFailures] = rate(s.TLSFailures, h.prev.TLSFailures)
	}
	v[SeriesScheduled] = float64(s.Depth.Scheduled)
	v[SeriesReady] = float64(s.Depth.Ready)
	v[SeriesSuspended] = float64(s.Depth.Suspended)
	v[SeriesDead] = float64(s.Depth.Dead)
	v[SeriesLatencyP50], v[SeriesLatencyP95] = p50, p95
	v[SeriesConnsIn] = float64(s.ConnsIn)
	v[SeriesConnsOut] = float64(s.ConnsOut)
	for i := range v {
		h.vals[i][h.next] = v[i]
	}
	h.at[h.next] = now.Unix()
	h.next = (h.next + 1) % HistoryLen
	h.n = min(h.n+1, HistoryLen)
	h.prev, h.prevT = s, now
}

// Points appends the points of series to dst, oldest first, and returns
// it with the time of the newest point (zero when there is none).
func (h *History) Points(series Series, dst []float64) ([]float64, time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	start := (h.next - h.n + HistoryLen) % HistoryLen
	for i := 0; i < h.n; i++ {
		dst = append(dst, h.vals[series][(start+i)%HistoryLen])
	}
	if h.n == 0 {
		return dst, time.Time{}
	}
	return dst, time.Unix(h.at[(h.next-1+HistoryLen)%HistoryLen], 0)
}

// Last returns the newest point of series (0 when there is none).
func (h *History) Last(series Series) float64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.n == 0 {
		return 0
	}
	return h.vals[series][(h.next-1+HistoryLen)%HistoryLen]
}

// Run adds a point to h from m and r every Resolution until ctx ends.
func (h *History) Run(ctx context.Context, m Meter, r *Recent, now func() time.Time) {
	if now == nil {
		now = time.Now
	}
	t := time.NewTicker(Resolution)
	defer t.Stop()
	sample := func() {
		p50, p95 := r.TakeLatency()
		h.Add(m.Snapshot(), now(), p50, p95)
	}
	sample()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			sample()
		}
	}
}
