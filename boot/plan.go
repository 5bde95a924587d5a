// Package boot is slewd's one-shot work: `slewd boot` (measure until the
// sources agree, then step the clock once, or hand a small offset to the
// kernel's adjtime singleshot), `slewd sync` (hand the correction to the
// singleshot and exit, for cron, in place of ntpdate), `slewd wait` (block
// until the kernel and the daemon say the clock is right, like ntp-wait),
// and the high-water mark of known-good time.
//
// Package adjtime never steps the clock; the one step slewd makes is here
// (Step). Decisions are pure functions of what was measured (Decide,
// OffsetNow, SingleshotMicros, StatusChange, Check, HighWaterStep); the
// kernel is reached only through clock.Clock, so every path that writes
// the clock runs unchanged on the simulated kernel (clock/simclock).
package boot

import (
	"fmt"
	"math"
	"time"

	"slewd/clock"
	"slewd/ntpclient"
)

// Action is what a one-shot command does to the clock.
type Action string

const (
	ActionStep Action = "step" // one ADJ_SETOFFSET
	ActionSlew Action = "slew" // the adjtime singleshot, 500 ppm, stops at zero by itself
	ActionNone Action = "none"
)

// Defaults.
const (
	// DefaultStepThreshold is ntpd's step threshold (CLOCK_MAX 0.128 s):
	// smaller offsets are slewed, which takes at most 256 s at 500 ppm.
	DefaultStepThreshold = 128 * time.Millisecond
	// DefaultDeadline bounds `slewd boot`, as OpenNTPD's boot mode does
	// (SETTIME_TIMEOUT 15 s).
	DefaultDeadline = 15 * time.Second
	// DefaultSyncThreshold: the kernel is told the clock is synchronized
	// (STA_UNSYNC cleared, which starts its 11-minute RTC writes) only when
	// the correction left plus the error bound is below it, as slewd run does.
	DefaultSyncThreshold = 10 * time.Millisecond
	// MaxSingleshot is the largest correction handed to the singleshot.
	// glibc's adjtime() refuses more than INT_MAX/10⁶−2 s, the 32-bit
	// kernel's long µs holds ±2147 s, and at 500 ppm it already takes 50 days.
	MaxSingleshot = 2145 * time.Second
)

// Exit codes of `slewd boot`, `slewd sync` and `slewd wait` (sysexits-style
// where one fits). The man page and each command's --help list them.
const (
	ExitOK    = 0 // synchronized: stepped, slewing, or nothing to do
	ExitError = 1 // something failed (the clock call, a file)
	ExitUsage = 2 // bad arguments or configuration
	// ExitNoSync: no usable estimate before the deadline (boot, sync) or
	// not synchronized before --timeout (wait). The clock was not set
	// (boot may have moved it forward to the high-water mark).
	ExitNoSync = 3
	// ExitNoSyncRequired is ExitNoSync under `slewd boot --require-sync`:
	// the unit fails, so units that Requires= it do not start.
	ExitNoSyncRequired = 4
	// ExitRefused: the correction is too large for the singleshot and a
	// step was not allowed (sync never steps; boot --forward-only never
	// steps back).
	ExitRefused = 5
	// ExitNoPerm is EX_NOPERM: no CAP_SYS_TIME (or a user namespace).
	ExitNoPerm = 77
)

// Policy says when a one-shot command may step.
type Policy struct {
	// StepThreshold: offsets at least this large are stepped, smaller ones
	// slewed. 0 steps every offset (ntpdate -b).
	StepThreshold time.Duration
	// ForwardOnly steps only a clock that is behind; a clock that is ahead
	// is slewed instead (it then runs slow, never backwards).
	ForwardOnly bool
	// NeverStep slews whatever the offset (slewd sync, ntpdate -B).
	NeverStep bool
}

// Plan is what to do about an offset.
type Plan struct {
	Action Action
	// Offset is the correction needed, NTP sign: positive means the clock
	// is behind and must gain.
	Offset time.Duration
	Step   time.Duration // ADJ_SETOFFSET by this (ActionStep)
	Slew   time.Duration // singleshot to slew out (ActionSlew)
	// Refused: the offset can neither be slewed by the singleshot nor
	// stepped under the policy (ExitRefused).
	Refused bool
	// BackwardRefused: a step back was wanted but the policy is forward
	// only, so the clock is slewed instead (or refused if too far).
	BackwardRefused bool
	Reason          string
}

// Remaining is the correction the plan leaves for slewing.
func (p Plan) Remaining() time.Duration { return p.Offset - p.Step }

// Decide plans the correction of offset (NTP sign) under policy. It does
// no I/O.
func Decide(offset time.Duration, p Policy) Plan {
	plan := Plan{Offset: offset}
	abs := offset.Abs()
	if abs < time.Microsecond {
		// The singleshot's unit; ADJ_SETOFFSET of less is noise.
		plan.Action, plan.Reason = ActionNone, "the clock is within 1 µs"
		return plan
	}
	wantStep := !p.NeverStep && abs >= p.StepThreshold
	if wantStep && (offset > 0 || !p.ForwardOnly) {
		plan.Action, plan.Step = ActionStep, offset
		plan.Reason = fmt.Sprintf("clock %s: stepping it once", direction(offset))
		if p.StepThreshold > 0 {
			plan.Reason += fmt.Sprintf(" (at or above the step threshold %v)", p.StepThreshold)
		}
		return plan
	}
	plan.BackwardRefused = wantStep // ahead, forward only
	why := ""
	switch {
	case plan.BackwardRefused:
		why = "forward-only: not stepping the clock back; "
	case p.NeverStep:
		why = ""
	default:
		why = fmt.Sprintf("below the step threshold %v: ", p.StepThreshold)
	}
	if abs > MaxSingleshot {
		plan.Action, plan.Refused = ActionNone, true
		advice := "step it once with `slewd boot` before services start"
		if plan.BackwardRefused {
			// This is slewd boot already: only the policy stands in the way.
			advice = "step it back once, with the services that dislike steps stopped (`slewd boot` without --forward-only)"
		}
		plan.Reason = fmt.Sprintf("clock %s: %stoo far to slew with the adjtime singleshot (at most %v, which takes %v at 500 ppm): "+
			"%s, or let `slewd run` slew it at up to 10 %% (raise --max-offset)",
			direction(offset), why, MaxSingleshot, SlewDuration(MaxSingleshot).Round(time.Hour), advice)
		return plan
	}
	plan.Action, plan.Slew = ActionSlew, offset
	plan.Reason = fmt.Sprintf("clock %s: %sslewing it at 500 ppm (%v; `slewd run` takes over faster)",
		direction(offset), why, SlewDuration(offset).Round(time.Second))
	return plan
}

// direction says "X behind" or "X ahead" for an NTP-sign offset.
func direction(offset time.Duration) string {
	if offset < 0 {
		return fmt.Sprintf("%v ahead", (-offset).String())
	}
	return fmt.Sprintf("%v behind", offset.String())
}

// SlewDuration is how long the singleshot takes to slew offset at 500 ppm.
func SlewDuration(offset time.Duration) time.Duration {
	return time.Duration(float64(offset.Abs()) / (clock.SingleshotRate * 1e-6))
}

// OffsetNow carries an estimate (true time − REALTIME at est.Raw) to the
// reading now, through CLOCK_MONOTONIC_RAW, which no adjustment moves: true
// time is assumed to advance like REALTIME at the kernel's base rate
// (baseRatePPM, from tick and frequency), so whatever slewing or stepping
// happened in between (a singleshot still running, a PLL offset) is
// accounted for.
func OffsetNow(est ntpclient.Estimate, now clock.Reading, baseRatePPM float64) time.Duration {
	elapsed := now.Raw - est.Raw
	drift := time.Duration(math.Round(baseRatePPM * 1e-6 * float64(elapsed)))
	return est.Offset + (est.RealMinusRaw - now.RealMinusRaw()) + drift
}

// SingleshotMicros is the ADJ_OFFSET_SINGLESHOT value (µs) that moves
// REALTIME by offset against its base trajectory. The kernel adds 500 µs
// in every REALTIME second, but a second of REALTIME lasts 1/(1+base±500
// ppm) of RAW, so each 500 µs chunk gains only 500/(1+base±500e-6) µs:
// ask for that much more (or less). Same compensation as
// adjtime.Slewer.Release.
func SingleshotMicros(offset time.Duration, baseRatePPM float64) int64 {
	s := offset.Seconds()
	rate := 1 + baseRatePPM*1e-6 + math.Copysign(clock.SingleshotRate*1e-6, s)
	return int64(math.Round(s * rate * 1e6))
}

// StatusChange is the status, maxerror and esterror to write after a
// one-shot correction, so that `slewd run`, `slewd wait` and timedatectl
// see the truth: prior is the kernel's status before (kept, so STA_PLL
// does not flip and reset anything, a leap second stays armed, and the
// unit a step changed is put back); remaining is what is still to be
// slewed; errorBound and jitter come from the estimate. The clock is
// marked synchronized only when remaining plus errorBound is within
// syncThreshold, because that starts the kernel's 11-minute RTC writes.
func StatusChange(prior clock.NTPStatus, remaining, errorBound, jitter, syncThreshold time.Duration) (clock.Change, bool) {
	maxErr := remaining.Abs() + errorBound
	estErr := remaining.Abs() + jitter
	synced := errorBound < clock.MaxErrorLimit*time.Microsecond && maxErr <= syncThreshold
	st := prior
	st.Unsync = !synced
	return clock.Change{Status: &st, SetErrors: true, MaxError: maxErr, EstError: estErr}, synced
}
