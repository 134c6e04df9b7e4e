package console

import (
	"html/template"
	"strconv"
	"strings"
	"time"
)

// Chart geometry (SVG user units).
const (
	chartW, chartH = 600, 150
	chartPad       = 4
)

// line is one series of a chart.
type line struct {
	Name   string
	Class  string // CSS class: its colour (console.css)
	Points []float64
	Last   float64
}

// chart is one chart of the overview.
type chart struct {
	ID    string
	Title string
	Unit  string
	Lines []line
	Max   float64
	SVG   template.HTML
	Since time.Duration // the time the points span
}

// newChart reads series from h into a chart and draws it.
func newChart(h *History, id, title, unit string, series []Series, names, classes []string) chart {
	ch := chart{ID: id, Title: title, Unit: unit}
	n := 0
	for i, s := range series {
		pts, _ := h.Points(s, make([]float64, 0, HistoryLen))
		l := line{Name: names[i], Class: classes[i], Points: pts}
		if len(pts) > 0 {
			l.Last = pts[len(pts)-1]
		}
		for _, v := range pts {
			ch.Max = max(ch.Max, v)
		}
		n = max(n, len(pts))
		ch.Lines = append(ch.Lines, l)
	}
	ch.Since = time.Duration(max(0, n-1)) * Resolution
	ch.SVG = drawChart(&ch)
	return ch
}

// niceMax rounds a chart's top up to 1, 2 or 5 times a power of ten.
func niceMax(v float64) float64 {
	if v <= 0 {
		return 1
	}
	p := 1.0
	for p*10 <= v {
		p *= 10
	}
	for p > v {
		p /= 10
	}
	for _, m := range []float64{1, 2, 5, 10} {
		if m*p >= v {
			return m * p
		}
	}
	return 10 * p
}

// drawChart writes the chart as SVG: a frame, grid lines at half and top
// with their values, and one polyline per series, the newest point at
// the right edge and an hour across. Only numbers and escaped text go in.
func drawChart(ch *chart) template.HTML {
	top := niceMax(ch.Max)
	var b strings.Builder
	b.Grow(1024 + len(ch.Lines)*HistoryLen*14)
	b.WriteString(`<svg class="chart" viewBox="0 0 `)
	b.WriteString(strconv.Itoa(chartW))
	b.WriteByte(' ')
	b.WriteString(strconv.Itoa(chartH))
	b.WriteString(`" role="img" aria-label="`)
	b.WriteString(template.HTMLEscapeString(ch.Title))
	b.WriteString(`">`)
	for _, g := range []float64{0.5, 1} {
		y := yOf(g*top, top)
		b.WriteString(`<line class="grid" x1="0" x2="`)
		b.WriteString(strconv.Itoa(chartW))
		b.WriteString(`" y1="`)
		b.WriteString(y)
		b.WriteString(`" y2="`)
		b.WriteString(y)
		b.WriteString(`"/><text class="axis" x="2" y="`)
		b.WriteString(y)
		b.WriteString(`" dy="10">`)
		b.WriteString(template.HTMLEscapeString(human(g * top)))
		b.WriteString(`</text>`)
	}
	// The time axis: an hour ago at the left edge, now at the right.
	b.WriteString(`<text class="axis" x="2" y="`)
	b.WriteString(strconv.Itoa(chartH - 1))
	b.WriteString(`">−1h</text><text class="axis" x="`)
	b.WriteString(strconv.Itoa(chartW / 2))
	b.WriteString(`" y="`)
	b.WriteString(strconv.Itoa(chartH - 1))
	b.WriteString(`" text-anchor="middle">−30m</text><text class="axis" x="`)
	b.WriteString(strconv.Itoa(chartW - 2))
	b.WriteString(`" y="`)
	b.WriteString(strconv.Itoa(chartH - 1))
	b.WriteString(`" text-anchor="end">now</text>`)
	for _, l := range ch.Lines {
		b.WriteString(`<polyline class="`)
		b.WriteString(template.HTMLEscapeString(l.Class))
		b.WriteString(`" points="`)
		off := HistoryLen - len(l.Points) // the newest point at the right edge
		var num []byte
		for i, v := range l.Points {
			if i > 0 {
				b.WriteByte(' ')
			}
			x := float64(off+i) * float64(chartW) / float64(HistoryLen-1)
			num = strconv.AppendFloat(num[:0], x, 'f', 1, 64)
			b.Write(num)
			b.WriteByte(',')
			b.WriteString(yOf(v, top))
		}
		b.WriteString(`"/>`)
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}

// yOf is the y coordinate of v on a chart whose top is top.
func yOf(v, top float64) string {
	y := chartH - chartPad - v/top*(chartH-2*chartPad)
	return strconv.FormatFloat(y, 'f', 1, 64)
}

// human formats a number shortly: 0.25, 12, 3.4k, 1.2M.
func human(v float64) string {
	switch {
	case v >= 1e6:
		return strconv.FormatFloat(v/1e6, 'f', 1, 64) + "M"
	case v >= 1e4:
		return strconv.FormatFloat(v/1e3, 'f', 0, 64) + "k"
	case v >= 1e3:
		return strconv.FormatFloat(v/1e3, 'f', 1, 64) + "k"
	case v >= 100 || v == float64(int64(v)):
		return strconv.FormatFloat(v, 'f', 0, 64)
	case v >= 1:
		return strconv.FormatFloat(v, 'f', 1, 64)
	}
	return strconv.FormatFloat(v, 'f', 2, 64)
}

func itoa(n int) string { return strconv.Itoa(n) }

// funcs are the templates' helpers.
var funcs = template.FuncMap{
	"human": human,
	"pct": func(v float64) string {
		return strconv.FormatFloat(v*100, 'f', 0, 64) + "%"
	},
	"rate": func(v float64) string {
		if v == 0 {
			return "unlimited"
		}
		return human(v) + "/s"
	},
	"ago": func(t, now time.Time) string {
		if t.IsZero() {
			return ""
		}
		d := now.Sub(t).Round(time.Second)
		if d < 0 {
			return "in " + (-d).String()
		}
		return d.String() + " ago"
	},
	"left": func(t, now time.Time) string {
		if t.IsZero() {
			return ""
		}
		return max(0, t.Sub(now)).Round(time.Second).String()
	},
	"ts": func(t time.Time) string {
		if t.IsZero() {
			return ""
		}
		return t.UTC().Format("2006-01-02 15:04:05Z")
	},
	"sortlink": sortLink,
	"list":     func(s ...string) []string { return s },
	"derefTime": func(t *time.Time) time.Time {
		if t == nil {
			return time.Time{}
		}
		return *t
	},
}
