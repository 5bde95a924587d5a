package boot

import "time"

// The high-water mark's file (statefile.HighWaterFile) is the
// discipline's persistence, shared with `slewd run`; boot only decides how
// far it moves the clock.

// HighWaterStep is how far to step the clock forward to the mark: the
// clock reads now, and true time is at least mark. Zero when the clock is
// not behind the mark: the mark never moves a clock back.
func HighWaterStep(now, mark time.Time) time.Duration {
	if !mark.After(now) {
		return 0
	}
	return mark.Sub(now)
}
