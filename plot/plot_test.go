package plot

import (
	"bytes"
	"context"
	"encoding/xml"
	"image/png"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"slewd/discipline/simulation"
)

func TestNiceTicks(t *testing.T) {
	for _, tc := range []struct {
		lo, hi float64
		want   []float64
	}{
		{-2.16, 56.16, []float64{0, 10, 20, 30, 40, 50}},
		{-104520, 4028, []float64{-100000, -80000, -60000, -40000, -20000, 0}},
		{-13.5, 0.5, []float64{-10, -5, 0}},
		{-0.0012, 0.0031, []float64{-0.001, 0, 0.001, 0.002, 0.003}},
	} {
		got := niceTicks(tc.lo, tc.hi, 6)
		if len(got) != len(tc.want) {
			t.Errorf("niceTicks(%g, %g) = %v, want %v", tc.lo, tc.hi, got, tc.want)
			continue
		}
		for i := range got {
			if math.Abs(got[i]-tc.want[i]) > 1e-12 {
				t.Errorf("niceTicks(%g, %g) = %v, want %v", tc.lo, tc.hi, got, tc.want)
				break
			}
		}
	}
	for v, want := range map[float64]string{0: "0", 50: "50 s", -5: "−5 s", 0.002: "0.002 s", -100000: "−100\u2009000 s"} {
		if got := fmtTick(v, "s"); got != want {
			t.Errorf("fmtTick(%g) = %q, want %q", v, got, want)
		}
	}
	for d, want := range map[float64]string{2: "100 s", 0: "1 s", -3: "1 ms", -4: "100 µs", -7: "100 ns"} {
		if got := fmtDecade(d); got != want {
			t.Errorf("fmtDecade(%g) = %q, want %q", d, got, want)
		}
	}
	for e, want := range map[float64]string{54: "54 s ahead", -13: "13 s behind", 0.25: "250 ms ahead", -2e-5: "20 µs behind"} {
		if got := aheadOrBehind(e); got != want {
			t.Errorf("aheadOrBehind(%g) = %q, want %q", e, got, want)
		}
	}
}

type svgText struct {
	Class  string  `xml:"class,attr"`
	Panel  string  `xml:"data-panel,attr"`
	X      float64 `xml:"x,attr"`
	Y      float64 `xml:"y,attr"`
	Anchor string  `xml:"text-anchor,attr"`
	Text   string  `xml:",chardata"`
}

func svgTexts(t *testing.T, svg []byte) []svgText {
	t.Helper()
	var doc struct {
		Texts []svgText `xml:"text"`
	}
	if err := xml.Unmarshal(svg, &doc); err != nil {
		t.Fatalf("not XML: %v", err)
	}
	return doc.Texts
}

// tickValue reads a tick label back: "−100 000 ppm" is -100000 (ppm),
// "20 s" is 20 (s), "0" is 0.
func tickValue(label string) (v float64, unit string, ok bool) {
	num, unit, _ := strings.Cut(strings.NewReplacer("−", "-", "\u2009", "").Replace(label), " ")
	v, err := strconv.ParseFloat(num, 64)
	return v, unit, err == nil
}

// The main job's picture read as a person reads it: the title says ahead
// or behind, every axis has round ticks with zero and a unit, the rate
// limit and the moment of convergence are there; rendered to PNG by
// rsvg-convert, every label is ink on the page.
func TestPlotReadable(t *testing.T) {
	for _, tc := range []struct {
		cfg   simulation.Config
		title string
		units []string // error-panel units allowed
		conv  string
	}{
		{simulation.Config{ClockError: 54 * time.Second, Servers: 1, Duration: 20 * time.Minute, Seed: 1, MaxSlewPPM: 100500,
			StepBy: -2 * time.Second, StepAt: 15 * time.Minute}, "clock 54 s ahead at the start", []string{"s"}, "within 1 ms from 15 min"},
		{simulation.Config{ClockError: -13 * time.Second, Servers: 3, DriftPPM: -20, Duration: 10 * time.Minute, Seed: 2, MaxSlewPPM: 100500},
			"clock 13 s behind at the start, oscillator −20 ppm, 3 servers", []string{"s"}, "within 1 ms from 2 min"},
		{simulation.Config{ClockError: 300 * time.Millisecond, Servers: 1, Duration: 10 * time.Minute, Seed: 3, MaxSlewPPM: 100500},
			"clock 300 ms ahead", []string{"ms"}, "within 1 ms from"},
	} {
		res, err := simulation.Run(context.Background(), tc.cfg)
		if err != nil {
			t.Fatal(err)
		}
		var buf bytes.Buffer
		if err := Write(&buf, res.Metrics, RunInfo(tc.cfg, res)); err != nil {
			t.Fatal(err)
		}
		texts := svgTexts(t, buf.Bytes())
		has := func(class, sub string) bool {
			return slices.ContainsFunc(texts, func(x svgText) bool { return (class == "" || x.Class == class) && strings.Contains(x.Text, sub) })
		}
		if !has("title", tc.title) {
			t.Errorf("%v: no title with %q", tc.cfg.ClockError, tc.title)
		}
		if !has("converged", tc.conv) {
			t.Errorf("%v: no convergence mark %q", tc.cfg.ClockError, tc.conv)
		}
		if !has("limit", "kernel limit "+map[bool]string{true: "−", false: ""}[tc.cfg.ClockError > 0]+"100\u2009500 ppm") {
			t.Errorf("%v: no rate limit drawn on the side of the slew", tc.cfg.ClockError)
		}
		if tc.cfg.StepBy != 0 && !has("mark", "stepped −2 s from outside") {
			t.Errorf("no mark for the step from outside")
		}
		for panel, units := range map[string][]string{"0": tc.units, "2": {"ppm"}} {
			var vals []float64
			for _, x := range texts {
				if x.Class != "tick" || x.Panel != panel {
					continue
				}
				v, unit, ok := tickValue(x.Text)
				if !ok || (v != 0 && !slices.Contains(units, unit)) {
					t.Errorf("panel %s: tick %q is not a number in %v", panel, x.Text, units)
				}
				vals = append(vals, v)
			}
			if len(vals) < 3 || !slices.Contains(vals, 0) {
				t.Errorf("panel %s: ticks %v: want at least 3 with zero", panel, vals)
				continue
			}
			slices.Sort(vals)
			step := vals[1] - vals[0]
			mant := step / math.Pow(10, math.Floor(math.Log10(step)))
			if !slices.ContainsFunc([]float64{1, 2, 5}, func(m float64) bool { return math.Abs(m-mant) < 1e-9 }) {
				t.Errorf("panel %s: ticks %v are %g apart, not 1, 2 or 5 times a power of ten", panel, vals, step)
			}
			for i := 1; i < len(vals); i++ {
				if math.Abs(vals[i]-vals[i-1]-step) > 1e-9*step {
					t.Errorf("panel %s: ticks %v unevenly spaced", panel, vals)
				}
			}
		}
		var decades []string
		for _, x := range texts {
			if x.Class == "tick" && x.Panel == "1" {
				decades = append(decades, x.Text)
			}
		}
		if !slices.Contains(decades, "1 ms") || !slices.Contains(decades, "100 ns") || !slices.Contains(decades, "1 s") {
			t.Errorf("|error| panel ticks %q: want decades in s, ms, µs, ns", decades)
		}
		renderCheck(t, buf.Bytes(), texts)
	}
}

// renderCheck renders the SVG with rsvg-convert (librsvg2-bin) and looks
// for the ink of every tick label and of the title where the SVG puts
// them: a label that rendered off the page or not at all is found here.
func renderCheck(t *testing.T, svg []byte, texts []svgText) {
	t.Helper()
	rsvg, err := exec.LookPath("rsvg-convert")
	if err != nil {
		t.Skip("rsvg-convert not installed (apt-get install librsvg2-bin)")
	}
	dir := t.TempDir()
	in, out := filepath.Join(dir, "p.svg"), filepath.Join(dir, "p.png")
	if err := os.WriteFile(in, svg, 0o644); err != nil {
		t.Fatal(err)
	}
	if msg, err := exec.Command(rsvg, "-o", out, in).CombinedOutput(); err != nil {
		t.Fatalf("rsvg-convert: %v\n%s", err, msg)
	}
	f, err := os.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatal(err)
	}
	bounds := img.Bounds()
	if bounds.Dx() != int(plotWidth) || bounds.Dy() < 500 {
		t.Errorf("PNG is %v", bounds)
	}
	dark := func(x0, x1, y0, y1 int) int {
		n := 0
		for y := max(y0, bounds.Min.Y); y < min(y1, bounds.Max.Y); y++ {
			for x := max(x0, bounds.Min.X); x < min(x1, bounds.Max.X); x++ {
				r, g, b, _ := img.At(x, y).RGBA()
				if r+g+b < 3*0x8000 {
					n++
				}
			}
		}
		return n
	}
	for _, x := range texts {
		if x.Class != "tick" && x.Class != "title" && x.Class != "time" {
			continue
		}
		w := int(6.5 * float64(len([]rune(x.Text))))
		x0 := int(x.X)
		switch x.Anchor {
		case "end":
			x0 -= w
		case "middle":
			x0 -= w / 2
		}
		if x0 < 0 || x0+w > bounds.Dx()+1 {
			t.Errorf("label %q runs off the picture (x %d to %d)", x.Text, x0, x0+w)
		}
		if n := dark(x0, x0+w, int(x.Y)-10, int(x.Y)+3); n < 4*len([]rune(x.Text)) {
			t.Errorf("label %q at (%.0f, %.0f): %d dark pixels, not rendered", x.Text, x.X, x.Y, n)
		}
	}
}
