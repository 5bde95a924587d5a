package simclock

import (
	"math"
	"sync"
)

// Jump is one discontinuity of CLOCK_REALTIME.
type Jump struct {
	At    float64 // true time, seconds
	Delta float64 // seconds; negative is backwards
	Why   string
}

// RTCWrite is one write of the hardware clock in the kernel's 11-minute mode.
type RTCWrite struct {
	At    float64
	Error float64 // REALTIME minus true time when the RTC was written
}

// Recorder notes every backward movement of CLOCK_REALTIME, and the
// extremes of its error and rate. Because the kernel model reports every
// linear segment and every discontinuity, nothing slips between samples:
// it is exact, which is finer than any sampling granularity.
type Recorder struct {
	mu            sync.Mutex
	Jumps         []Jump
	RTCWrites     []RTCWrite
	backward      int
	maxBackward   float64
	minRate       float64
	maxAbsRatePPM float64
}

// NewRecorder returns a Recorder attached to w.
func NewRecorder(w *World) *Recorder {
	r := &Recorder{minRate: math.Inf(1)}
	w.Observe(r)
	return r
}

func (r *Recorder) Segment(t0, t1, e0, e1, ratePPM float64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.minRate = min(r.minRate, ratePPM)
	r.maxAbsRatePPM = max(r.maxAbsRatePPM, math.Abs(ratePPM))
	if ratePPM <= -1e6 { // REALTIME standing still or running backwards
		r.backward++
		r.maxBackward = max(r.maxBackward, -(e1-e0)-(t1-t0))
	}
}

func (r *Recorder) Jump(t, d float64, why string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.Jumps = append(r.Jumps, Jump{At: t, Delta: d, Why: why})
	if d < 0 {
		r.backward++
		r.maxBackward = max(r.maxBackward, -d)
	}
}

func (r *Recorder) RTCWrite(t, e float64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.RTCWrites = append(r.RTCWrites, RTCWrite{At: t, Error: e})
}

// Backward is how many times REALTIME went backwards and the largest such movement, in seconds.
func (r *Recorder) Backward() (count int, largest float64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.backward, r.maxBackward
}

// MaxAbsRatePPM is the largest |rate − 1| of REALTIME against true time seen, in ppm.
func (r *Recorder) MaxAbsRatePPM() float64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.maxAbsRatePPM
}
