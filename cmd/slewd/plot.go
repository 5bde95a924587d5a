package main

import (
	"fmt"
	"io"
	"math"
	"slewd/discipline/simulation"
	"strings"
)

// writePlot draws a simulation as SVG: the true error of the clock
// (linear, then |error| on a log scale down to 100 ns), and the slew rate.
func writePlot(w io.Writer, m *simulation.Metrics, title string, marks []plotMark) error {
	const (
		width, left, right = 900.0, 80.0, 20.0
		panelH, gap, top   = 170.0, 45.0, 40.0
	)
	n := len(m.Bins)
	if n == 0 {
		return fmt.Errorf("nothing to plot")
	}
	tEnd := float64(n)
	// At most ~1500 points per line: pick the largest value in each group.
	step := max(1, n/1500)
	x := func(t float64) float64 { return left + (width-left-right)*t/tEnd }
	var b strings.Builder
	height := top + 3*panelH + 3*gap
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%.0f" height="%.0f" font-family="sans-serif" font-size="12">`+"\n", width, height)
	fmt.Fprintf(&b, `<rect width="100%%" height="100%%" fill="white"/><text x="%.0f" y="22" font-size="15">%s</text>`+"\n", left, xmlEscape(title))

	type series struct {
		name  string
		val   func(simulation.Bin) float64
		log   bool
		color string
	}
	panels := []series{
		{"error (local − true), s", func(b simulation.Bin) float64 { return b.Err }, false, "#c0392b"},
		{"|error|, s (log)", func(b simulation.Bin) float64 { return math.Max(b.MaxAbs, 1e-7) }, true, "#8e44ad"},
		{"slew rate, ppm", func(b simulation.Bin) float64 { return b.MaxRatePPM }, false, "#2471a3"},
	}
	for pi, s := range panels {
		y0 := top + float64(pi)*(panelH+gap)
		lo, hi := math.Inf(1), math.Inf(-1)
		vals := make([]float64, 0, n/step+1)
		ts := make([]float64, 0, n/step+1)
		for i := 0; i < n; i += step {
			v := s.val(m.Bins[i])
			for j := i + 1; j < min(i+step, n); j++ {
				if w := s.val(m.Bins[j]); math.Abs(w) > math.Abs(v) {
					v = w
				}
			}
			if s.log {
				v = math.Log10(v)
			}
			vals = append(vals, v)
			ts = append(ts, float64(i))
			lo, hi = math.Min(lo, v), math.Max(hi, v)
		}
		if s.log {
			lo, hi = math.Floor(lo), math.Ceil(hi)
		}
		if !s.log {
			lo, hi = math.Min(lo, 0), math.Max(hi, 0)
		}
		if hi-lo < 1e-12 {
			hi = lo + 1
		}
		y := func(v float64) float64 { return y0 + panelH - panelH*(v-lo)/(hi-lo) }
		fmt.Fprintf(&b, `<rect x="%.0f" y="%.0f" width="%.0f" height="%.0f" fill="none" stroke="#999"/>`+"\n", left, y0, width-left-right, panelH)
		fmt.Fprintf(&b, `<text x="%.0f" y="%.0f">%s</text>`+"\n", left, y0-6, xmlEscape(s.name))
		ticks := []float64{lo, hi}
		if s.log {
			for d := lo + 1; d < hi; d++ {
				ticks = append(ticks, d)
			}
		} else if 0 > lo && 0 < hi && math.Min(y(0)-y(hi), y(lo)-y(0)) > 14 {
			ticks = append(ticks, 0) // unless it would overprint lo or hi
		}
		for _, v := range ticks {
			label := fmt.Sprintf("%.3g", v)
			if s.log {
				label = fmt.Sprintf("1e%.0f", v)
			}
			fmt.Fprintf(&b, `<text x="%.0f" y="%.0f" text-anchor="end">%s</text><line x1="%.0f" x2="%.0f" y1="%.1f" y2="%.1f" stroke="#ddd"/>`+"\n",
				left-4, y(v)+4, label, left, width-right, y(v), y(v))
		}
		var pts strings.Builder
		for i, v := range vals {
			fmt.Fprintf(&pts, "%.1f,%.1f ", x(ts[i]), y(v))
		}
		fmt.Fprintf(&b, `<polyline fill="none" stroke="%s" stroke-width="1.3" points="%s"/>`+"\n", s.color, pts.String())
		for _, mk := range marks {
			fmt.Fprintf(&b, `<line x1="%.1f" x2="%.1f" y1="%.0f" y2="%.0f" stroke="#e67e22" stroke-dasharray="4 3"/>`+"\n", x(mk.t), x(mk.t), y0, y0+panelH)
			if pi == 0 {
				fmt.Fprintf(&b, `<text x="%.1f" y="%.0f" fill="#e67e22">%s</text>`+"\n", x(mk.t)+3, y0+12, xmlEscape(mk.label))
			}
		}
	}
	yAxis := top + 3*panelH + 2*gap + 18
	for i := 0; i <= 5; i++ {
		t := tEnd * float64(i) / 5
		fmt.Fprintf(&b, `<text x="%.1f" y="%.0f" text-anchor="middle">%s</text>`+"\n", x(t), yAxis, fmtSeconds(t))
	}
	fmt.Fprintf(&b, `<text x="%.0f" y="%.0f" text-anchor="middle">true time since start</text>`+"\n", (width+left)/2, yAxis+16)
	b.WriteString("</svg>\n")
	_, err := io.WriteString(w, b.String())
	return err
}

type plotMark struct {
	t     float64
	label string
}

func fmtSeconds(t float64) string {
	switch {
	case t >= 7200:
		return fmt.Sprintf("%.1f h", t/3600)
	case t >= 120:
		return fmt.Sprintf("%.0f min", t/60)
	}
	return fmt.Sprintf("%.0f s", t)
}

func xmlEscape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}
