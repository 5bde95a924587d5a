package simulation

import (
	"math"

	"slewd/foreign"
)

// Metrics watches the simulated kernel's REALTIME error (local clock
// minus true time) on every linear segment, so its figures are exact, not
// sampled. It keeps one-second bins for figures over a time range and for
// the plot.
type Metrics struct {
	Bins        []Bin   // one a second
	settleStart float64 // when |error| last came within the bound, -1 when outside
	bound       float64
	MaxRatePPM  float64 // the largest |rate| against true time
	end         float64
	finalError  float64
	// utcAt, utcShift: from true time utcAt on, the error is measured
	// against UTC, which is true time + utcShift (a leap second).
	utcAt, utcShift float64
	// Backward holds REALTIME's backward windows: how long it stayed
	// below the highest time it had shown, after each step back (true
	// time, s; exact, from every segment and jump).
	Backward foreign.Window
}

// Bin is one second of a run.
type Bin struct {
	SqErr      float64 // ∫ error² dt, s²·s
	Dt         float64 // s of the second simulated
	MaxAbs     float64 // largest |error|, s
	Err        float64 // error at the end of the bin, s
	RatePPM    float64 // rate at the end of the bin
	MaxRatePPM float64 // largest |rate| in the bin, signed
}

// NewMetrics watches whether |error| stays within bound (s).
func NewMetrics(bound float64) *Metrics {
	return &Metrics{settleStart: -1, bound: bound}
}

func (m *Metrics) bin(t float64) *Bin {
	i := int(t)
	for len(m.Bins) <= i {
		m.Bins = append(m.Bins, Bin{})
	}
	return &m.Bins[i]
}

// LeapSecond makes the error from true time at (s) on the clock's
// error against UTC, which is then true time + shift (s): −1 after an
// inserted leap second, +1 after a deleted one. The simulated world's
// true time has no leaps.
func (m *Metrics) LeapSecond(at, shift float64) { m.utcAt, m.utcShift = at, shift }

// utc is the UTC correction of the error at true time t.
func (m *Metrics) utc(t float64) float64 {
	if m.utcShift != 0 && t >= m.utcAt {
		return -m.utcShift
	}
	return 0
}

// Segment implements simclock.Observer.
func (m *Metrics) Segment(t0, t1, e0, e1, ratePPM float64) {
	if m.utcShift != 0 && t0 < m.utcAt && m.utcAt < t1 {
		// Split at the leap, where UTC jumps.
		em := e0 + (e1-e0)*(m.utcAt-t0)/(t1-t0)
		m.Segment(t0, m.utcAt, e0, em, ratePPM)
		m.Segment(m.utcAt, t1, em, e1, ratePPM)
		return
	}
	// REALTIME is true time plus the error (less the epoch, which does
	// not change where it crosses its old high).
	m.Backward.Observe(t0, t0+e0)
	m.Backward.Observe(t1, t1+e1)
	if math.Abs(ratePPM) > m.MaxRatePPM {
		m.MaxRatePPM = math.Abs(ratePPM)
	}
	m.end, m.finalError = t1, e1
	e0, e1 = e0+m.utc(t0), e1+m.utc(t0)
	segT0, segE0 := t0, e0
	// Split at whole seconds so each bin gets its part.
	for t0 < t1 {
		next := math.Min(math.Floor(t0)+1, t1)
		em := e0 + (e1-e0)*(next-t0)/(t1-t0)
		b := m.bin(t0)
		dt := next - t0
		b.SqErr += dt * (e0*e0 + e0*em + em*em) / 3
		b.Dt += dt
		b.MaxAbs = math.Max(b.MaxAbs, math.Max(math.Abs(e0), math.Abs(em)))
		b.Err, b.RatePPM = em, ratePPM
		if math.Abs(ratePPM) >= math.Abs(b.MaxRatePPM) {
			b.MaxRatePPM = ratePPM
		}
		t0, e0 = next, em
	}
	if math.Abs(segE0) > m.bound {
		// Out of bounds at the start (after a jump): not settled before.
		m.settleStart = -1
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
func (m *Metrics) Jump(t, delta float64, why string) {
	if t <= m.end {
		// A step: REALTIME was at the last segment's end just before.
		// (After a suspend, true time went on without segments.)
		m.Backward.Observe(t, t+m.finalError)
	}
	m.finalError += delta
	m.Backward.Observe(t, t+m.finalError)
	// Whether the jump unsettled the clock is the next segment's to say: a
	// step undone at the same instant left it settled.
}

// RTCWrite implements simclock.Observer.
func (m *Metrics) RTCWrite(t, e float64) {}

// ConvergedAfter is the first time |error| ≤ bound after which it stayed
// within bound to the end, or -1.
func (m *Metrics) ConvergedAfter() float64 { return m.settleStart }

// Since returns the RMS and the largest |error| from time t0 to the end
// (the RMS from the first whole second at or after t0).
func (m *Metrics) Since(t0 float64) (rms, maxAbs float64, ok bool) {
	if t0 < 0 || t0 >= m.end {
		return 0, 0, false
	}
	var sq, dt float64
	for i := int(t0); i < len(m.Bins); i++ {
		b := m.Bins[i]
		if float64(i) < t0 {
			// The second in which t0 falls: its error before t0 is not
			// "after"; count from the next whole second, and its end.
			maxAbs = math.Max(maxAbs, math.Abs(b.Err))
			continue
		}
		sq += b.SqErr
		dt += b.Dt
		maxAbs = math.Max(maxAbs, b.MaxAbs)
	}
	if dt == 0 {
		return 0, 0, false
	}
	return math.Sqrt(sq / dt), maxAbs, true
}

// MeanRatePPM is the clock's average rate against true time over the
// last window seconds of a run, in ppm.
func (m *Metrics) MeanRatePPM(window int) float64 {
	n := len(m.Bins)
	return (m.Bins[n-1].Err - m.Bins[n-1-window].Err) / float64(window) * 1e6
}
