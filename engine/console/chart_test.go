package console

import (
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestChartDrawsTheHour: the newest point at the right edge, one step of
// the hour per point, values scaled to a round top shown on the grid.
func TestChartDrawsTheHour(t *testing.T) {
	var h History
	t0 := time.Unix(1e9, 0)
	for i, v := range []int{0, 30, 60} {
		h.Add(Snapshot{Depth: Depth{Ready: v}}, t0.Add(time.Duration(i)*Resolution), 0, 0)
	}
	ch := newChart(&h, "q", "Queue <depth>", "", []Series{SeriesReady}, []string{"ready"}, []string{"s1"})
	svg := string(ch.SVG)
	if !strings.Contains(svg, `aria-label="Queue &lt;depth&gt;"`) || !strings.Contains(svg, ">100<") || !strings.Contains(svg, ">50<") {
		t.Errorf("title or grid: %s", svg)
	}
	m := regexp.MustCompile(`<polyline class="s1" points="([^"]*)"`).FindStringSubmatch(svg)
	if m == nil {
		t.Fatalf("no polyline: %s", svg)
	}
	pts := strings.Fields(m[1])
	if len(pts) != 3 {
		t.Fatalf("points %v", pts)
	}
	xy := func(p string) (float64, float64) {
		x, y, _ := strings.Cut(p, ",")
		fx, _ := strconv.ParseFloat(x, 64)
		fy, _ := strconv.ParseFloat(y, 64)
		return fx, fy
	}
	x2, y2 := xy(pts[2])
	x1, y1 := xy(pts[1])
	x0, y0 := xy(pts[0])
	step := float64(chartW) / float64(HistoryLen-1)
	if x2 != chartW || x2-x1 < step-0.2 || x2-x1 > step+0.2 || x1-x0 < step-0.2 {
		t.Errorf("x: %v %v %v, want the last at %d, %.2f apart", x0, x1, x2, chartW, step)
	}
	if y0 != chartH-chartPad || !(y2 < y1 && y1 < y0) || y2 != chartH-chartPad-0.6*(chartH-2*chartPad) {
		t.Errorf("y: %v %v %v", y0, y1, y2)
	}
	if ch.Lines[0].Last != 60 || ch.Since != 20*time.Second {
		t.Errorf("last %v since %v", ch.Lines[0].Last, ch.Since)
	}
}

func TestHuman(t *testing.T) {
	for v, want := range map[float64]string{0: "0", 0.25: "0.25", 2.5: "2.5", 12: "12", 1500: "1.5k", 25000: "25k", 3.2e6: "3.2M"} {
		if got := human(v); got != want {
			t.Errorf("human(%v) = %q, want %q", v, got, want)
		}
	}
	for v, want := range map[float64]float64{0: 1, 0.3: 0.5, 3: 5, 7: 10, 60: 100, 101: 200} {
		if got := niceMax(v); got != want {
			t.Errorf("niceMax(%v) = %v, want %v", v, got, want)
		}
	}
}
