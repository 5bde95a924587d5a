package discipline

import (
	"math"
	"time"

	"slewd/adjtime"
	"slewd/clock"
)

// The discipline's decisions: plain functions of what it knows, with no
// I/O, so that each is table-tested on its own.

// FreqTrustedPPM: below this uncertainty the servo's frequency is used at
// all (before, the frequency slewd started with is), and is worth keeping
// across a restart (drift file, kernel at exit).
const FreqTrustedPPM = 0.5

// FrequencyTrusted says whether a frequency known to sigmaPPM is good
// enough to steer by, save in the drift file and leave in the kernel.
func FrequencyTrusted(sigmaPPM float64) bool { return sigmaPPM <= FreqTrustedPPM }

// BaseFrequency is the drift compensation to steer by: the servo's once it
// knows it well, else the one slewd started with. A frequency learnt from
// a few samples seconds apart can be ppm off, and the clock would run that
// far off until the next poll.
func BaseFrequency(servoPPM, servoSigmaPPM, startPPM float64) float64 {
	if !FrequencyTrusted(servoSigmaPPM) {
		return startPPM
	}
	return servoPPM
}

// StartFrequency is the drift compensation slewd starts with: the drift
// file's when there is one; without, what the kernel holds if it looks
// like a drift compensation (nominal tick, and no slew of ours under way
// that a journal records), as ntpd-rs does; else the drift file's zero.
func StartFrequency(drift adjtime.Drift, known bool, kernel *clock.KernelState, journalActive bool) float64 {
	if !known && kernel != nil && kernel.Tick == clock.NominalTick && !journalActive {
		return kernel.FrequencyPPM
	}
	return drift.FreqPPM
}

// OutOfBounds is the panic guard: an estimate beyond maxOffset is not
// slewed (it would take hours; `slewd boot` steps it once instead).
func OutOfBounds(offset, maxOffset time.Duration) bool { return offset.Abs() > maxOffset }

// PollDrift is how far the oscillator may wander, unseen, between two
// polls: the adaptive poll interval is capped where the wander the servo
// measures would move the clock that much (√(q·τ³/3) for a random walk of
// frequency), so polling less often never costs accuracy.
const PollDrift = 2.5e-6 // s

// PollLimit is the longest poll interval for an oscillator wandering
// wanderPerRootS (s/s per √s); 0 (no limit) when none is known.
func PollLimit(wanderPerRootS float64) time.Duration {
	if wanderPerRootS <= 0 {
		return 0
	}
	tau := math.Cbrt(3 * PollDrift * PollDrift / (wanderPerRootS * wanderPerRootS))
	return time.Duration(tau * 1e9)
}

// SlewTime is how long a correction of offset takes at ratePPM.
func SlewTime(offset time.Duration, ratePPM float64) time.Duration {
	return time.Duration(math.Abs(offset.Seconds()) / (ratePPM * 1e-6) * 1e9)
}

// HighWaterMark is a time certainly passed, for `slewd boot
// --restore-from-high-water`: what REALTIME (now) reads once the
// correction left (remaining, NTP sign) is made, less the error bound.
func HighWaterMark(now time.Time, remaining, errorBound time.Duration) time.Time {
	return now.Add(remaining - errorBound)
}

// AnnounceSlew says whether a control step starts a slew worth logging: it
// was idle and now has more than 10 ms to do.
func AnnounceSlew(wasSlewing, slewing bool, remaining time.Duration) bool {
	return slewing && !wasSlewing && remaining.Abs() > 10*time.Millisecond
}
