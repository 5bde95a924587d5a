package boot

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"slewd/clock"
	"slewd/discipline/statefile"
)

// WaitLimits are `slewd wait`'s conditions.
type WaitLimits struct {
	// RequireKernelSync: the kernel must say synchronized (adjtimex not
	// TIME_ERROR) with maxerror at most MaxError. Without it, a fresh
	// daemon status with an estimate stands in for the kernel's word (so a
	// long forward slew can let services start).
	RequireKernelSync bool
	MaxError          time.Duration
	// MaxBehind and MaxAhead bound the correction still to make, by
	// direction: positive (NTP sign) means the clock is behind.
	MaxBehind, MaxAhead time.Duration
}

// Verdict is one look at the clock.
type Verdict struct {
	Synced bool
	// Remaining is the correction still to make, NTP sign: the daemon's
	// (from its status file, which includes the kernel PLL offset it
	// arms) or else the kernel PLL offset, plus any pending singleshot.
	Remaining  time.Duration
	MaxError   time.Duration
	FromDaemon bool
	Why        string // what is not yet right; "" when Synced
}

// Check decides whether the clock is synchronized within lim. daemon is
// the daemon's status if fresh, else nil. It does no I/O.
func Check(k KernelClock, daemon *statefile.Status, lim WaitLimits) Verdict {
	v := Verdict{MaxError: k.MaxError, Remaining: k.Singleshot}
	if daemon != nil {
		// The PLL offset is the daemon's: it arms it every second as part
		// of making its remaining correction, so it is already counted.
		v.Remaining += daemon.Remaining()
		v.FromDaemon = true
	} else {
		v.Remaining += k.PLLOffset
	}
	var why []string
	if lim.RequireKernelSync {
		if k.State == clock.TimeError {
			why = append(why, "the kernel says unsynchronized (TIME_ERROR: STA_UNSYNC set, or maxerror at 16 s)")
		}
		if k.MaxError > lim.MaxError {
			why = append(why, fmt.Sprintf("maxerror %v is above --max-error %v", k.MaxError, lim.MaxError))
		}
	} else if daemon == nil || daemon.Sources == 0 {
		why = append(why, "no fresh estimate from slewd run (its status file)")
	}
	switch r := v.Remaining; {
	case r > lim.MaxBehind:
		why = append(why, fmt.Sprintf("the clock is %v behind (more than %v)", r, lim.MaxBehind))
	case -r > lim.MaxAhead:
		why = append(why, fmt.Sprintf("the clock is %v ahead (more than %v)", -r, lim.MaxAhead))
	}
	v.Why = strings.Join(why, "; ")
	v.Synced = len(why) == 0
	return v
}

// ErrTimeout is Wait's error when the clock did not become synchronized in time.
var ErrTimeout = errors.New("not synchronized before the timeout")

// Wait looks at the clock with probe every interval until it is
// synchronized, ctx ends, or timeout (on CLOCK_MONOTONIC_RAW; 0 for no
// limit) passes, when it returns the last verdict and ErrTimeout. It
// sleeps with Loop waits, so it runs in virtual time on the simulated
// kernel. onChange, if set, sees every verdict that differs from the one
// before (for progress messages).
func Wait(ctx context.Context, c clock.Clock, l clock.Loop, probe func() (Verdict, error),
	timeout, interval time.Duration, onChange func(Verdict)) (Verdict, error) {
	start := c.Raw()
	var last Verdict
	for i := 0; ; i++ {
		v, err := probe()
		if err != nil {
			return v, err
		}
		if onChange != nil && (i == 0 || v.Why != last.Why) {
			onChange(v)
		}
		last = v
		if v.Synced {
			return v, nil
		}
		wait := interval
		if timeout > 0 {
			left := start + timeout - c.Raw()
			if left <= 0 {
				return v, ErrTimeout
			}
			wait = min(wait, left)
		}
		if err := clock.Sleep(ctx, l, wait); err != nil {
			return v, err
		}
	}
}
