package console

import (
	"testing"
	"time"
)

func TestHistoryKeepsAnHourAtTenSeconds(t *testing.T) {
	var h History
	t0 := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	for i := range HistoryLen + 40 {
		h.Add(Snapshot{Received: uint64(20 * i), Depth: Depth{Scheduled: i}}, t0.Add(time.Duration(i)*Resolution), 0, 0)
	}
	pts, last := h.Points(SeriesScheduled, nil)
	if len(pts) != HistoryLen || pts[0] != 40 || pts[HistoryLen-1] != HistoryLen+39 {
		t.Fatalf("%d points from %v to %v, want %d from 40", len(pts), pts[0], pts[len(pts)-1], HistoryLen)
	}
	if want := t0.Add((HistoryLen + 39) * Resolution); !last.Equal(want) {
		t.Errorf("newest point at %v, want %v", last, want)
	}
	in, _ := h.Points(SeriesIn, nil)
	for i, v := range in {
		if v != 2 { // 20 more every 10 s
			t.Fatalf("in[%d] = %v, want 2/s", i, v)
		}
	}
}

func TestHistoryRates(t *testing.T) {
	var h History
	t0 := time.Unix(1e9, 0)
	h.Add(Snapshot{Delivered: 100, Transient: 5}, t0, 0, 0)
	h.Add(Snapshot{Delivered: 150, Transient: 25, Permanent: 10, TLSFailures: 1, ConnsIn: 3}, t0.Add(5*time.Second), 0.2, 1.5)
	h.Add(Snapshot{Delivered: 10}, t0.Add(15*time.Second), 0, 0) // a counter that went back (restart) is no negative rate
	for _, tt := range []struct {
		s    Series
		want []float64
	}{
		{SeriesOut, []float64{0, 10, 0}},
		{SeriesTransient, []float64{0, 4, 0}},
		{SeriesPermanent, []float64{0, 2, 0}},
		{SeriesTLSFailures, []float64{0, 0.2, 0}},
		{SeriesConnsIn, []float64{0, 3, 0}},
		{SeriesLatencyP95, []float64{0, 1.5, 0}},
	} {
		got, _ := h.Points(tt.s, nil)
		if len(got) != 3 || got[0] != tt.want[0] || got[1] != tt.want[1] || got[2] != tt.want[2] {
			t.Errorf("series %d: %v, want %v", tt.s, got, tt.want)
		}
	}
	if v := h.Last(SeriesOut); v != 0 {
		t.Errorf("Last = %v", v)
	}
}

func BenchmarkHistoryAdd(b *testing.B) {
	var h History
	t0 := time.Unix(1e9, 0)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		h.Add(Snapshot{Received: uint64(i)}, t0.Add(time.Duration(i)*Resolution), 0, 0)
	}
}
