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
	// outAfterJump: the last jump left |error| beyond the bound and no
	// time has passed since.
	outAfterJump bool
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

// Segment implements simclock.Observer.
func (m *Metrics) Segment(t0, t1, e0, e1, ratePPM float64) {
	// REALTIME is true time plus the error (less the epoch, which does
	// not change where it crosses its old high).
	m.Backward.Observe(t0, t0+e0)
	m.Backward.Observe(t1, t1+e1)
	if math.Abs(ratePPM) > m.MaxRatePPM {
		m.MaxRatePPM = math.Abs(ratePPM)
	}
	m.end, m.finalError = t1, e1
	if t1 <= t0 {
		// Between two jumps at the same instant (a foreign step and its
		// undo): the clock showed that error for no time at all.
		return
	}
	m.outAfterJump = false
	if math.Abs(e0) > m.bound {
		m.settleStart = -1
	}
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
	// Out of bounds only if time passes there: the next segment says (an
	// undo at the same instant leaves the settled stretch unbroken).
	m.outAfterJump = math.Abs(m.finalError) > m.bound
}

// RTCWrite implements simclock.Observer.
func (m *Metrics) RTCWrite(t, e float64) {}

// ConvergedAfter is the first time |error| ≤ bound after which it stayed
// within bound to the end, or -1.
func (m *Metrics) ConvergedAfter() float64 {
	if m.outAfterJump {
		return -1 // the run ended on a jump out of bounds
	}
	return m.settleStart
}

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
