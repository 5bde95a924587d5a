package boot

import (
	"fmt"
	"math"
	"time"

	"slewd/clock"
)

// SetStatus writes what StatusChange built.
func SetStatus(c clock.Timexer, ch clock.Change) error {
	if _, err := clock.NewDriver(c).Apply(ch); err != nil {
		return fmt.Errorf("setting the kernel's sync status: %w", err)
	}
	return nil
}

// KernelClock is what `slewd wait` and the one-shot commands read from the
// kernel, read-only (adjtimex modes 0 and ADJ_OFFSET_SS_READ need no
// privilege): the kernel's state, and the adjtime singleshot correction
// still pending (positive: REALTIME will gain).
type KernelClock struct {
	clock.KernelState
	Singleshot time.Duration
}

// ReadKernel reads the kernel clock without changing it.
func ReadKernel(c clock.Timexer) (KernelClock, error) {
	d := clock.NewDriver(c)
	k, err := d.Read()
	if err != nil {
		return KernelClock{}, err
	}
	ss, err := d.SingleshotRemaining()
	if err != nil {
		return KernelClock{}, err
	}
	return KernelClock{KernelState: k, Singleshot: ss}, nil
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
