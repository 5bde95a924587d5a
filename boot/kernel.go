package boot

import (
	"fmt"
	"math"
	"time"

	"slewd/clock"
)

// Step steps CLOCK_REALTIME by offset (positive: forward) with one
// ADJ_SETOFFSET. The kernel then cancels any PLL offset and singleshot,
// sets STA_UNSYNC and maxerror 16 s, and keeps tick and frequency (pitfall
// 8): call SetStatus afterwards. CLOCK_MONOTONIC is not moved.
func Step(c clock.Clock, offset time.Duration) error {
	tx := clock.Timex{Modes: clock.AdjSetOffset | clock.AdjNano, Time: SetOffsetTime(offset)}
	if _, err := c.Adjtimex(&tx); err != nil {
		return fmt.Errorf("stepping the clock by %v: %w", offset, err)
	}
	return nil
}

// Singleshot hands us µs to the kernel's adjtime singleshot (500 ppm; it
// goes on after slewd exits and stops at zero by itself) and returns what
// was pending before, which the new value replaces.
func Singleshot(c clock.Clock, us int64) (previousUs int64, err error) {
	tx := clock.Timex{Modes: clock.AdjOffsetSingleshot, Offset: us}
	if _, err := c.Adjtimex(&tx); err != nil {
		return 0, fmt.Errorf("handing %v to the adjtime singleshot: %w", time.Duration(us)*time.Microsecond, err)
	}
	return tx.Offset, nil
}

// SetStatus writes what StatusTimex built.
func SetStatus(c clock.Clock, tx clock.Timex) error {
	if _, err := c.Adjtimex(&tx); err != nil {
		return fmt.Errorf("setting the kernel's sync status: %w", err)
	}
	return nil
}

// KernelClock is what `slewd wait` and the one-shot commands read from the
// kernel, read-only (adjtimex modes 0 and ADJ_OFFSET_SS_READ need no
// privilege).
type KernelClock struct {
	State clock.State // TIME_ERROR means not synchronized
	Timex clock.Timex
	// MaxError is the kernel's maxerror.
	MaxError time.Duration
	// Singleshot is the adjtime correction still pending, PLL the kernel
	// PLL offset still to be slewed out (positive: REALTIME will gain).
	Singleshot time.Duration
	PLL        time.Duration
}

// RatePPM is the base rate of REALTIME against RAW from tick and frequency.
func (k KernelClock) RatePPM() float64 { return clock.RatePPM(k.Timex.Tick, k.Timex.Freq) }

// ReadKernel reads the kernel clock without changing it.
func ReadKernel(c clock.Clock) (KernelClock, error) {
	var tx clock.Timex
	state, err := c.Adjtimex(&tx)
	if err != nil {
		return KernelClock{}, fmt.Errorf("reading the kernel clock: %w", err)
	}
	ss := clock.Timex{Modes: clock.AdjOffsetSSRead}
	if _, err := c.Adjtimex(&ss); err != nil {
		return KernelClock{}, fmt.Errorf("reading the pending adjtime slew: %w", err)
	}
	pll := time.Duration(tx.Offset)
	if tx.Status&clock.StaNano == 0 {
		pll *= time.Microsecond
	}
	return KernelClock{
		State:      state,
		Timex:      tx,
		MaxError:   time.Duration(tx.MaxError) * time.Microsecond,
		Singleshot: time.Duration(ss.Offset) * time.Microsecond,
		PLL:        pll,
	}, nil
}

// PLLFuture is how much the kernel PLL offset still pending will move
// REALTIME against RAW (NTP sign), so that a slew can ask for the rest:
// the offset adjtimex reports (it decays by itself, even with STA_PLL off)
// and what is left of the chunk the kernel took out of it at the last
// second boundary, which is being delivered during the current REALTIME
// second (frac of it gone). The kernel takes 1/2^(2+constant) of the
// offset at every boundary, so that chunk was offset/(2^(2+constant)−1).
// A chunk c raises the rate by c for one REALTIME second, which lasts
// 1/(1+base+c) of RAW: it moves REALTIME − RAW by c/(1+base+c) only.
func PLLFuture(pll time.Duration, constant int64, frac, baseRatePPM float64) time.Duration {
	if pll == 0 {
		return 0
	}
	div := float64(int64(1) << (2 + min(max(constant, 0), clock.MaxTimeConstant)))
	base := baseRatePPM * 1e-6
	effect := func(c float64) float64 { return c / (1 + base + c) }
	r := pll.Seconds()
	total := effect(r/(div-1)) * (1 - frac)
	for math.Abs(r) > 1e-10 {
		c := r / div
		total += effect(c)
		r -= c
	}
	return time.Duration(math.Round(total * 1e9))
}

// secondFraction is the fraction of the current REALTIME second gone at t.
func secondFraction(t time.Time) float64 { return float64(t.Nanosecond()) / 1e9 }
