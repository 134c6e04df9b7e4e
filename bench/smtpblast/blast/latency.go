package blast

import (
	"math/bits"
	"time"
)

// histogram is a log-linear latency histogram in microseconds: exact below
// 128 µs, then 64 buckets per power of two (at most 1/64 relative error).
type histogram struct {
	counts [128 + 48*64]uint64
	n      uint64
	sum    uint64
	max    uint64
}

func bucketOf(us uint64) int {
	if us < 128 {
		return int(us)
	}
	shift := bits.Len64(us) - 7 // us>>shift is in [64, 128)
	i := 128 + (shift-1)*64 + int(us>>shift) - 64
	if i >= len(histogram{}.counts) {
		i = len(histogram{}.counts) - 1
	}
	return i
}

// bucketValue returns the middle of bucket i in microseconds.
func bucketValue(i int) uint64 {
	if i < 128 {
		return uint64(i)
	}
	shift := (i-128)/64 + 1
	lo := uint64(64+(i-128)%64) << shift
	return lo + (uint64(1)<<shift)/2
}

func (h *histogram) record(d time.Duration) {
	us := uint64(max(d.Microseconds(), 0))
	h.counts[bucketOf(us)]++
	h.n++
	h.sum += us
	h.max = max(h.max, us)
}

func (h *histogram) merge(o *histogram) {
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.n += o.n
	h.sum += o.sum
	h.max = max(h.max, o.max)
}

// quantile returns the q-quantile (0..1) in microseconds, never above max.
func (h *histogram) quantile(q float64) uint64 {
	if h.n == 0 {
		return 0
	}
	rank := uint64(q*float64(h.n) + 0.5)
	rank = min(max(rank, 1), h.n)
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			return min(bucketValue(i), h.max)
		}
	}
	return h.max
}

// LatencySummary is the latency of transactions (MAIL to the final reply, or
// one HTTP request) in milliseconds.
type LatencySummary struct {
	Count uint64  `json:"count"`
	Mean  float64 `json:"mean"`
	P50   float64 `json:"p50"`
	P90   float64 `json:"p90"`
	P99   float64 `json:"p99"`
	Max   float64 `json:"max"`
}

func (h *histogram) summary() LatencySummary {
	ms := func(us uint64) float64 { return float64(us) / 1000 }
	s := LatencySummary{Count: h.n, P50: ms(h.quantile(0.5)), P90: ms(h.quantile(0.9)), P99: ms(h.quantile(0.99)), Max: ms(h.max)}
	if h.n > 0 {
		s.Mean = ms(h.sum) / float64(h.n)
	}
	return s
}
