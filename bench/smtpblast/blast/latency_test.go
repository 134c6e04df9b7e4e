package blast

import (
	"math"
	"testing"
	"time"
)

func TestBucketsRoundTrip(t *testing.T) {
	for _, us := range []uint64{0, 1, 127, 128, 129, 1000, 4095, 4096, 123456, 10_000_000, 3_600_000_000} {
		got := bucketValue(bucketOf(us))
		if diff := math.Abs(float64(got) - float64(us)); diff > float64(us)/64+1 {
			t.Errorf("%d µs lands in a bucket worth %d µs", us, got)
		}
	}
}

func TestQuantiles(t *testing.T) {
	var h histogram
	for i := 1; i <= 1000; i++ {
		h.record(time.Duration(i) * time.Millisecond)
	}
	s := h.summary()
	check := func(name string, got, want float64) {
		if math.Abs(got-want) > want/50 {
			t.Errorf("%s = %.2f ms, want about %.2f", name, got, want)
		}
	}
	check("p50", s.P50, 500)
	check("p90", s.P90, 900)
	check("p99", s.P99, 990)
	check("max", s.Max, 1000)
	check("mean", s.Mean, 500.5)
	if s.Count != 1000 {
		t.Errorf("count = %d", s.Count)
	}
	var empty histogram
	if s := empty.summary(); s != (LatencySummary{}) {
		t.Errorf("empty summary = %+v", s)
	}
}
