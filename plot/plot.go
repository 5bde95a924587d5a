// Package plot draws a simulated run (simulation.Metrics) as SVG: the
// clock's true error, |error| on a log scale and the slew rate.
package plot

import (
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"

	"slewd/discipline/simulation"
)

// Info is what a plot says besides the run's error and rate.
type Info struct {
	Title        string
	RateLimitPPM float64 // the kernel's (or --max-slew-rate's) limit, drawn on the rate panel; 0 for none
	Bound        float64 // s: what "converged" means (1 ms)
	ConvergedAt  float64 // s of true time, <0 never
	Marks        []Mark
}

// Mark is a moment (a kill, a foreign step) or, with Until > At, a
// window (a foreign step's backward window), in s of true time.
type Mark struct {
	At    float64
	Label string
	Until float64
}

// Layout of the picture, in SVG pixels.
const (
	plotWidth, plotLeft, plotRight = 920.0, 100.0, 20.0
	plotPanelH, plotGap, plotTop   = 170.0, 45.0, 48.0
)

// Write draws a run as SVG: the true error of the clock, |error| on a
// log scale down to 100 ns, and the slew rate, with ticks at round
// values in human units, zero marked, the rate limit drawn and the
// moment of convergence marked.
func Write(w io.Writer, m *simulation.Metrics, p Info) error {
	n := len(m.Bins)
	if n == 0 {
		return fmt.Errorf("nothing to plot")
	}
	tEnd := float64(n)
	// At most ~1500 points per line: the largest value in each group.
	step := max(1, n/1500)
	x := func(t float64) float64 { return plotLeft + (plotWidth-plotLeft-plotRight)*t/tEnd }
	var b strings.Builder
	height := plotTop + 3*plotPanelH + 3*plotGap
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%.0f" height="%.0f" font-family="sans-serif" font-size="12">`+"\n", plotWidth, height)
	fmt.Fprintf(&b, `<rect width="100%%" height="100%%" fill="white"/>`+"\n")
	fmt.Fprintf(&b, `<text class="title" x="%.0f" y="22" font-size="15">%s</text>`+"\n", plotLeft, xmlEscape(p.Title))

	type panel struct {
		name  string
		val   func(simulation.Bin) float64
		log   bool
		color string
		unit  func(v float64) string // tick label
	}
	errUnit := func(lo, hi float64) func(float64) string {
		u, scale := secondsUnit(math.Max(math.Abs(lo), math.Abs(hi)))
		return func(v float64) string { return fmtTick(v/scale, u) }
	}
	panels := []panel{
		{"error (local − true): above 0 the clock is ahead", func(b simulation.Bin) float64 { return b.Err }, false, "#c0392b", nil},
		{"|error|, log scale", func(b simulation.Bin) float64 { return math.Max(b.MaxAbs, 1e-7) }, true, "#8e44ad",
			func(v float64) string { return fmtDecade(v) }},
		{"slew rate against true time", func(b simulation.Bin) float64 { return b.MaxRatePPM }, false, "#2471a3",
			func(v float64) string { return fmtTick(v, "ppm") }},
	}
	for pi, s := range panels {
		y0 := plotTop + float64(pi)*(plotPanelH+plotGap)
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
		var ticks []float64
		if s.log {
			lo, hi = math.Floor(lo), math.Max(math.Ceil(hi), math.Floor(lo)+1)
			for d := lo; d <= hi; d++ {
				ticks = append(ticks, d)
			}
		} else {
			lo, hi = math.Min(lo, 0), math.Max(hi, 0)
			if pi == 2 && p.RateLimitPPM > 0 {
				// Room for the limit on the side the rate goes to.
				if lo < -p.RateLimitPPM/2 {
					lo = math.Min(lo, -p.RateLimitPPM)
				}
				if hi > p.RateLimitPPM/2 {
					hi = math.Max(hi, p.RateLimitPPM)
				}
			}
			if hi-lo < 1e-12 {
				hi = lo + 1
			}
			// A margin, so that the line does not run along the frame.
			margin := 0.04 * (hi - lo)
			lo, hi = lo-margin, hi+margin
			ticks = niceTicks(lo, hi, 6)
		}
		if s.unit == nil {
			s.unit = errUnit(lo, hi)
		}
		y := func(v float64) float64 { return y0 + plotPanelH - plotPanelH*(v-lo)/(hi-lo) }
		fmt.Fprintf(&b, `<rect x="%.0f" y="%.0f" width="%.0f" height="%.0f" fill="none" stroke="#999"/>`+"\n", plotLeft, y0, plotWidth-plotLeft-plotRight, plotPanelH)
		fmt.Fprintf(&b, `<text x="%.0f" y="%.0f">%s</text>`+"\n", plotLeft, y0-6, xmlEscape(s.name))
		for _, v := range ticks {
			stroke, label := "#ddd", s.unit(v)
			if !s.log && v == 0 {
				stroke = "#555" // zero
			}
			if s.log {
				label = fmtDecade(v)
			}
			fmt.Fprintf(&b, `<text class="tick" data-panel="%d" x="%.0f" y="%.1f" text-anchor="end">%s</text><line x1="%.0f" x2="%.0f" y1="%.1f" y2="%.1f" stroke="%s"/>`+"\n",
				pi, plotLeft-4, y(v)+4, xmlEscape(label), plotLeft, plotWidth-plotRight, y(v), y(v), stroke)
		}
		// Windows first, under the line.
		for _, mk := range p.Marks {
			if mk.Until > mk.At {
				fmt.Fprintf(&b, `<rect x="%.1f" y="%.0f" width="%.1f" height="%.0f" fill="#e67e22" fill-opacity="0.15"/>`+"\n", x(mk.At), y0, x(mk.Until)-x(mk.At), plotPanelH)
			}
		}
		if pi == 1 && p.Bound > 0 && math.Log10(p.Bound) >= lo && math.Log10(p.Bound) <= hi {
			yb := y(math.Log10(p.Bound))
			fmt.Fprintf(&b, `<line x1="%.0f" x2="%.0f" y1="%.1f" y2="%.1f" stroke="#27ae60" stroke-dasharray="6 3"/><text class="bound" x="%.0f" y="%.1f" fill="#27ae60" text-anchor="end">%s bound</text>`+"\n",
				plotLeft, plotWidth-plotRight, yb, yb, plotWidth-plotRight-4, yb-4, fmtTick(p.Bound*1e3, "ms"))
		}
		if pi == 2 && p.RateLimitPPM > 0 {
			for _, lim := range []float64{-p.RateLimitPPM, p.RateLimitPPM} {
				if lim < lo || lim > hi {
					continue
				}
				yl := y(lim)
				dy := -5.0 // the label on the inner side of the line
				if lim > 0 {
					dy = 14
				}
				fmt.Fprintf(&b, `<line x1="%.0f" x2="%.0f" y1="%.1f" y2="%.1f" stroke="#7f8c8d" stroke-dasharray="6 3"/><text class="limit" x="%.0f" y="%.1f" fill="#7f8c8d" text-anchor="end">kernel limit %s</text>`+"\n",
					plotLeft, plotWidth-plotRight, yl, yl, plotWidth-plotRight-4, yl+dy, fmtTick(lim, "ppm"))
			}
		}
		var pts strings.Builder
		for i, v := range vals {
			fmt.Fprintf(&pts, "%.1f,%.1f ", x(ts[i]), y(v))
		}
		fmt.Fprintf(&b, `<polyline fill="none" stroke="%s" stroke-width="1.3" points="%s"/>`+"\n", s.color, pts.String())
		if p.ConvergedAt >= 0 {
			xc := x(p.ConvergedAt)
			fmt.Fprintf(&b, `<line x1="%.1f" x2="%.1f" y1="%.0f" y2="%.0f" stroke="#27ae60"/>`+"\n", xc, xc, y0, y0+plotPanelH)
			if pi == 1 && p.Bound > 0 {
				// Under the bound's line, where a converged |error| is not.
				label := fmt.Sprintf("within %s from %s on", fmtTick(p.Bound*1e3, "ms"), fmtDuration(p.ConvergedAt))
				anchor, dx := labelSide(xc, label)
				fmt.Fprintf(&b, `<text class="converged" x="%.1f" y="%.1f" fill="#27ae60" text-anchor="%s">%s</text>`+"\n",
					xc+dx, y(math.Log10(p.Bound))+14, anchor, label)
			}
		}
		labelled := 0 // labels step down a line each, three deep, so close ones do not overlap
		for _, mk := range p.Marks {
			fmt.Fprintf(&b, `<line x1="%.1f" x2="%.1f" y1="%.0f" y2="%.0f" stroke="#e67e22" stroke-dasharray="4 3"/>`+"\n", x(mk.At), x(mk.At), y0, y0+plotPanelH)
			if pi == 0 && mk.Label != "" {
				anchor, dx := labelSide(x(mk.At), mk.Label)
				fmt.Fprintf(&b, `<text class="mark" x="%.1f" y="%.0f" fill="#e67e22" text-anchor="%s">%s</text>`+"\n", x(mk.At)+dx, y0+14+12*float64(labelled%3), anchor, xmlEscape(mk.Label))
				labelled++
			}
		}
	}
	yAxis := plotTop + 3*plotPanelH + 2*plotGap + 18
	for _, t := range timeTicks(tEnd) {
		anchor := "middle"
		if x(t) > plotWidth-plotRight-20 {
			anchor = "end" // inside the picture
		}
		fmt.Fprintf(&b, `<text class="time" x="%.1f" y="%.0f" text-anchor="%s">%s</text>`+"\n", x(t), yAxis, anchor, fmtSeconds(t))
	}
	fmt.Fprintf(&b, `<text x="%.0f" y="%.0f" text-anchor="middle">true time since start</text>`+"\n", (plotWidth+plotLeft)/2, yAxis+16)
	b.WriteString("</svg>\n")
	_, err := io.WriteString(w, b.String())
	return err
}

// labelSide puts a label right of a line at x if it fits there, else
// left of it (12 px sans-serif: about 6.5 px a character).
func labelSide(x float64, label string) (anchor string, dx float64) {
	if x+4+6.5*float64(len([]rune(label))) < plotWidth-plotRight {
		return "start", 4
	}
	return "end", -4
}

// niceTicks are about n ticks inside [lo, hi] at multiples of 1, 2 or 5
// times a power of ten (zero among them when the range spans it).
func niceTicks(lo, hi float64, n int) []float64 {
	if !(hi > lo) || math.IsInf(hi-lo, 0) {
		return []float64{lo}
	}
	raw := (hi - lo) / float64(n)
	mag := math.Pow(10, math.Floor(math.Log10(raw)))
	step := 10 * mag
	for _, f := range []float64{1, 2, 5} {
		if f*mag >= raw {
			step = f * mag
			break
		}
	}
	var ticks []float64
	for k := math.Ceil(lo/step - 1e-9); k <= math.Floor(hi/step+1e-9); k++ {
		ticks = append(ticks, k*step+0) // +0: no -0
	}
	return ticks
}

// secondsUnit picks the unit for seconds up to max: s, ms, µs or ns.
func secondsUnit(max float64) (unit string, scale float64) {
	switch {
	case max >= 1:
		return "s", 1
	case max >= 1e-3:
		return "ms", 1e-3
	case max >= 1e-6:
		return "µs", 1e-6
	}
	return "ns", 1e-9
}

// fmtTick writes a tick's value with its unit; 0 alone; a real minus sign.
func fmtTick(v float64, unit string) string {
	if math.Abs(v) < 1e-12 {
		return "0"
	}
	s := strconv.FormatFloat(v, 'f', -1, 64)
	if f := strconv.FormatFloat(v, 'g', 12, 64); len(f) < len(s) {
		s = f
	}
	if math.Abs(v) >= 10000 && math.Trunc(v) == v {
		s = thousands(int64(v))
	}
	return strings.Replace(s, "-", "−", 1) + " " + unit
}

// thousands groups digits with a thin space: 100 500.
func thousands(v int64) string {
	s := strconv.FormatInt(v, 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var out []string
	for len(s) > 3 {
		out = append([]string{s[len(s)-3:]}, out...)
		s = s[:len(s)-3]
	}
	r := strings.Join(append([]string{s}, out...), "\u2009")
	if neg {
		r = "-" + r
	}
	return r
}

// fmtDecade is 10^d seconds in a unit: 100 s, 1 ms, 100 ns.
func fmtDecade(d float64) string {
	v := math.Pow(10, d)
	u, scale := secondsUnit(v * 1.0000001)
	return strconv.FormatFloat(math.Round(v/scale), 'f', -1, 64) + " " + u
}

// timeTicks are round times across a run of tEnd seconds.
func timeTicks(tEnd float64) []float64 {
	step := tEnd / 5
	for _, s := range []float64{1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 3 * 3600, 6 * 3600, 12 * 3600, 86400} {
		if tEnd/s <= 7 {
			step = s
			break
		}
	}
	var out []float64
	for t := 0.0; t <= tEnd+1e-9; t += step {
		out = append(out, t)
	}
	return out
}

func fmtSeconds(t float64) string {
	switch {
	case t == 0:
		return "0"
	case t >= 7200 || (t >= 3600 && math.Mod(t, 3600) == 0):
		return strconv.FormatFloat(t/3600, 'f', -1, 64) + " h"
	case t >= 120 || (t >= 60 && math.Mod(t, 60) == 0):
		return strconv.FormatFloat(math.Round(t/6)/10, 'f', -1, 64) + " min"
	}
	return fmt.Sprintf("%.0f s", t)
}

// fmtDuration is a moment of the run for a label: 8 min 57 s.
func fmtDuration(t float64) string {
	s := int(math.Round(t))
	switch {
	case s >= 3600:
		return fmt.Sprintf("%d h %d min", s/3600, s%3600/60)
	case s >= 60 && s%60 == 0:
		return fmt.Sprintf("%d min", s/60)
	case s >= 60:
		return fmt.Sprintf("%d min %d s", s/60, s%60)
	}
	return fmt.Sprintf("%.1f s", t)
}

// aheadOrBehind says a clock error (local − true) in words: "54 s ahead".
func aheadOrBehind(e float64) string {
	if e == 0 {
		return "right"
	}
	word := "ahead"
	if e < 0 {
		word = "behind"
	}
	a := math.Abs(e)
	u, scale := secondsUnit(a)
	return strconv.FormatFloat(a/scale, 'g', 4, 64) + " " + u + " " + word
}

func xmlEscape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}
