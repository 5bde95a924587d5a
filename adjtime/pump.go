package adjtime

import "math"

// The kernel PLL with time constant 0 (STA_PLL|STA_FREQHOLD|STA_NANO,
// ADJ_TIMECONST 0) moves a quarter of the armed offset into the length of
// each coming REALTIME second (kernel/time/ntp.c second_overflow,
// ntp_offset_chunk). Re-arming the offset every second ("pumping") gives
// any rate up to 12.5 %, second by second; and if slewd dies, what is armed
// drains away exponentially, so the clock cannot go on running fast or
// slow. These functions hold the arithmetic; they do no I/O.

// pllShare is the part of the armed offset the kernel applies each second
// at time constant 0: shift_right(offset, SHIFT_PLL + 0).
const pllShare = 0.25

// chunkEffect is how much a chunk c (seconds per RAW second, applied over
// one REALTIME second, as the kernel does) changes REALTIME − RAW, when the
// base rate of the clock against RAW is base (s/s). A REALTIME second at
// rate 1+base+c lasts 1/(1+base+c) of RAW.
func chunkEffect(c, base float64) float64 { return c / (1 + base + c) }

// chunkFor is the chunk whose effect over one REALTIME second is e: the
// inverse of chunkEffect.
func chunkFor(e, base float64) float64 { return e * (1 + base) / (1 - e) }

// landingShare is the part of what is left that the next second removes
// once the end is near. Less than all of it: a chunk may run a few
// percent longer than a second (on an idle tickless kernel it runs until
// the next wakeup), and it must never carry the clock past zero.
const landingShare = 0.95

// pumpArm returns the PLL offset to arm now (seconds) so that the next
// second removes as much of need (seconds of REALTIME − RAW still to
// correct after the chunk now running) as maxRate (s/s) allows.
//
// While |need| is at least what a full-rate arm would drain, the arm is
// 4·maxRate: if slewd dies, the kernel delivers no more than need, so the
// clock cannot overshoot. Near the end the arm is four times the chunk
// that removes landingShare of need in one second; the next step re-arms.
// Only there could a kill overshoot, by at most three of those chunks
// (see docs/crash-safety.md).
func pumpArm(need, maxRate, base float64) float64 {
	if need == 0 {
		return 0
	}
	full := math.Copysign(maxRate, need)
	if math.Abs(need) >= math.Abs(drainEffect(full/pllShare, base)) {
		return full / pllShare
	}
	c := chunkFor(landingShare*need, base)
	if math.Abs(c) > maxRate {
		c = full
	}
	return c / pllShare
}

// drainEffect is what an armed offset does to REALTIME − RAW if nobody
// touches it again: the kernel applies a quarter of what is left each
// second until nothing is. Slowing down delivers a little more than the
// offset (a slow second lasts longer), speeding up a little less.
func drainEffect(arm, base float64) float64 {
	total := 0.0
	for left := arm; math.Abs(left) > 1e-12; {
		c := left * pllShare
		total += chunkEffect(c, base)
		left -= c
	}
	return total
}

// safeArm is the arm that lets the kernel finish need by itself, never
// past it, within the kernel's ±0.5 s: the offset whose drain delivers
// need, found by bisection (drainEffect is monotonic).
func safeArm(need, base float64) float64 {
	if need == 0 {
		return 0
	}
	hi := math.Copysign(maxPhase, need)
	if math.Abs(drainEffect(hi, base)) <= math.Abs(need) {
		return hi
	}
	lo := 0.0
	for range 60 {
		mid := (lo + hi) / 2
		if math.Abs(drainEffect(mid, base)) > math.Abs(need) {
			hi = mid
		} else {
			lo = mid
		}
	}
	return lo
}

const maxPhase = 0.5 // MAXPHASE: the kernel clamps ADJ_OFFSET to ±0.5 s
