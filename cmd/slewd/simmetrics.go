package main

import (
	"math"
)

// simMetrics watches the simulated kernel's REALTIME error (local clock
// minus true time) on every linear segment, so its figures are exact, not
// sampled. It keeps one-second bins for figures over a time range and for
// the plot.
type simMetrics struct {
	bins        []simBin
	settleStart float64 // when |error| last came within the bound, -1 when outside
	bound       float64
	maxRatePPM  float64
	end         float64
	finalError  float64
}

type simBin struct {
	sq     float64 // ∫ error² dt
	dt     float64
	maxAbs float64
	err    float64 // error at the end of the bin
	rate   float64 // rate (ppm) at the end of the bin
	maxR   float64 // largest |rate| in the bin, signed
}

func newSimMetrics(bound float64) *simMetrics {
	return &simMetrics{settleStart: -1, bound: bound}
}

func (m *simMetrics) bin(t float64) *simBin {
	i := int(t)
	for len(m.bins) <= i {
		m.bins = append(m.bins, simBin{})
	}
	return &m.bins[i]
}

// Segment implements simclock.Observer.
func (m *simMetrics) Segment(t0, t1, e0, e1, ratePPM float64) {
	if math.Abs(ratePPM) > m.maxRatePPM {
		m.maxRatePPM = math.Abs(ratePPM)
	}
	m.end, m.finalError = t1, e1
	segT0, segE0 := t0, e0
	// Split at whole seconds so each bin gets its part.
	for t0 < t1 {
		next := math.Min(math.Floor(t0)+1, t1)
		em := e0 + (e1-e0)*(next-t0)/(t1-t0)
		b := m.bin(t0)
		dt := next - t0
		b.sq += dt * (e0*e0 + e0*em + em*em) / 3
		b.dt += dt
		b.maxAbs = math.Max(b.maxAbs, math.Max(math.Abs(e0), math.Abs(em)))
		b.err, b.rate = em, ratePPM
		if math.Abs(ratePPM) >= math.Abs(b.maxR) {
			b.maxR = ratePPM
		}
		t0, e0 = next, em
	}
	switch {
	case math.Abs(e1) > m.bound:
		m.settleStart = -1
	case m.settleStart < 0:
		// The error is linear over the segment: where did it cross the bound?
		tc := segT0
		if a0 := math.Abs(segE0); a0 > m.bound {
			tc = segT0 + (t1-segT0)*(a0-m.bound)/(a0-math.Abs(e1))
		}
		m.settleStart = tc
	}
}

// Jump implements simclock.Observer: a step. It breaks any settled stretch
// that it leaves out of bounds.
func (m *simMetrics) Jump(t, delta float64, why string) {
	m.finalError += delta
	if math.Abs(m.finalError) > m.bound {
		m.settleStart = -1
	}
}

// RTCWrite implements simclock.Observer.
func (m *simMetrics) RTCWrite(t, e float64) {}

// convergedAfter is the first time |error| ≤ bound after which it stayed
// within bound to the end, or -1.
func (m *simMetrics) convergedAfter() float64 { return m.settleStart }

// since returns the RMS and the largest |error| from time t0 to the end
// (the RMS from the first whole second at or after t0).
func (m *simMetrics) since(t0 float64) (rms, maxAbs float64, ok bool) {
	if t0 < 0 || t0 >= m.end {
		return 0, 0, false
	}
	var sq, dt float64
	for i := int(t0); i < len(m.bins); i++ {
		b := m.bins[i]
		if float64(i) < t0 {
			// The second in which t0 falls: its error before t0 is not
			// "after"; count from the next whole second, and its end.
			maxAbs = math.Max(maxAbs, math.Abs(b.err))
			continue
		}
		sq += b.sq
		dt += b.dt
		maxAbs = math.Max(maxAbs, b.maxAbs)
	}
	if dt == 0 {
		return 0, 0, false
	}
	return math.Sqrt(sq / dt), maxAbs, true
}
