package foreign

import "math"

// Window measures backward windows: how long a clock stayed below the
// highest value it had already shown. That is what a program that dies on
// backward time sees: not the size of a step back, but how long "now" is
// earlier than a "now" it read before. Undoing a step within a millisecond
// makes a window of a millisecond.
//
// Feed it the clock's readings in order, each with the reference time
// (true time, or CLOCK_MONOTONIC_RAW) at which it was read, in seconds.
// Between two readings the clock is taken to run linearly, so the moment
// it passes its old high is interpolated; a step shows as two readings at
// the same reference time. The simulator feeds it every linear segment,
// so its figures are exact; a sampler's are as fine as its sampling.
type Window struct {
	started  bool
	prevT    float64
	prevReal float64
	high     float64 // highest reading so far
	below    bool
	since    float64 // reference time the clock went below high

	// Count is how many windows there were, Longest the longest, in
	// seconds, and Total their sum.
	Count   int
	Longest float64
	Total   float64
	// Windows lists each closed window's length, in order, in seconds,
	// and Starts when each began (reference time).
	Windows []float64
	Starts  []float64
}

// Observe takes the clock's reading real at reference time t (both in
// seconds).
func (w *Window) Observe(t, real float64) {
	if !w.started {
		w.started, w.prevT, w.prevReal, w.high = true, t, real, real
		return
	}
	switch {
	case real < w.high && !w.below:
		// Went below: at the moment it left the high, interpolated
		// when it ran down (impossible for a kernel clock) or at t
		// when it stepped.
		w.below, w.since = true, t
		if t > w.prevT && w.prevReal >= w.high && real < w.prevReal {
			w.since = w.prevT + (w.high-w.prevReal)/(real-w.prevReal)*(t-w.prevT)
		}
	case real >= w.high && w.below:
		// Back above: interpolate the crossing between the readings.
		end := t
		if t > w.prevT && real > w.prevReal && w.prevReal < w.high {
			end = w.prevT + (w.high-w.prevReal)/(real-w.prevReal)*(t-w.prevT)
			end = math.Max(end, w.since)
		}
		w.close(end - w.since)
	}
	w.high = math.Max(w.high, real)
	w.prevT, w.prevReal = t, real
}

func (w *Window) close(length float64) {
	w.below = false
	w.Count++
	w.Total += length
	w.Longest = math.Max(w.Longest, length)
	w.Windows = append(w.Windows, length)
	w.Starts = append(w.Starts, w.since)
}

// Open reports whether the clock is below its high now, and since when.
func (w *Window) Open() (bool, float64) { return w.below, w.since }

// LongestAt is the longest window, counting one still open at reference
// time t.
func (w *Window) LongestAt(t float64) float64 {
	if w.below {
		return math.Max(w.Longest, t-w.since)
	}
	return w.Longest
}
